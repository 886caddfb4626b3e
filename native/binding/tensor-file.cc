// readTensorBytes (tensor-file.h).
#include "tensor-file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <stdexcept>

namespace pds::binding {

std::unique_ptr<char[]> readTensorBytes(const std::string& name, const std::string& path, int64_t offset, int64_t nbytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("loadTensor: open " + path + ": " + std::strerror(errno));
  std::unique_ptr<char[]> buf(new (std::nothrow) char[nbytes > 0 ? nbytes : 1]);
  if (!buf) {
    ::close(fd);
    throw std::runtime_error("loadTensor: out of memory for " + name);
  }
  int64_t done = 0;
  while (done < nbytes) {
    const ssize_t r = ::pread(fd, buf.get() + done, static_cast<size_t>(nbytes - done), static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      const int e = errno;
      ::close(fd);
      throw std::runtime_error("loadTensor: " + name + ": read of " + path + " at " + std::to_string(offset + done) +
                               (r == 0 ? " hit end of file" : std::string(": ") + std::strerror(e)));
    }
    done += r;
  }
  ::close(fd);
  return buf;
}

}  // namespace pds::binding
