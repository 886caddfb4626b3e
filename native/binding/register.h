// Each binding file registers its exports here; addon.cc calls them all from the module init.
#pragma once
#include <napi.h>

namespace pds::binding {
void registerShm(Napi::Env env, Napi::Object exports);      // shm.cc: mapShared
void registerMeasure(Napi::Env env, Napi::Object exports);  // measure.cc: bandwidth / peak probes
void registerModel(Napi::Env env, Napi::Object exports);    // model.cc: createModel, NativeModel
void registerOps(Napi::Env env, Napi::Object exports);      // ops.cc: kernel entry points for tests
}  // namespace pds::binding
