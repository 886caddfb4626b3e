// Placeholder registration; filled in by the native core work.
#include "register.h"

namespace pds::binding {
void registerOps(Napi::Env, Napi::Object) {}
}  // namespace pds::binding
