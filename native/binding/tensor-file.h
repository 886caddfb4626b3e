// Reading one tensor's bytes from a checkpoint file (loadTensor): no JS heap, no Node-API.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

namespace pds::binding {

// Returns nbytes read from `path` at `offset` (pread, EINTR retried). Throws std::runtime_error naming the
// tensor and the file on open failure, a short file or a read error; std::bad_alloc-safe (reports "out of memory").
std::unique_ptr<char[]> readTensorBytes(const std::string& name, const std::string& path, int64_t offset, int64_t nbytes);

}  // namespace pds::binding
