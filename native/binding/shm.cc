// mapShared(path, size, create) -> ArrayBuffer aliasing a MAP_SHARED mapping of the file.
// The mapping lives until the ArrayBuffer is garbage-collected (munmap in the finalizer).
// create: a new file (O_CREAT|O_EXCL, mode 0600): fails if anything, a symlink included, is at the path.
// Never follows a symlink in the last component (O_NOFOLLOW) and maps only regular files.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "register.h"

namespace pds::binding {
namespace {
Napi::Value MapShared(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsBoolean())
    throw Napi::TypeError::New(env, "mapShared(path: string, size: number, create: boolean)");
  std::string path = info[0].As<Napi::String>();
  double sizeD = info[1].As<Napi::Number>().DoubleValue();
  bool create = info[2].As<Napi::Boolean>();
  if (!(sizeD > 0)) throw Napi::RangeError::New(env, "mapShared: size must be > 0");
  // one mapping backs one ArrayBuffer; larger pools are split into several files by the caller
  if (sizeD > 4294967296.0) throw Napi::RangeError::New(env, "mapShared: size must be <= 4 GiB per mapping");
  size_t size = static_cast<size_t>(sizeD);
  int fd = ::open(path.c_str(), create ? (O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC) : (O_RDWR | O_NOFOLLOW | O_CLOEXEC), 0600);
  if (fd < 0) throw Napi::Error::New(env, "mapShared: open " + path + ": " + std::strerror(errno));
  if (create && ::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    int e = errno;
    ::close(fd);
    throw Napi::Error::New(env, "mapShared: ftruncate " + path + ": " + std::strerror(e));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Napi::Error::New(env, "mapShared: " + path + " is not a regular file");
  }
  if (static_cast<size_t>(st.st_size) < size) {
    ::close(fd);
    throw Napi::Error::New(env, "mapShared: " + path + " is smaller than the requested size");
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  int e = errno;
  ::close(fd);
  if (p == MAP_FAILED) throw Napi::Error::New(env, "mapShared: mmap " + path + ": " + std::strerror(e));
  return Napi::ArrayBuffer::New(env, p, size, [size](Napi::Env, void* data) { ::munmap(data, size); });
}
}  // namespace

void registerShm(Napi::Env env, Napi::Object exports) {
  exports.Set("mapShared", Napi::Function::New(env, MapShared, "mapShared"));
}
}  // namespace pds::binding
