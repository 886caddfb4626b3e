// The binding's one C++ -> JS error mapping. Every native failure reaches JS through here:
//   std::out_of_range      -> RangeError  (an id, index or size outside what the model or cache holds)
//   std::invalid_argument  -> TypeError   (a malformed argument or batch)
//   any other std::exception -> Error     (device, I/O and state failures)
//   Napi::Error            -> passes through unchanged (the argument checks in args.h throw these)
// Worker threads cannot create JS values: they keep a CapturedError and convert it on the JS thread.
#pragma once
#include <napi.h>

#include <stdexcept>
#include <string>

namespace pds::binding {

enum class JsErrorKind { Error, Range, Type };

struct CapturedError {
  JsErrorKind kind = JsErrorKind::Error;
  std::string message;
};

inline CapturedError captureError(const std::exception& e) {
  const JsErrorKind kind = dynamic_cast<const std::out_of_range*>(&e)       ? JsErrorKind::Range
                           : dynamic_cast<const std::invalid_argument*>(&e) ? JsErrorKind::Type
                                                                            : JsErrorKind::Error;
  return CapturedError{kind, e.what()};
}

inline Napi::Error toJsError(const Napi::Env& env, const CapturedError& c) {
  switch (c.kind) {
    case JsErrorKind::Range: return Napi::RangeError::New(env, c.message);
    case JsErrorKind::Type: return Napi::TypeError::New(env, c.message);
    default: return Napi::Error::New(env, c.message);
  }
}

inline Napi::Error toJsError(const Napi::Env& env, const std::exception& e) {
  if (auto* js = dynamic_cast<const Napi::Error*>(&e)) return *js;
  return toJsError(env, captureError(e));
}

// Runs f on the JS thread, rethrowing any std exception as its JS error (see the table above).
template <class F>
auto guarded(const Napi::Env& env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw toJsError(env, e);
  }
}

// A promise already rejected with e (a binding method that returns a promise never throws synchronously).
inline Napi::Value rejectedPromise(const Napi::Env& env, const Napi::Error& e) {
  auto d = Napi::Promise::Deferred::New(env);
  d.Reject(e.Value());
  return d.Promise();
}

}  // namespace pds::binding
