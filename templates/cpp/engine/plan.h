// mobilegen engine: the model plan, as generated into model_plan.cpp.
//
// One plan drives both backends. Every kernel's arithmetic was decided by mobilegen's plan (the
// same plan its numpy simulator runs); this file only carries the resolved integers, the tensor
// table and the places of the constants in the weights blob.
//
// Layouts (bracket notation):
//   activations, CPU backend      [h][w][c]                          (batch 1, NHWC)
//   activations, GPU backend      [ceil(c/4)][h][w][4]               (PHWC4, zero padded);
//                                 8-bit tensors pack the 4 channels of a slice into one uint
//                                 (channel 4s+i in bits 8i..8i+7), float tensors use one vec4
//                                 (float32 storage) or one uvec2 of 4 halves (TensorInfo::half,
//                                 packHalf2x16: channel 4s+i in bits 16(i%2).. of word i/2)
//   conv filter (blob)            [ceil(oc/4)][kh][kw][ceil(ic/4)][o4][i4]
//   depthwise filter (blob)       [ceil(oc/4)][kh][kw][4]
//   fully connected (blob)        [ceil(oc/4)][ceil(ic/4)][o4][i4]
//   per-channel vectors (blob)    [ceil(oc/4)*4]                     (bias, multipliers, shifts)
// 8-bit weights are stored raw (int8 or uint8, as in the model); kernels add weights_offset.
// Float weights and biases are float32, or IEEE float16 when the kernel's output tensor is stored
// as float16 (TensorInfo::half): a kernel's constants have its output's storage precision.
// A tensor of rank < 4 is stored as [1][1][1][c] (h = w = 1) with c = its last dimension times
// the others, so RESHAPE between equal (h, w, c) views is free.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mobilegen {

enum class DType : int32_t { Float32 = 0, Int8 = 1, UInt8 = 2 };

enum class Precision : int32_t {
  Int8 = 0,  // integer kernels, bit-exact with TFLite's reference kernels
  Fp32 = 1,  // float kernels on float32 storage
  // Float kernels computing in float32 on float16 storage: every float tensor the engine holds
  // (the graph input once taken in, each kernel's output) is rounded to float16, to nearest even
  // (half.h), and so are the float constants of the kernels writing them, except the tensors the
  // generator's precision plan keeps in float32 (TensorInfo::half false). DType stays Float32: the
  // API, dumps and the CPU backend's arena see float32 arrays (of float16 values where half).
  Fp16 = 2,
};

// A region of the weights blob's payload. Offsets are 16-byte aligned; size 0 means absent.
struct BlobRef {
  uint32_t offset;
  uint32_t size;
};

struct TensorInfo {
  int32_t index;  // TFLite tensor index: the dump file is "<index>.npy"
  const char* name;
  DType dtype;
  int32_t rank;
  int32_t shape[4];  // TFLite shape (first `rank` entries)
  int32_t h, w, c;   // storage view, see the header comment
  float scale;       // 0 for float tensors
  int32_t zero_point;
  // Stored as float16: a float tensor at Precision::Fp16 that the plan does not keep in float32.
  // A RESHAPE's output always has its input's storage (they may share one buffer).
  bool half;
};

enum class KernelType : int32_t {
  Conv2D = 0,
  DepthwiseConv2D,
  FullyConnected,
  AveragePool2D,
  MaxPool2D,
  Mean,
  Add,
  Pad,
  Concat,  // two inputs (more are lowered to a chain by the generator)
  Softmax,
  Quantize,    // float32 -> 8-bit
  Requantize,  // 8-bit -> 8-bit
  Dequantize,  // 8-bit -> float32
  Reshape,     // a copy when the (h, w, c) views differ, else an alias
  Activation,  // standalone RELU / RELU6
};

struct Window {
  int32_t in_h, in_w, in_c, out_h, out_w, out_c;
  int32_t k_h, k_w, stride_h, stride_w, dil_h, dil_w;
  int32_t pad_top, pad_left;  // the odd pixel of SAME padding goes bottom/right
};

// out = clamp(MultiplyByQuantizedMultiplier(acc, multiplier[c], shift[c]) + zero_point, act_min,
// act_max) for integer kernels (shift > 0 is a left shift, TFLite's convention);
// out = clamp(acc, lo, hi) for float kernels (lo/hi are +-INFINITY when there is no activation).
struct OutputStage {
  int32_t act_min, act_max, zero_point;
  float lo, hi;
  BlobRef multipliers;  // int32 [ceil(oc/4)*4]
  BlobRef shifts;       // int32 [ceil(oc/4)*4]
};

struct ConvParams {  // Conv2D and DepthwiseConv2D
  Window win;
  int32_t depth_multiplier;  // depthwise: output channel oc reads input channel oc / dm
  int32_t input_offset;      // -input zero point (0 for float)
  int32_t weights_offset;    // -filter zero point (0 for int8 and float)
  BlobRef weights;           // see the header comment for the layout
  BlobRef bias;              // int32 or float32 [ceil(oc/4)*4]
  OutputStage out;
};

