// Argument checks shared by the binding files: typed accessors that throw JS TypeError/RangeError.
// (C++ exceptions from below the binding are mapped to JS errors in js-error.h.)
#pragma once
#include <napi.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "js-error.h"
#include "pds/types.h"

namespace pds::binding {

inline Napi::Value prop(const Napi::Object& o, const char* key) { return o.Get(key); }

inline double numberArg(const Napi::Env& env, const Napi::Value& v, const std::string& what) {
  if (!v.IsNumber()) throw Napi::TypeError::New(env, what + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

// Integer in [lo, hi]; TypeError when not a number, RangeError when out of range or fractional.
inline int64_t intArg(const Napi::Env& env, const Napi::Value& v, const std::string& what, int64_t lo, int64_t hi) {
  double d = numberArg(env, v, what);
  if (d != static_cast<double>(static_cast<int64_t>(d)) || d < static_cast<double>(lo) || d > static_cast<double>(hi))
    throw Napi::RangeError::New(env, what + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<int64_t>(d);
}

inline std::string stringArg(const Napi::Env& env, const Napi::Value& v, const std::string& what) {
  if (!v.IsString()) throw Napi::TypeError::New(env, what + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

inline DType dtypeArg(const Napi::Env& env, const Napi::Value& v, const std::string& what) {
  std::string s = stringArg(env, v, what);
  try {
    return parseDType(s);
  } catch (const std::exception& e) {
    throw Napi::TypeError::New(env, what + ": " + e.what());
  }
}

inline Napi::Float32Array f32Arg(const Napi::Env& env, const Napi::Value& v, const std::string& what, size_t minLen) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(env, what + " must be a Float32Array");
  auto a = v.As<Napi::Float32Array>();
  if (a.ElementLength() < minLen)
    throw Napi::RangeError::New(env, what + " has " + std::to_string(a.ElementLength()) + " elements, needs " +
                                         std::to_string(minLen));
  return a;
}

inline Napi::Int32Array i32Arg(const Napi::Env& env, const Napi::Value& v, const std::string& what, size_t minLen) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(env, what + " must be an Int32Array");
  auto a = v.As<Napi::Int32Array>();
  if (a.ElementLength() < minLen)
    throw Napi::RangeError::New(env, what + " has " + std::to_string(a.ElementLength()) + " elements, needs " +
                                         std::to_string(minLen));
  return a;
}

inline Napi::Uint8Array u8Arg(const Napi::Env& env, const Napi::Value& v, const std::string& what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(env, what + " must be a Uint8Array");
  return v.As<Napi::Uint8Array>();
}

inline std::vector<int32_t> i32Vec(const Napi::Int32Array& a) {
  return std::vector<int32_t>(a.Data(), a.Data() + a.ElementLength());
}

inline Napi::Float32Array newF32(const Napi::Env& env, const float* src, size_t n) {
  auto out = Napi::Float32Array::New(env, n);
  if (n) std::memcpy(out.Data(), src, n * 4);
  return out;
}

}  // namespace pds::binding
