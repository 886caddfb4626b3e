// The KV cache's host memory as a JS Uint8Array (kv-host.cc), for the tcp KV transport.
#pragma once
#include <napi.h>

#include "pds/backend.h"

namespace pds::binding {
// A Uint8Array viewing the backend's KV cache memory in place (no copy), or null where the cache is on a
// device. The view does not own the memory: it is valid until the model is disposed (the KV connector
// shuts down first).
Napi::Value kvHostRegionValue(Napi::Env env, Backend& b);
}  // namespace pds::binding
