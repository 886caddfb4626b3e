// A small JSON reader for the test harness (config.json, reference.json, safetensors headers).
// Parses into a tree of Json values; throws std::runtime_error on malformed input.
#pragma once
#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace pds::test {

struct Json {
  enum Kind { Null, Bool, Num, Str, Arr, Obj } kind = Null;
  double num = 0;
  bool b = false;
  std::string str;
  std::vector<Json> arr;
  std::map<std::string, Json> obj;

  bool has(const std::string& k) const { return kind == Obj && obj.count(k); }
  const Json& operator[](const std::string& k) const {
    auto it = obj.find(k);
    if (kind != Obj || it == obj.end()) throw std::runtime_error("json: missing key " + k);
    return it->second;
  }
  const Json& operator[](size_t i) const { return arr.at(i); }
  double number(const std::string& k, double def) const { return has(k) && obj.at(k).kind == Num ? obj.at(k).num : def; }
  std::vector<int> ints() const { std::vector<int> v; for (auto& e : arr) v.push_back((int)e.num); return v; }
  std::vector<double> nums() const { std::vector<double> v; for (auto& e : arr) v.push_back(e.num); return v; }

  static Json parse(const std::string& text) {
    size_t i = 0;
    Json j = value(text, i);
    return j;
  }

 private:
  static void ws(const std::string& s, size_t& i) { while (i < s.size() && isspace((unsigned char)s[i])) ++i; }
  static Json value(const std::string& s, size_t& i) {
    ws(s, i);
    if (i >= s.size()) throw std::runtime_error("json: unexpected end");
    Json j;
    const char c = s[i];
    if (c == '{') {
      j.kind = Obj; ++i; ws(s, i);
      if (s[i] == '}') { ++i; return j; }
      for (;;) {
        ws(s, i);
        Json k = value(s, i);
        ws(s, i);
        if (s[i++] != ':') throw std::runtime_error("json: expected :");
        j.obj[k.str] = value(s, i);
        ws(s, i);
        if (s[i] == ',') { ++i; continue; }
        if (s[i++] != '}') throw std::runtime_error("json: expected }");
        return j;
      }
    }
    if (c == '[') {
      j.kind = Arr; ++i; ws(s, i);
      if (s[i] == ']') { ++i; return j; }
      for (;;) {
        j.arr.push_back(value(s, i));
        ws(s, i);
        if (s[i] == ',') { ++i; continue; }
        if (s[i++] != ']') throw std::runtime_error("json: expected ]");
        return j;
      }
    }
    if (c == '"') {
      j.kind = Str; ++i;
      while (s[i] != '"') {
        if (s[i] == '\\') {
          ++i;
          const char e = s[i++];
          if (e == 'n') j.str += '\n'; else if (e == 't') j.str += '\t'; else if (e == 'u') { j.str += '?'; i += 4; }
          else j.str += e;
        } else j.str += s[i++];
      }
      ++i;
      return j;
    }
    if (s.compare(i, 4, "true") == 0) { j.kind = Bool; j.b = true; i += 4; return j; }
    if (s.compare(i, 5, "false") == 0) { j.kind = Bool; i += 5; return j; }
    if (s.compare(i, 4, "null") == 0) { i += 4; return j; }
    char* end = nullptr;
    j.kind = Num;
    j.num = std::strtod(s.c_str() + i, &end);
    if (end == s.c_str() + i) throw std::runtime_error("json: bad value at " + std::to_string(i));
    i = end - s.c_str();
    return j;
  }
};

}  // namespace pds::test
