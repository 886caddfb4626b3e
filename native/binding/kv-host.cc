// kvHostRegion: the KV cache's host memory, viewed in place by JS (kv-host.h).
#include "kv-host.h"

namespace pds::binding {
Napi::Value kvHostRegionValue(Napi::Env env, Backend& b) {
  auto [p, n] = b.kvHostMemory();
  if (!p || !n) return env.Null();
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, p, n);  // external: the backend owns the memory
  return Napi::Uint8Array::New(env, n, ab, 0);
}
}  // namespace pds::binding
