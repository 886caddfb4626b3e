// Node-API module init: wires every binding file's exports. No math here.
#include "register.h"

namespace {
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  pds::binding::registerShm(env, exports);
  pds::binding::registerMeasure(env, exports);
  pds::binding::registerModel(env, exports);
  pds::binding::registerOps(env, exports);
  return exports;
}
}  // namespace

NODE_API_MODULE(pdserve, Init)