// Integer FULLY_CONNECTED follows TFLite's reference kernel, which rescales in double:
// out = clamp(round_half_away(double(acc) * scale[c]) + output_offset, act_min, act_max).
struct FullyConnectedParams {
  int32_t in_c, out_c;
  int32_t input_offset, weights_offset, output_offset;
  int32_t act_min, act_max;
  float lo, hi;    // float kernels
  BlobRef weights; // [ceil(oc/4)][ceil(ic/4)][o4][i4]
  BlobRef bias;    // int32 or float32 [ceil(oc/4)*4]
  BlobRef scales;  // float64 [ceil(oc/4)*4] (integer kernels only)
};

struct PoolParams {  // AveragePool2D, MaxPool2D: input and output share quantization
  Window win;
  int32_t act_min, act_max;
  float lo, hi;
};

// Integer MEAN over h, w (reference QuantizedMeanOrSum):
// out = clamp(MBQM(sum - input_zero_point * count, multiplier, shift) + output_zero_point).
// Float: sum / count.
struct MeanParams {
  int32_t h, w, c, count;
  int32_t input_zero_point, output_zero_point, multiplier, shift, act_min, act_max;
};

// Integer ADD (reference, left_shift 20): both inputs are rescaled to a common scale, summed,
// rescaled to the output. Float: a + b clamped to [lo, hi].
struct AddParams {
  int32_t left_shift;
  int32_t input1_offset, input1_multiplier, input1_shift;
  int32_t input2_offset, input2_multiplier, input2_shift;
  int32_t output_offset, output_multiplier, output_shift;
  int32_t act_min, act_max;
  float lo, hi;
};

struct PadParams {
  int32_t pad_top, pad_bottom, pad_left, pad_right;  // h and w only; c padding is rejected
  int32_t value;                                     // the output zero point (0 for float)
};

struct ConcatParams {  // along channels
  int32_t c0, c1;
  // Legacy uint8 input n with its own quantization (rescale<n> = 1) is rescaled as LiteRT's
  // ConcatenationWithScaling: clamp(roundf(x * scale<n> + bias<n>) + output_zero_point, 0, 255),
  // two float32 roundings (no fused multiply-add). Otherwise (rescale<n> = 0) it is copied.
  int32_t rescale0;
  float scale0, bias0;
  int32_t rescale1;
  float scale1, bias1;
  int32_t output_zero_point;
};

// Integer SOFTMAX over c (reference kernel; gemmlowp fixed point), output scale 1/256.
struct SoftmaxParams {
  int32_t input_multiplier, input_left_shift, diff_min;
  int32_t output_min, output_max;
  float beta;  // float kernels
};

struct QuantizeParams {  // Quantize: float -> q; Requantize: q -> q; Dequantize: q -> float
  float scale;  // Quantize: output scale; Dequantize: input scale
  int32_t zero_point;
  int32_t input_zero_point, output_zero_point, multiplier, shift;  // Requantize
  int32_t qmin, qmax;
};

struct ActivationParams {  // standalone RELU / RELU6 (integer: requantize then clamp)
  int32_t input_zero_point, output_offset, multiplier, shift, act_min, act_max;
  float lo, hi;
};

struct Dispatch {
  int32_t shader;         // index into ModelPlan::shaders, -1: no GPU program (alias)
  uint32_t groups[3];     // workgroups / threadgroups: glDispatchCompute's arguments
  // Invocations per group. GLES: the local size compiled into the shader (for checks only).
  // Metal: the threadsPerThreadgroup the kernel was rendered for; the backend may shrink it (and
  // grow the group count to cover the same grid) when a pipeline allows fewer, except where the
  // kernel's threadgroup memory is sized by it (Softmax).
  uint32_t threads[3];
};

struct Kernel {
  KernelType type;
  int32_t op_index;       // the TFLite operator it comes from
  int32_t inputs[2];      // tensor ids (index into ModelPlan::tensors), -1 when absent
  int32_t output;         // tensor id
  const void* params;     // the *Params struct of `type`
  Dispatch gpu;
};

struct ShaderSource {
  const char* name;
  // GLES: the kernel's own GLSL (workgroup size, buffers, constants, main), compiled after
  // ModelPlan::shader_library. Metal: nullptr; `name` is a kernel function of the one Metal
  // library, ModelPlan::shader_library.
  const char* source;
};

struct ModelPlan {
  const char* model_name;
  const char* model_sha256;
  uint32_t blob_version;
  uint8_t blob_plan_hash[16];  // must equal the weights blob's header
  Precision precision;
  const TensorInfo* tensors;
  int32_t num_tensors;
  const Kernel* kernels;
  int32_t num_kernels;
  // Every GPU program is compiled from two strings: this library (#version, precisions and the
  // helpers kernels share, stored once) followed by the shader's own source.
  const char* shader_library;
  const ShaderSource* shaders;
  int32_t num_shaders;
  const int32_t* inputs;  // tensor ids of the graph inputs, in the model's order
  int32_t num_inputs;
  const int32_t* outputs;  // tensor ids of the graph outputs, in the model's order
  int32_t num_outputs;
};

// Bytes of one element of `dtype`, and of a whole tensor (its h * w * c storage view), as the API
// and the CPU backend store it.
inline size_t dtype_size(DType dtype) { return dtype == DType::Float32 ? 4 : 1; }
inline size_t tensor_bytes(const TensorInfo& t) {
  return static_cast<size_t>(t.h) * static_cast<size_t>(t.w) * static_cast<size_t>(t.c) * dtype_size(t.dtype);
}

// Defined in the generated model_plan.cpp.
const ModelPlan& model_plan();

}  // namespace mobilegen
