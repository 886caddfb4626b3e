// The one weight-layout table, shared by every backend (cpu/cpu-backend.cc, cuda/cuda-backend.cu): which
// buffers a model spec needs, and where each Hugging Face tensor lands in them (q|k|v and gate|up are fused
// into one matrix each). Header-only so that both the host compiler and nvcc build it.
//
// Buffers (numel elements; the element type is the backend's choice per role):
//   global: embed [vocab, H], final norm [H], lm_head [vocab, H] (only when not tied)
//   per layer: input / post-attention norm [H], qkv [(nH + 2 nKV) D, H], qkv bias [(nH + 2 nKV) D] (qkvBias),
//              q / k norm [D] (qkNorm), o [H, nH D], gate|up [2 I, H], down [H, I]
// Tied embeddings (Hugging Face tie_word_embeddings): the output projection IS embed_tokens, so there is no
// lm_head buffer and a checkpoint's lm_head.weight, when present, is ignored (isIgnoredWeight), exactly as
// transformers ties the parameter after loading.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "pds/types.h"

namespace pds {

enum class WeightRole : int { Matrix = 0, Norm = 1, Bias = 2, Embedding = 3 };  // dummy init: norm ~1, others random

enum class WeightBuffer : int { Embed, FinalNorm, LmHead, InNorm, PostNorm, Qkv, QkvBias, QNorm, KNorm, O, GateUp, Down };

struct WeightBufferSpec {
  WeightBuffer buffer;
  int layer;         // -1 for the global buffers
  size_t numel;
  WeightRole role;   // of every tensor in it
  const char* what;  // for allocation errors
};

struct WeightSlotSpec {
  std::string name;             // the HF tensor name
  WeightBuffer buffer;
  int layer;                    // -1 for the global buffers
  size_t elemOffset;            // inside the buffer, in elements
  std::vector<int64_t> shape;   // what setWeight must be given
  WeightRole role;
};

struct WeightLayout {
  std::vector<WeightBufferSpec> buffers;
  std::vector<WeightSlotSpec> slots;
};

// A tensor the checkpoint may hold but the model does not read (setWeight accepts it and does nothing).
inline bool isIgnoredWeight(const ModelSpec& s, const std::string& name) {
  return s.tieWordEmbeddings && name == "lm_head.weight";
}

inline WeightLayout weightLayout(const ModelSpec& s) {
  WeightLayout w;
  const int64_t H = s.hiddenSize, I = s.intermediateSize, D = s.headDim, nH = s.numHeads, nKV = s.numKvHeads,
                V = s.vocabSize, Q = (nH + 2 * nKV) * D;
  auto buffer = [&](WeightBuffer b, int layer, int64_t numel, WeightRole role, const char* what) {
    w.buffers.push_back(WeightBufferSpec{b, layer, static_cast<size_t>(numel), role, what});
  };
  auto slot = [&](const std::string& name, WeightBuffer b, int layer, int64_t off, std::vector<int64_t> shape, WeightRole role) {
    w.slots.push_back(WeightSlotSpec{name, b, layer, static_cast<size_t>(off), std::move(shape), role});
  };
  using B = WeightBuffer;
  using R = WeightRole;
  buffer(B::Embed, -1, V * H, R::Embedding, "embed_tokens");
  slot("model.embed_tokens.weight", B::Embed, -1, 0, {V, H}, R::Embedding);
  buffer(B::FinalNorm, -1, H, R::Norm, "norm");
  slot("model.norm.weight", B::FinalNorm, -1, 0, {H}, R::Norm);
  if (!s.tieWordEmbeddings) {
    buffer(B::LmHead, -1, V * H, R::Matrix, "lm_head");
    slot("lm_head.weight", B::LmHead, -1, 0, {V, H}, R::Matrix);
  }
  for (int l = 0; l < s.numLayers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    buffer(B::InNorm, l, H, R::Norm, "input_layernorm");
    slot(p + "input_layernorm.weight", B::InNorm, l, 0, {H}, R::Norm);
    buffer(B::PostNorm, l, H, R::Norm, "post_attention_layernorm");
    slot(p + "post_attention_layernorm.weight", B::PostNorm, l, 0, {H}, R::Norm);
    buffer(B::Qkv, l, Q * H, R::Matrix, "qkv_proj");
    slot(p + "self_attn.q_proj.weight", B::Qkv, l, 0, {nH * D, H}, R::Matrix);
    slot(p + "self_attn.k_proj.weight", B::Qkv, l, nH * D * H, {nKV * D, H}, R::Matrix);
    slot(p + "self_attn.v_proj.weight", B::Qkv, l, (nH + nKV) * D * H, {nKV * D, H}, R::Matrix);
    if (s.qkvBias) {
      buffer(B::QkvBias, l, Q, R::Bias, "qkv bias");
      slot(p + "self_attn.q_proj.bias", B::QkvBias, l, 0, {nH * D}, R::Bias);
      slot(p + "self_attn.k_proj.bias", B::QkvBias, l, nH * D, {nKV * D}, R::Bias);
      slot(p + "self_attn.v_proj.bias", B::QkvBias, l, (nH + nKV) * D, {nKV * D}, R::Bias);
    }
    if (s.qkNorm) {
      buffer(B::QNorm, l, D, R::Norm, "q_norm");
      slot(p + "self_attn.q_norm.weight", B::QNorm, l, 0, {D}, R::Norm);
      buffer(B::KNorm, l, D, R::Norm, "k_norm");
      slot(p + "self_attn.k_norm.weight", B::KNorm, l, 0, {D}, R::Norm);
    }
    buffer(B::O, l, H * nH * D, R::Matrix, "o_proj");
    slot(p + "self_attn.o_proj.weight", B::O, l, 0, {H, nH * D}, R::Matrix);
    buffer(B::GateUp, l, 2 * I * H, R::Matrix, "gate_up_proj");
    slot(p + "mlp.gate_proj.weight", B::GateUp, l, 0, {I, H}, R::Matrix);
    slot(p + "mlp.up_proj.weight", B::GateUp, l, I * H, {I, H}, R::Matrix);
    buffer(B::Down, l, H * I, R::Matrix, "down_proj");
    slot(p + "mlp.down_proj.weight", B::Down, l, 0, {H, I}, R::Matrix);
  }
  return w;
}

// Where a backend keeps each buffer: its own members for the global ones, one field per layer buffer
// (T = the backend's buffer type; a field of Layer for each per-layer buffer).
template <class T, class Layer>
struct WeightFields {
  T *embed, *finalNorm, *lmHead;
  T Layer::*inNorm, Layer::*postNorm, Layer::*qkv, Layer::*qkvBias, Layer::*qNorm, Layer::*kNorm, Layer::*o,
      Layer::*gateUp, Layer::*down;
};

template <class T, class Layer>
T* weightField(const WeightFields<T, Layer>& f, std::vector<Layer>& layers, WeightBuffer b, int layer) {
  switch (b) {
    case WeightBuffer::Embed: return f.embed;
    case WeightBuffer::FinalNorm: return f.finalNorm;
    case WeightBuffer::LmHead: return f.lmHead;
    default: break;
  }
  Layer& L = layers.at(static_cast<size_t>(layer));
  switch (b) {
    case WeightBuffer::InNorm: return &(L.*f.inNorm);
    case WeightBuffer::PostNorm: return &(L.*f.postNorm);
    case WeightBuffer::Qkv: return &(L.*f.qkv);
    case WeightBuffer::QkvBias: return &(L.*f.qkvBias);
    case WeightBuffer::QNorm: return &(L.*f.qNorm);
    case WeightBuffer::KNorm: return &(L.*f.kNorm);
    case WeightBuffer::O: return &(L.*f.o);
    case WeightBuffer::GateUp: return &(L.*f.gateUp);
    case WeightBuffer::Down: return &(L.*f.down);
    default: throw std::logic_error("weight layout: unknown buffer");
  }
}

inline std::string shapeString(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

}  // namespace pds
