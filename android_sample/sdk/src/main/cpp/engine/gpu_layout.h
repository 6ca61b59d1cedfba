// mobilegen engine: what both GPU backends (GLES and Metal) share, so the two bind and lay out
// exactly the same bytes: the PHWC4 tensor layout and its conversions, which tensors own a
// buffer, and the constants of each kernel's binding slots.
//
// Binding slots, per kernel (mobilegen/render/glsl.py and mobilegen/render/metal.py write the
// kernels to this contract; at most 4 buffers, GLES 3.1's minimum for compute shaders):
//   slot 0  output tensor, PHWC4 [ceil(c/4)][h][w][4] (8-bit: one uint per slice; float: vec4 /
//           float4, or 4 halves when TensorInfo::half: GLES's uvec2, Metal's half4, same bytes)
//   slot 1  inputs[0]
//   slot 2  inputs[1] (Add, Concat), or the per-channel vectors concatenated in BlobRef order:
//           Conv2D / DepthwiseConv2D: bias, out.multipliers, out.shifts (integer) or bias
//           FullyConnected: bias, scales (integer) or bias
//   slot 3  params.weights, raw from the blob
// Storage is per tensor (TensorInfo::half): every buffer has its tensor's own cells, so a kernel
// may read a float16 and a float32 tensor (ADD, CONCATENATION) and write a third; a kernel's float
// constants (slots 2 and 3) are float16 exactly when its output tensor is.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "engine.h"
#include "half.h"
#include "plan.h"

