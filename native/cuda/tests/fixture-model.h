// Loads a Hugging Face checkpoint folder (config.json + model.safetensors) into a pds::Backend:
// a minimal safetensors reader (F32/F16/BF16 tensors) and config.json -> ModelSpec.
#pragma once
#include <cstdint>
#include <cstring>
#include <functional>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "mini-json.h"
#include "pds/backend.h"

namespace pds::test {

inline std::string readFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::stringstream ss; ss << f.rdbuf();
  return ss.str();
}

inline ModelSpec specFromConfig(const Json& c, DType weightDtype) {
  ModelSpec s;
  s.numLayers = (int)c["num_hidden_layers"].num;
  s.hiddenSize = (int)c["hidden_size"].num;
  s.intermediateSize = (int)c["intermediate_size"].num;
  s.numHeads = (int)c["num_attention_heads"].num;
  s.numKvHeads = (int)c.number("num_key_value_heads", s.numHeads);
  s.headDim = (int)c.number("head_dim", s.hiddenSize / s.numHeads);
  s.vocabSize = (int)c["vocab_size"].num;
  s.rmsNormEps = (float)c.number("rms_norm_eps", 1e-6);
  s.ropeTheta = (float)c.number("rope_theta", 10000);
  const Json* scaling = c.has("rope_scaling") && c["rope_scaling"].kind == Json::Obj ? &c["rope_scaling"] : nullptr;
  if (c.has("rope_parameters") && c["rope_parameters"].kind == Json::Obj) {
    s.ropeTheta = (float)c["rope_parameters"].number("rope_theta", s.ropeTheta);
    scaling = &c["rope_parameters"];
  }
  if (scaling && scaling->has("rope_type") && (*scaling)["rope_type"].str == "llama3") {
    s.ropeType = RopeType::Llama3;
    s.ropeFactor = (float)scaling->number("factor", 8);
    s.ropeLowFreqFactor = (float)scaling->number("low_freq_factor", 1);
    s.ropeHighFreqFactor = (float)scaling->number("high_freq_factor", 4);
    s.ropeOriginalMaxPos = (int)scaling->number("original_max_position_embeddings", 8192);
  }
  s.tieWordEmbeddings = c.has("tie_word_embeddings") && c["tie_word_embeddings"].b;
  const std::string type = c["model_type"].str;
  s.qkvBias = type == "qwen2" || (c.has("attention_bias") && c["attention_bias"].b);
  s.qkNorm = type == "qwen3";
  s.weightDtype = weightDtype;
  const std::string cdt = c.has("dtype") ? c["dtype"].str : c.has("torch_dtype") ? c["torch_dtype"].str : "float32";
  s.ropeFreqDtype = cdt == "bfloat16" ? DType::BF16 : cdt == "float16" ? DType::F16 : DType::F32;
  return s;
}

// Calls fn(name, data, dtype, shape) for every tensor of a safetensors file (data points into `file`).
inline void forEachTensor(const std::string& file,
                          const std::function<void(const std::string&, const char*, DType, const std::vector<int64_t>&)>& fn) {
  uint64_t n = 0;
  std::memcpy(&n, file.data(), 8);
  const Json h = Json::parse(file.substr(8, n));
  const char* base = file.data() + 8 + n;
  for (const auto& [name, t] : h.obj) {
    if (name == "__metadata__") continue;
    const std::string dt = t["dtype"].str;
    const DType d = dt == "F32" ? DType::F32 : dt == "F16" ? DType::F16 : dt == "BF16" ? DType::BF16
                  : throw std::runtime_error("unsupported safetensors dtype " + dt);
    std::vector<int64_t> shape;
    for (auto& e : t["shape"].arr) shape.push_back((int64_t)e.num);
    fn(name, base + (size_t)t["data_offsets"][0].num, d, shape);
  }
}

// Every tensor of model.safetensors goes through Backend::setWeight in its stored dtype.
inline void loadSafetensors(Backend& b, const std::string& path) {
  const std::string data = readFile(path);
  forEachTensor(data, [&](const std::string& name, const char* p, DType d, const std::vector<int64_t>& shape) {
    b.setWeight(name, p, d, shape);
  });
  b.finalizeWeights();
}

}  // namespace pds::test
