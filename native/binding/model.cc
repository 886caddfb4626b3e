// Placeholder registration; filled in by the native core work.
#include "register.h"

namespace pds::binding {
void registerModel(Napi::Env, Napi::Object) {}
}  // namespace pds::binding