namespace mobilegen {
namespace gpu {

constexpr int kBindings = 4;

inline bool is_8bit(DType t) { return t == DType::Int8 || t == DType::UInt8; }

inline int32_t slices(int32_t c) { return (c + 3) / 4; }

// Bytes of a tensor in PHWC4 on the GPU: a cell of 4 channels is a uint (8-bit), 4 halves (a
// float tensor stored as float16, TensorInfo::half) or 4 floats (float).
inline size_t phwc4_bytes(const TensorInfo& t) {
  size_t cells = static_cast<size_t>(slices(t.c)) * t.h * t.w;
  return cells * (is_8bit(t.dtype) ? 4u : t.half ? 8u : 16u);
}

// Calls f(nhwc, phwc4) with the element index of every (y, x, c) in both layouts (PHWC4 counted
// in lanes: cell * 4 + c % 4).
template <typename F>
void for_each_element(const TensorInfo& t, F f) {
  const int32_t H = t.h, W = t.w, C = t.c;
  for (int32_t y = 0; y < H; ++y)
    for (int32_t x = 0; x < W; ++x)
      for (int32_t c = 0; c < C; ++c)
        f((static_cast<size_t>(y) * W + x) * C + c, ((static_cast<size_t>(c / 4) * H + y) * W + x) * 4 + c % 4);
}

// NHWC (the tensor's own dtype) -> PHWC4 as the kernels store it (a float16 tensor's floats
// rounded to nearest even); the padding lanes are zero.
inline void pack(const TensorInfo& t, const void* src, uint8_t* dst) {
  std::memset(dst, 0, phwc4_bytes(t));
  if (is_8bit(t.dtype)) {  // a uint per cell, little-endian: lane i is byte i
    const uint8_t* in = static_cast<const uint8_t*>(src);
    for_each_element(t, [&](size_t i, size_t j) { dst[j] = in[i]; });
  } else if (t.half) {  // 4 halves per cell (packHalf2x16 pairs / half4): lane i is half i
    const float* in = static_cast<const float*>(src);
    uint16_t* out = reinterpret_cast<uint16_t*>(dst);
    for_each_element(t, [&](size_t i, size_t j) { out[j] = float_to_half(in[i]); });
  } else {
    const float* in = static_cast<const float*>(src);
    float* out = reinterpret_cast<float*>(dst);
    for_each_element(t, [&](size_t i, size_t j) { out[j] = in[i]; });
  }
}

// PHWC4 -> NHWC.
inline void unpack(const TensorInfo& t, const uint8_t* src, void* dst) {
  if (is_8bit(t.dtype)) {
    uint8_t* out = static_cast<uint8_t*>(dst);
    for_each_element(t, [&](size_t i, size_t j) { out[i] = src[j]; });
  } else if (t.half) {
    const uint16_t* in = reinterpret_cast<const uint16_t*>(src);
    float* out = static_cast<float*>(dst);
    for_each_element(t, [&](size_t i, size_t j) { out[i] = half_to_float(in[j]); });
  } else {
    const float* in = reinterpret_cast<const float*>(src);
    float* out = static_cast<float*>(dst);
    for_each_element(t, [&](size_t i, size_t j) { out[i] = in[j]; });
  }
}

inline Status fail(Status st, const std::string& message, std::string* error) {
  if (error != nullptr) *error = "GPU backend: " + message;
  return st;
}

// Which tensor's buffer holds each tensor: (*owner)[id] is id itself for a tensor with its own
// buffer, the aliased input's owner for a RESHAPE alias (same bytes, same buffer), -1 for a
// tensor no kernel touches. Also the largest PHWC4 and NHWC sizes (staging for the inputs, the
// dump's unpacking). Storage (TensorInfo::half) was checked by Engine::create: an alias has its
// input's.
inline Status plan_tensor_storage(const ModelPlan& plan, std::vector<int32_t>* owner, size_t* max_phwc4,
                                  size_t* max_nhwc, std::string* error) {
  owner->assign(static_cast<size_t>(plan.num_tensors), -1);
  *max_phwc4 = *max_nhwc = 0;
  auto use = [&](int32_t id, int32_t holder) {
    if ((*owner)[id] < 0) (*owner)[id] = holder;
    *max_phwc4 = std::max(*max_phwc4, phwc4_bytes(plan.tensors[id]));
    *max_nhwc = std::max(*max_nhwc, tensor_bytes(plan.tensors[id]));
  };
  for (int32_t i = 0; i < plan.num_inputs; ++i) use(plan.inputs[i], plan.inputs[i]);
  for (int32_t i = 0; i < plan.num_kernels; ++i) {
    const Kernel& k = plan.kernels[i];
    for (int32_t in : k.inputs) {
      if (in >= 0) use(in, in);
    }
    if (k.gpu.shader < 0 && k.inputs[0] >= 0) {
      use(k.output, (*owner)[k.inputs[0]]);
    } else if (k.gpu.shader >= plan.num_shaders) {
      return fail(Status::GpuError, "kernel " + std::to_string(i) + " names a missing shader", error);
    } else {
      use(k.output, k.output);
    }
  }
  for (int32_t i = 0; i < plan.num_outputs; ++i) use(plan.outputs[i], plan.outputs[i]);
  return Status::Ok;
}

inline Status blob_region(const uint8_t* payload, size_t payload_size, BlobRef ref, const char* what,
                          std::vector<uint8_t>* out, std::string* error) {
  size_t padded = (static_cast<size_t>(ref.size) + 3u) & ~static_cast<size_t>(3);
  if (static_cast<size_t>(ref.offset) + padded > payload_size) {
    return fail(Status::InvalidBlob, std::string(what) + " lies outside the weights blob", error);
  }
  out->insert(out->end(), payload + ref.offset, payload + ref.offset + padded);
  return Status::Ok;
}

// The constants kernel `i` binds: *channel for slot 2 (the per-channel vectors, each checked for
// its size), *weights for slot 3; both left empty when the kernel has none. Float constants are
// float16 when the kernel's output tensor is (TensorInfo::half), else float32.
inline Status kernel_constants(const ModelPlan& plan, int32_t i, const uint8_t* payload, size_t payload_size,
                               std::vector<uint8_t>* channel, std::vector<uint8_t>* weights, std::string* error) {
  const Kernel& k = plan.kernels[i];
  channel->clear();
  weights->clear();
  // Per kernel, not per model: an int8 model may keep some ops in float (the converter leaves
  // them so), and their kernels have no integer output stage.
  const bool integer = plan.tensors[k.output].dtype != DType::Float32;
  const bool half = plan.tensors[k.output].half;
  Status st = Status::Ok;
  size_t out_slices = static_cast<size_t>(slices(plan.tensors[k.output].c));
  // int32 / float32 / float16 (the float constants of a kernel writing float16) [ceil(oc/4)*4]
  size_t vector_bytes = out_slices * (half ? 8 : 16);
  BlobRef expect[3];  // the per-channel regions, with their sizes
  size_t n = 0;
  switch (k.type) {
    case KernelType::Conv2D:
    case KernelType::DepthwiseConv2D: {
      const auto* p = static_cast<const ConvParams*>(k.params);
      st = blob_region(payload, payload_size, p->weights, "weights", weights, error);
      expect[n++] = p->bias;
      if (integer) {
        expect[n++] = p->out.multipliers;
        expect[n++] = p->out.shifts;
      }
      break;
    }
    case KernelType::FullyConnected: {
      const auto* p = static_cast<const FullyConnectedParams*>(k.params);
      st = blob_region(payload, payload_size, p->weights, "weights", weights, error);
      expect[n++] = p->bias;
      if (integer) expect[n++] = p->scales;
      break;
    }
    default:
      break;
  }
  if (st != Status::Ok) return st;
  for (size_t r = 0; r < n; ++r) {
    // float64 scales are twice as wide as the int32/float32 vectors
    size_t want = (k.type == KernelType::FullyConnected && r == 1) ? 2 * vector_bytes : vector_bytes;
    if (expect[r].size != want) {
      return fail(Status::InvalidBlob,
                  "kernel " + std::to_string(i) + ": a per-channel vector of " + std::to_string(expect[r].size) +
                      " bytes, expected " + std::to_string(want),
                  error);
    }
    if ((st = blob_region(payload, payload_size, expect[r], "a per-channel vector", channel, error)) != Status::Ok) {
      return st;
    }
  }
  return Status::Ok;
}

// 64-bit FNV-1a, for pipeline / program cache keys.
inline uint64_t fnv1a(const std::string& s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char ch : s) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace gpu
}  // namespace mobilegen
