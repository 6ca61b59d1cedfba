// mobilegen engine: the CPU backend. The same arithmetic as mobilegen's simulator (and so as
// TFLite's reference kernels): integer kernels bit for bit, float kernels in float32.
//
// Activations live in one arena as NHWC arrays of each tensor's own dtype, allocated in init();
// run() allocates nothing. Constants are read once from the blob's packed GPU layouts (plan.h)
// and repacked for the CPU:
//   integer conv / fully connected  [round4(oc)][round16(K)] int16, w + weights_offset, where
//                                   K = kh*kw*ic in (ky, kx, ic) order: dot products over
//                                   contiguous rows, which compilers vectorize as 16-bit
//                                   multiply-add (SSE2 pmaddwd, NEON smlal)
//   integer depthwise               [kh][kw][round4(oc)] int16: the channel loop innermost
//   float conv                      [round16(oc)/16][K][16] float panels: a register-blocked
//                                   GEMM over tiles of pixels (gemm_block_f32), summing each
//                                   output in (ky, kx, ic) order like the reference
//   float fully connected           [K][round4(oc)] float: a broadcast-multiply over channels
// Integer convolutions gather (x + input_offset) as int16 rows (an im2col for k > 1), so padding
// taps hold 0 and contribute nothing, exactly as the reference kernels skip them.
//
// Precision::Fp16 runs the float kernels unchanged on float16 numbers, as the GPU does: the blob's
// float16 constants are widened once, and the graph input and every float kernel output stored as
// float16 (TensorInfo::half) are rounded to float16 in place (half.h) when they are stored. Storage
// is per tensor: a tensor the plan keeps in float32 is stored as computed, and the kernel writing
// it reads float32 constants (a kernel's constants have its output tensor's precision).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "fixedpoint.h"
#include "half.h"

#if defined(__ARM_NEON) && defined(__arm__)
#include <arm_neon.h>  // armv7's float GEMM (gemm_block_f32)
#endif

// Floats as written, no fused multiply-add: CMake passes -ffp-contract=off, but Xcode and SwiftPM
// build with clang's default (contraction within an expression, which fuses `s += a * b` on
// arm64), and SwiftPM has no safe way to pass the flag. The pragma holds for this whole file.
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

// On x86-64 Linux hosts the hot loops are compiled twice, baseline (SSE2) and AVX2, and picked
// at load time (GCC/Clang function multiversioning): AVX2 has the per-lane shifts the
// requantization needs to vectorize. Elsewhere (Android arm64: NEON) one version is built.
#if defined(__x86_64__) && defined(__linux__) && !defined(__ANDROID__) && \
    (defined(__GNUC__) || defined(__clang__)) && !defined(MOBILEGEN_NO_MULTIVERSION)
#define MOBILEGEN_HOT __attribute__((target_clones("avx2", "default")))
#else
#define MOBILEGEN_HOT
#endif

namespace mobilegen {
namespace {

namespace fx = fixedpoint;

constexpr int kLanes = 4;          // the blob's channel packing (plan.h)
constexpr int kKAlign = 16;        // reduction rows padded with zeros to whole vectors
constexpr int kGemmRows = 4;       // pixels per integer GEMM micro-kernel
constexpr int kGemmCols = 4;       // output channels per integer GEMM micro-kernel
constexpr int kFGemmRows = 4;      // pixels per float GEMM micro-kernel
constexpr int kFGemmCols = 16;     // output channels per float GEMM micro-kernel (one weight panel)
constexpr size_t kTileBytes = 64 * 1024;  // int16 im2col tile kept in L2 while all weights pass
constexpr int kMaxTilePixels = 256;
constexpr size_t kArenaAlign = 64;

int ceil_div(int a, int b) { return (a + b - 1) / b; }
int round_up(int a, int b) { return ceil_div(a, b) * b; }
size_t round_up(size_t a, size_t b) { return (a + b - 1) / b * b; }

template <typename T>
T clamp_to(int32_t v, int32_t lo, int32_t hi) {
  return static_cast<T>(std::min(std::max(v, lo), hi));
}

// --- reading constants from the payload ------------------------------------------------------

class Constants {
 public:
  Constants(const uint8_t* payload, size_t size, std::string* error) : payload_(payload), size_(size), error_(error) {}

  // Whether the float constants read next (one kernel's) are float16: the kernel's output tensor is.
  void set_half_floats(bool half_floats) { half_floats_ = half_floats; }

  // Copies `count` values of T from `ref`, which must hold exactly that many bytes.
  template <typename T>
  bool read(const BlobRef& ref, size_t count, const char* what, int kernel, std::vector<T>* out) {
    const size_t bytes = count * sizeof(T);
    if (ref.size != bytes || uint64_t{ref.offset} + ref.size > size_) {
      if (error_) {
        *error_ = "weights blob: kernel " + std::to_string(kernel) + " " + what + " holds " +
                  std::to_string(ref.size) + " bytes, expected " + std::to_string(bytes);
      }
      return false;
    }
    out->resize(count);
    if (bytes) std::memcpy(out->data(), payload_ + ref.offset, bytes);
    return true;
  }

  // Float weights or biases: float32 in the blob, or float16 (set_half_floats).
  bool read_floats(const BlobRef& ref, size_t count, const char* what, int kernel, std::vector<float>* out) {
    if (!half_floats_) return read(ref, count, what, kernel, out);
    std::vector<uint16_t> halves;
    if (!read(ref, count, what, kernel, &halves)) return false;
    out->resize(count);
    for (size_t i = 0; i < count; ++i) (*out)[i] = half_to_float(halves[i]);
    return true;
  }

 private:
  const uint8_t* payload_;
  size_t size_;
  bool half_floats_ = false;
  std::string* error_;
};

// Raw 8-bit weights as int32, the signedness following the model's activations (int8 models have
// int8 weights, legacy uint8 models uint8).
std::vector<int32_t> widen8(const std::vector<uint8_t>& raw, bool is_signed) {
  std::vector<int32_t> w(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    w[i] = is_signed ? static_cast<int32_t>(static_cast<int8_t>(raw[i])) : static_cast<int32_t>(raw[i]);
  }
  return w;
}

// --- kernels ---------------------------------------------------------------------------------

// Scratch memory shared by all kernels (they run one at a time), sized in init().
struct Scratch {
  std::vector<int16_t> i16;
  std::vector<int32_t> i32;
  std::vector<float> f32;
};

class CpuKernel {
 public:
  virtual ~CpuKernel() = default;
  virtual void run(uint8_t* const* tensors, Scratch& s) = 0;
  // Scratch each run needs (elements).
  size_t need_i16 = 0, need_i32 = 0, need_f32 = 0;
};

// Per-channel requantization: out = clamp(MBQM(acc + bias, M, shift) + zp, lo, hi), with the
// shifts split once into left / right / rounding mask so that the per-element code is branch-free
// (about 1.6x faster scalar; vectorized where the ISA has per-lane shifts, e.g. NEON, AVX2).
struct Requant {
  std::vector<int32_t> bias, multiplier, shift;  // as in the blob
  std::vector<int32_t> left, right, mask;        // derived in prepare()
  int32_t zero_point = 0, act_min = 0, act_max = 0;

  // Multipliers from QuantizeMultiplier are in [0, 2^31), which keeps SRDHM from saturating;
  // anything else (or a shift outside [-31, 31]) is a corrupt plan.
  bool prepare(const OutputStage& out) {
    zero_point = out.zero_point;
    act_min = out.act_min;
    act_max = out.act_max;
    const size_t n = multiplier.size();
    left.resize(n);
    right.resize(n);
    mask.resize(n);
    for (size_t c = 0; c < n; ++c) {
      if (multiplier[c] < 0 || shift[c] < -31 || shift[c] > 31) return false;
      left[c] = std::max(shift[c], 0);
      right[c] = std::max(-shift[c], 0);
      mask[c] = static_cast<int32_t>((uint32_t{1} << right[c]) - 1u);
    }
    return true;
  }

  template <typename T>
  void row(const int32_t* acc, int n, T* out) const;
};

// Shared by the int8 and uint8 rows (no templates: multiversioned functions cannot be).
#define MOBILEGEN_REQUANT_ROW(T)                                                                          \
  const int32_t* __restrict b = rq.bias.data();                                                           \
  const int32_t* __restrict m = rq.multiplier.data();                                                     \
  const int32_t* __restrict l = rq.left.data();                                                           \
  const int32_t* __restrict r = rq.right.data();                                                          \
  const int32_t* __restrict k = rq.mask.data();                                                           \
  const int32_t zp = rq.zero_point, lo = rq.act_min, hi = rq.act_max;                                     \
  for (int c = 0; c < n; ++c) {                                                                           \
    /* fixedpoint::mbqm, inlined: SRDHM of the (wrapping) left-shifted value, then RDBPOT. */             \
    const int32_t x = static_cast<int32_t>((static_cast<uint32_t>(acc[c]) + static_cast<uint32_t>(b[c])) \
                                           << l[c]);                                                      \
    const int32_t t = static_cast<int32_t>((static_cast<int64_t>(x) * m[c] + (int64_t{1} << 30)) >> 31);  \
    const int32_t v = (t >> r[c]) + ((t & k[c]) > ((k[c] >> 1) + (t < 0 ? 1 : 0)) ? 1 : 0);              \
    out[c] = static_cast<T>(std::min(std::max(fx::add_wrap(v, zp), lo), hi));                            \
  }

MOBILEGEN_HOT void requant_row_s8(const Requant& rq, const int32_t* __restrict acc, int n, int8_t* __restrict out) {
  MOBILEGEN_REQUANT_ROW(int8_t)
}
MOBILEGEN_HOT void requant_row_u8(const Requant& rq, const int32_t* __restrict acc, int n, uint8_t* __restrict out) {
  MOBILEGEN_REQUANT_ROW(uint8_t)
}
#undef MOBILEGEN_REQUANT_ROW

template <>
void Requant::row<int8_t>(const int32_t* acc, int n, int8_t* out) const {
  requant_row_s8(*this, acc, n, out);
}
template <>
void Requant::row<uint8_t>(const int32_t* acc, int n, uint8_t* out) const {
  requant_row_u8(*this, acc, n, out);
}

// Integer GEMM micro-kernel: acc[r][c] = sum_k a[r][k] * w[c][k] over int16 rows of length kp
// (a multiple of kKAlign). Written so that the k loop vectorizes as 16x16->32 multiply-adds.
MOBILEGEN_HOT void gemm_block(const int16_t* __restrict a, const int16_t* __restrict w, int kp,
                int32_t* __restrict acc, int acc_stride) {
  int32_t sum[kGemmRows][kGemmCols] = {};
  for (int k = 0; k < kp; ++k) {
    for (int r = 0; r < kGemmRows; ++r) {
      for (int c = 0; c < kGemmCols; ++c) {
        sum[r][c] += static_cast<int32_t>(a[r * kp + k]) * static_cast<int32_t>(w[c * kp + k]);
      }
    }
  }
  for (int r = 0; r < kGemmRows; ++r) {
    for (int c = 0; c < kGemmCols; ++c) acc[r * acc_stride + c] = sum[r][c];
  }
}

// Float GEMM micro-kernel: acc[r][c] = sum_k a[r][k] * w[k][c] for kFGemmRows im2col rows of
// length `k` (row stride lda) and one weight panel [k][kFGemmCols]. Each output is summed from 0
// in increasing k, one multiply and one add per step (no FMA: the avx2 version does not enable
// it), so results match the per-pixel reference order exactly. The accumulators are GCC/Clang
// vector types V (SLP vectorization of plain loops is unreliable here), R rows of them kept in
// registers while the panel streams from L1/L2. Unaligned loads and stores go through memcpy
// (an attribute-aligned typedef would lose its alignment as a template argument).
typedef float f32x4 __attribute__((vector_size(16)));
typedef float f32x8 __attribute__((vector_size(32)));

template <typename V, int R>
inline __attribute__((always_inline)) void gemm_rows_f32(const float* __restrict a, int lda, const float* __restrict w,
                                                         int k, float* __restrict acc, int acc_stride) {
  constexpr int kVec = kFGemmCols / (sizeof(V) / sizeof(float));
  V sum[R][kVec] = {};
  for (int kk = 0; kk < k; ++kk) {
    const float* wr = w + static_cast<size_t>(kk) * kFGemmCols;
    V wv[kVec];
    for (int j = 0; j < kVec; ++j) std::memcpy(&wv[j], wr + j * sizeof(V) / sizeof(float), sizeof(V));
    for (int r = 0; r < R; ++r) {
      const float v = a[static_cast<size_t>(r) * lda + kk];
      for (int j = 0; j < kVec; ++j) sum[r][j] += v * wv[j];
    }
  }
  for (int r = 0; r < R; ++r) {
    float* dst = acc + static_cast<size_t>(r) * acc_stride;
    for (int j = 0; j < kVec; ++j) std::memcpy(dst + j * sizeof(V) / sizeof(float), &sum[r][j], sizeof(V));
  }
}

#if defined(__x86_64__) && defined(__linux__) && !defined(__ANDROID__) && \
    (defined(__GNUC__) || defined(__clang__)) && !defined(MOBILEGEN_NO_MULTIVERSION)
// Function multiversioning by hand (the register blocking differs): AVX2 holds 4 x 16 sums in
// 8 ymm registers; SSE2 has only 16 xmm registers, so it runs the 4 rows as two blocks of 2.
__attribute__((target("avx2"))) void gemm_block_f32(const float* __restrict a, int lda, const float* __restrict w,
                                                    int k, float* __restrict acc, int acc_stride) {
  gemm_rows_f32<f32x8, kFGemmRows>(a, lda, w, k, acc, acc_stride);
}
__attribute__((target("default"))) void gemm_block_f32(const float* __restrict a, int lda, const float* __restrict w,
                                                       int k, float* __restrict acc, int acc_stride) {
  for (int r = 0; r < kFGemmRows; r += 2) {
    gemm_rows_f32<f32x4, 2>(a + static_cast<size_t>(r) * lda, lda, w, k, acc + static_cast<size_t>(r) * acc_stride,
                                    acc_stride);
  }
}
#elif defined(__ARM_NEON) && defined(__arm__)
// armv7: GCC keeps float vector-type arithmetic on scalar VFP (armv7 NEON flushes denormals to
// zero), so NEON is asked for by intrinsics: the same one multiply and one add per step (never
// fused), denormals flushed. 16 q registers: the 4 rows run as two blocks of 2 (8 sums + 4 weights).
void gemm_block_f32(const float* __restrict a, int lda, const float* __restrict w, int k, float* __restrict acc,
                    int acc_stride) {
  for (int r0 = 0; r0 < kFGemmRows; r0 += 2) {
    float32x4_t sum[2][kFGemmCols / 4];
    for (auto& row : sum) {
      for (auto& v : row) v = vdupq_n_f32(0.0f);
    }
    for (int kk = 0; kk < k; ++kk) {
      const float* wr = w + static_cast<size_t>(kk) * kFGemmCols;
      float32x4_t wv[kFGemmCols / 4];
      for (int j = 0; j < kFGemmCols / 4; ++j) wv[j] = vld1q_f32(wr + 4 * j);
      for (int r = 0; r < 2; ++r) {
        const float32x4_t v = vdupq_n_f32(a[static_cast<size_t>(r0 + r) * lda + kk]);
        for (int j = 0; j < kFGemmCols / 4; ++j) sum[r][j] = vaddq_f32(sum[r][j], vmulq_f32(v, wv[j]));
      }
    }
    for (int r = 0; r < 2; ++r) {
      float* dst = acc + static_cast<size_t>(r0 + r) * acc_stride;
      for (int j = 0; j < kFGemmCols / 4; ++j) vst1q_f32(dst + 4 * j, sum[r][j]);
    }
  }
}
#else
// 128-bit vectors (aarch64 NEON: 16 sums + 4 weight registers of 32).
void gemm_block_f32(const float* __restrict a, int lda, const float* __restrict w, int k, float* __restrict acc,
                    int acc_stride) {
  gemm_rows_f32<f32x4, kFGemmRows>(a, lda, w, k, acc, acc_stride);
}
#endif

// Copies the window taps of output pixel (oy, ox) into `row` in (ky, kx, ic) order, mapping each
// value through `convert` and writing `pad` for taps outside the input.
template <typename In, typename Out, typename Convert>
void gather_taps(const Window& win, const In* x, int oy, int ox, Out pad, Convert convert, Out* row) {
  const int ic = win.in_c;
  for (int ky = 0; ky < win.k_h; ++ky) {
    const int iy = oy * win.stride_h - win.pad_top + ky * win.dil_h;
    for (int kx = 0; kx < win.k_w; ++kx) {
      const int ix = ox * win.stride_w - win.pad_left + kx * win.dil_w;
      if (iy < 0 || iy >= win.in_h || ix < 0 || ix >= win.in_w) {
        std::fill(row, row + ic, pad);
      } else {
        const In* src = x + (static_cast<size_t>(iy) * win.in_w + ix) * ic;
        for (int i = 0; i < ic; ++i) row[i] = convert(src[i]);
      }
      row += ic;
    }
  }
}

template <typename T>
class ConvInt final : public CpuKernel {
 public:
  ConvInt(const Kernel& k, const ConvParams& p) : in_(k.inputs[0]), out_(k.output), win_(p.win) {
    input_offset_ = static_cast<int16_t>(p.input_offset);
    k_ = win_.k_h * win_.k_w * win_.in_c;
    kp_ = round_up(k_, kKAlign);
    ocp_ = round_up(win_.out_c, kLanes);
    pixels_ = win_.out_h * win_.out_w;
    tile_ = static_cast<int>(kTileBytes / (sizeof(int16_t) * kp_)) / kGemmRows * kGemmRows;
    tile_ = std::max(kGemmRows, std::min({tile_, kMaxTilePixels, round_up(pixels_, kGemmRows)}));
    need_i16 = static_cast<size_t>(tile_) * kp_;
    need_i32 = static_cast<size_t>(tile_) * ocp_;
  }

  bool init(const ConvParams& p, int index, Constants& c) {
    const int so = ceil_div(win_.out_c, kLanes), si = ceil_div(win_.in_c, kLanes);
    std::vector<uint8_t> raw;
    const size_t count = static_cast<size_t>(so) * win_.k_h * win_.k_w * si * kLanes * kLanes;
    if (!c.read(p.weights, count, "weights", index, &raw) || !c.read(p.bias, ocp_, "bias", index, &rq_.bias) ||
        !c.read(p.out.multipliers, ocp_, "multipliers", index, &rq_.multiplier) ||
        !c.read(p.out.shifts, ocp_, "shifts", index, &rq_.shift)) {
      return false;
    }
    const std::vector<int32_t> w = widen8(raw, std::is_signed<T>::value);
    // [so][kh][kw][si][o4][i4] -> [ocp][kp]
    weights_.assign(static_cast<size_t>(ocp_) * kp_, 0);
    for (int o = 0; o < win_.out_c; ++o) {
      for (int ky = 0; ky < win_.k_h; ++ky) {
        for (int kx = 0; kx < win_.k_w; ++kx) {
          for (int i = 0; i < win_.in_c; ++i) {
            const size_t src =
                ((((static_cast<size_t>(o / kLanes) * win_.k_h + ky) * win_.k_w + kx) * si + i / kLanes) * kLanes +
                 o % kLanes) * kLanes + i % kLanes;
            const size_t dst = static_cast<size_t>(o) * kp_ + (ky * win_.k_w + kx) * win_.in_c + i;
            weights_[dst] = static_cast<int16_t>(w[src] + p.weights_offset);
          }
        }
      }
    }
    return rq_.prepare(p.out);
  }

  void run(uint8_t* const* tensors, Scratch& s) override {
    const T* x = reinterpret_cast<const T*>(tensors[in_]);
    T* y = reinterpret_cast<T*>(tensors[out_]);
    int16_t* a = s.i16.data();
    int32_t* acc = s.i32.data();
    const int16_t offset = input_offset_;
    auto convert = [offset](T v) { return static_cast<int16_t>(v + offset); };
    const bool pointwise = win_.k_h == 1 && win_.k_w == 1 && win_.stride_h == 1 && win_.stride_w == 1 &&
                           win_.pad_top == 0 && win_.pad_left == 0;
    for (int p0 = 0; p0 < pixels_; p0 += tile_) {
      const int n = std::min(tile_, pixels_ - p0);
      for (int r = 0; r < n; ++r) {
        int16_t* row = a + static_cast<size_t>(r) * kp_;
        const int p = p0 + r;
        if (pointwise) {
          const T* src = x + static_cast<size_t>(p) * win_.in_c;
          for (int i = 0; i < win_.in_c; ++i) row[i] = convert(src[i]);
        } else {
          gather_taps(win_, x, p / win_.out_w, p % win_.out_w, int16_t{0}, convert, row);
        }
        std::fill(row + k_, row + kp_, int16_t{0});
      }
      // Rows n..round4(n) hold stale values; their results are never stored.
      const int rows = round_up(n, kGemmRows);
      for (int oc = 0; oc < ocp_; oc += kGemmCols) {
        const int16_t* w = weights_.data() + static_cast<size_t>(oc) * kp_;
        for (int r = 0; r < rows; r += kGemmRows) {
          gemm_block(a + static_cast<size_t>(r) * kp_, w, kp_, acc + static_cast<size_t>(r) * ocp_ + oc, ocp_);
        }
      }
      for (int r = 0; r < n; ++r) {
        rq_.row(acc + static_cast<size_t>(r) * ocp_, win_.out_c, y + static_cast<size_t>(p0 + r) * win_.out_c);
      }
    }
  }

 private:
  int in_, out_;
  Window win_;
  int16_t input_offset_;
  int k_, kp_, ocp_, pixels_, tile_;
  std::vector<int16_t> weights_;
  Requant rq_;
};

template <typename T>
class DepthwiseInt final : public CpuKernel {
 public:
  DepthwiseInt(const Kernel& k, const ConvParams& p)
      : in_(k.inputs[0]), out_(k.output), win_(p.win), dm_(p.depth_multiplier) {
    input_offset_ = static_cast<int16_t>(p.input_offset);
    ocp_ = round_up(win_.out_c, kLanes);
    need_i32 = ocp_;
  }

  bool init(const ConvParams& p, int index, Constants& c) {
    if (dm_ < 1 || win_.in_c * dm_ != win_.out_c) return false;
    std::vector<uint8_t> raw;
    const size_t taps = static_cast<size_t>(win_.k_h) * win_.k_w;
    if (!c.read(p.weights, taps * ocp_, "weights", index, &raw) || !c.read(p.bias, ocp_, "bias", index, &rq_.bias) ||
        !c.read(p.out.multipliers, ocp_, "multipliers", index, &rq_.multiplier) ||
        !c.read(p.out.shifts, ocp_, "shifts", index, &rq_.shift)) {
      return false;
    }
    const std::vector<int32_t> w = widen8(raw, std::is_signed<T>::value);
    // [ceil(oc/4)][kh][kw][4] -> [kh][kw][ocp]
    weights_.assign(taps * ocp_, 0);
    for (int o = 0; o < win_.out_c; ++o) {
      for (size_t t = 0; t < taps; ++t) {
        weights_[t * ocp_ + o] = static_cast<int16_t>(w[((o / kLanes) * taps + t) * kLanes + o % kLanes] + p.weights_offset);
      }
    }
    return rq_.prepare(p.out);
  }

  void run(uint8_t* const* tensors, Scratch& s) override {
    const T* x = reinterpret_cast<const T*>(tensors[in_]);
    T* y = reinterpret_cast<T*>(tensors[out_]);
    int32_t* __restrict acc = s.i32.data();
    const int oc = win_.out_c, ic = win_.in_c;
    const int16_t offset = input_offset_;
    for (int oy = 0; oy < win_.out_h; ++oy) {
      for (int ox = 0; ox < win_.out_w; ++ox) {
        std::fill(acc, acc + oc, 0);
        for (int ky = 0; ky < win_.k_h; ++ky) {
          const int iy = oy * win_.stride_h - win_.pad_top + ky * win_.dil_h;
          if (iy < 0 || iy >= win_.in_h) continue;
          for (int kx = 0; kx < win_.k_w; ++kx) {
            const int ix = ox * win_.stride_w - win_.pad_left + kx * win_.dil_w;
            if (ix < 0 || ix >= win_.in_w) continue;
            const T* __restrict src = x + (static_cast<size_t>(iy) * win_.in_w + ix) * ic;
            const int16_t* __restrict w = weights_.data() + static_cast<size_t>(ky * win_.k_w + kx) * ocp_;
            if (dm_ == 1) {
              for (int c = 0; c < oc; ++c) {
                const int16_t v = static_cast<int16_t>(src[c] + offset);
                acc[c] += static_cast<int32_t>(v) * static_cast<int32_t>(w[c]);
              }
            } else {
              for (int i = 0; i < ic; ++i) {
                const int32_t v = static_cast<int32_t>(src[i]) + offset;
                for (int m = 0; m < dm_; ++m) acc[i * dm_ + m] += v * w[i * dm_ + m];
              }
            }
          }
        }
        rq_.row(acc, oc, y + (static_cast<size_t>(oy) * win_.out_w + ox) * oc);
      }
    }
  }

 private:
  int in_, out_;
  Window win_;
  int dm_;
  int16_t input_offset_;
  int ocp_;
  std::vector<int16_t> weights_;
  Requant rq_;
};

// Float conv (depthwise == false) or depthwise: each output summed over taps in (ky, kx, ic)
// order in float32, then bias, then the clamp, as the reference kernels do.
// The conv gathers the im2col rows of a tile of output pixels (kept in L2), then runs the GEMM
// micro-kernel over each 16-channel weight panel and each 4-row block, so every weight is loaded
// once per tile instead of once per pixel.
class ConvFloat final : public CpuKernel {
 public:
  ConvFloat(const Kernel& k, const ConvParams& p, bool depthwise)
      : in_(k.inputs[0]), out_(k.output), win_(p.win), dm_(p.depth_multiplier), depthwise_(depthwise) {
    k_ = win_.k_h * win_.k_w * win_.in_c;
    ocp_ = round_up(win_.out_c, kLanes);
    lo_ = p.out.lo;
    hi_ = p.out.hi;
    ocp16_ = round_up(win_.out_c, kFGemmCols);
    pixels_ = win_.out_h * win_.out_w;
    if (depthwise) {
      need_f32 = ocp_;
    } else {
      tile_ = static_cast<int>(kTileBytes / (sizeof(float) * k_)) / kFGemmRows * kFGemmRows;
      tile_ = std::max(kFGemmRows, std::min({tile_, kMaxTilePixels, round_up(pixels_, kFGemmRows)}));
      need_f32 = static_cast<size_t>(tile_) * (static_cast<size_t>(k_) + ocp16_);  // im2col rows + accumulators
    }
  }

  bool init(const ConvParams& p, int index, Constants& c) {
    std::vector<float> raw;
    const int so = ceil_div(win_.out_c, kLanes), si = ceil_div(win_.in_c, kLanes);
    const size_t taps = static_cast<size_t>(win_.k_h) * win_.k_w;
    const size_t count = depthwise_ ? taps * ocp_ : static_cast<size_t>(so) * taps * si * kLanes * kLanes;
    if (!c.read_floats(p.weights, count, "weights", index, &raw) ||
        !c.read_floats(p.bias, ocp_, "bias", index, &bias_)) {
      return false;
    }
    if (depthwise_) {
      if (dm_ < 1 || win_.in_c * dm_ != win_.out_c) return false;
      weights_.assign(taps * ocp_, 0.0f);
      for (int o = 0; o < win_.out_c; ++o) {
        for (size_t t = 0; t < taps; ++t) weights_[t * ocp_ + o] = raw[((o / kLanes) * taps + t) * kLanes + o % kLanes];
      }
      return true;
    }
    // [so][kh][kw][si][o4][i4] -> [ocp16 / 16][K][16] panels, padding channels zero
    weights_.assign(static_cast<size_t>(k_) * ocp16_, 0.0f);
    for (int o = 0; o < win_.out_c; ++o) {
      float* panel = weights_.data() + static_cast<size_t>(o / kFGemmCols) * k_ * kFGemmCols + o % kFGemmCols;
      for (size_t t = 0; t < taps; ++t) {
        for (int i = 0; i < win_.in_c; ++i) {
          const size_t src = (((o / kLanes) * taps + t) * si + i / kLanes) * kLanes * kLanes + (o % kLanes) * kLanes + i % kLanes;
          panel[(t * win_.in_c + i) * kFGemmCols] = raw[src];
        }
      }
    }
    return true;
  }

  void run(uint8_t* const* tensors, Scratch& s) override {
    const float* x = reinterpret_cast<const float*>(tensors[in_]);
    float* y = reinterpret_cast<float*>(tensors[out_]);
    if (depthwise_) {
      run_depthwise(x, y, s);
    } else {
      run_conv(x, y, s);
    }
  }

 private:
  void run_conv(const float* x, float* y, Scratch& s) const {
    const int oc = win_.out_c;
    float* a = s.f32.data();                                  // [tile][K] im2col rows
    float* acc = a + static_cast<size_t>(tile_) * k_;          // [tile][ocp16] sums
    const bool pointwise = win_.k_h == 1 && win_.k_w == 1 && win_.stride_h == 1 && win_.stride_w == 1 &&
                           win_.pad_top == 0 && win_.pad_left == 0;
    for (int p0 = 0; p0 < pixels_; p0 += tile_) {
      const int n = std::min(tile_, pixels_ - p0);
      for (int r = 0; r < n; ++r) {
        float* row = a + static_cast<size_t>(r) * k_;
        const int p = p0 + r;
        if (pointwise) {
          std::memcpy(row, x + static_cast<size_t>(p) * k_, sizeof(float) * k_);
        } else {
          gather_taps(win_, x, p / win_.out_w, p % win_.out_w, 0.0f, [](float v) { return v; }, row);
        }
      }
      // Rows n..round4(n) hold stale values; their results are never stored.
      const int rows = round_up(n, kFGemmRows);
      for (int oc0 = 0; oc0 < ocp16_; oc0 += kFGemmCols) {
        const float* w = weights_.data() + static_cast<size_t>(oc0) * k_;
        for (int r = 0; r < rows; r += kFGemmRows) {
          gemm_block_f32(a + static_cast<size_t>(r) * k_, k_, w, k_, acc + static_cast<size_t>(r) * ocp16_ + oc0, ocp16_);
        }
      }
      for (int r = 0; r < n; ++r) {
        const float* sum = acc + static_cast<size_t>(r) * ocp16_;
        float* dst = y + static_cast<size_t>(p0 + r) * oc;
        for (int c = 0; c < oc; ++c) dst[c] = std::min(std::max(sum[c] + bias_[c], lo_), hi_);
      }
    }
  }

  void run_depthwise(const float* x, float* y, Scratch& s) const {
    const int oc = win_.out_c, ic = win_.in_c;
    float* __restrict acc = s.f32.data();
    for (int oy = 0; oy < win_.out_h; ++oy) {
      for (int ox = 0; ox < win_.out_w; ++ox) {
        std::fill(acc, acc + ocp_, 0.0f);
        for (int ky = 0; ky < win_.k_h; ++ky) {
          const int iy = oy * win_.stride_h - win_.pad_top + ky * win_.dil_h;
          if (iy < 0 || iy >= win_.in_h) continue;
          for (int kx = 0; kx < win_.k_w; ++kx) {
            const int ix = ox * win_.stride_w - win_.pad_left + kx * win_.dil_w;
            if (ix < 0 || ix >= win_.in_w) continue;
            const float* __restrict src = x + (static_cast<size_t>(iy) * win_.in_w + ix) * ic;
            const float* __restrict w = weights_.data() + static_cast<size_t>(ky * win_.k_w + kx) * ocp_;
            for (int i = 0; i < ic; ++i) {
              for (int m = 0; m < dm_; ++m) acc[i * dm_ + m] += src[i] * w[i * dm_ + m];
            }
          }
        }
        float* dst = y + (static_cast<size_t>(oy) * win_.out_w + ox) * oc;
        for (int c = 0; c < oc; ++c) dst[c] = std::min(std::max(acc[c] + bias_[c], lo_), hi_);
      }
    }
  }

  int in_, out_;
  Window win_;
  int dm_;
  bool depthwise_;
  int k_, ocp_, ocp16_, pixels_, tile_ = 0;
  float lo_, hi_;
  std::vector<float> weights_, bias_;
};

template <typename T>
class FullyConnectedInt final : public CpuKernel {
 public:
  FullyConnectedInt(const Kernel& k, const FullyConnectedParams& p) : in_(k.inputs[0]), out_(k.output), p_(p) {
    icp_ = round_up(p.in_c, kKAlign);
    ocp_ = round_up(p.out_c, kLanes);
    need_i16 = icp_;
  }

  bool init(int index, Constants& c) {
    std::vector<uint8_t> raw;
    const int si = ceil_div(p_.in_c, kLanes);
    if (!c.read(p_.weights, static_cast<size_t>(ocp_) * si * kLanes, "weights", index, &raw) ||
        !c.read(p_.bias, ocp_, "bias", index, &bias_) || !c.read(p_.scales, ocp_, "scales", index, &scales_)) {
      return false;
    }
    const std::vector<int32_t> w = widen8(raw, std::is_signed<T>::value);
    // [ceil(oc/4)][ceil(ic/4)][o4][i4] -> [oc][icp]
    weights_.assign(static_cast<size_t>(p_.out_c) * icp_, 0);
    for (int o = 0; o < p_.out_c; ++o) {
      for (int i = 0; i < p_.in_c; ++i) {
        const size_t src = ((static_cast<size_t>(o / kLanes) * si + i / kLanes) * kLanes + o % kLanes) * kLanes + i % kLanes;
        weights_[static_cast<size_t>(o) * icp_ + i] = static_cast<int16_t>(w[src] + p_.weights_offset);
      }
    }
    return true;
  }

  void run(uint8_t* const* tensors, Scratch& s) override {
    const T* x = reinterpret_cast<const T*>(tensors[in_]);
    T* y = reinterpret_cast<T*>(tensors[out_]);
    int16_t* __restrict a = s.i16.data();
    for (int i = 0; i < p_.in_c; ++i) a[i] = static_cast<int16_t>(x[i] + p_.input_offset);
    std::fill(a + p_.in_c, a + icp_, int16_t{0});
    constexpr double kInt32Lo = -2147483648.0, kInt32Hi = 2147483647.0;
    for (int o = 0; o < p_.out_c; ++o) {
      const int16_t* __restrict w = weights_.data() + static_cast<size_t>(o) * icp_;
      int32_t acc = 0;
      for (int i = 0; i < icp_; ++i) acc += static_cast<int32_t>(a[i]) * static_cast<int32_t>(w[i]);
      acc = fx::add_wrap(acc, bias_[o]);
      // The reference rescales in double: round_half_away(double(acc) * scale) + output_offset.
      const double scaled = std::min(std::max(static_cast<double>(acc) * scales_[o], kInt32Lo), kInt32Hi);
      const int64_t v = fx::round_away(scaled) + p_.output_offset;
      y[o] = static_cast<T>(std::min<int64_t>(std::max<int64_t>(v, p_.act_min), p_.act_max));
    }
  }

 private:
  int in_, out_;
  FullyConnectedParams p_;
  int icp_, ocp_;
  std::vector<int16_t> weights_;
  std::vector<int32_t> bias_;
  std::vector<double> scales_;
};

class FullyConnectedFloat final : public CpuKernel {
 public:
  FullyConnectedFloat(const Kernel& k, const FullyConnectedParams& p) : in_(k.inputs[0]), out_(k.output), p_(p) {
    ocp_ = round_up(p.out_c, kLanes);
    need_f32 = ocp_;
  }

  bool init(int index, Constants& c) {
    std::vector<float> raw;
    const int si = ceil_div(p_.in_c, kLanes);
    if (!c.read_floats(p_.weights, static_cast<size_t>(ocp_) * si * kLanes, "weights", index, &raw) ||
        !c.read_floats(p_.bias, ocp_, "bias", index, &bias_)) {
      return false;
    }
    // [ceil(oc/4)][ceil(ic/4)][o4][i4] -> [ic][ocp]
    weights_.assign(static_cast<size_t>(p_.in_c) * ocp_, 0.0f);
    for (int o = 0; o < p_.out_c; ++o) {
      for (int i = 0; i < p_.in_c; ++i) {
        const size_t src = ((static_cast<size_t>(o / kLanes) * si + i / kLanes) * kLanes + o % kLanes) * kLanes + i % kLanes;
        weights_[static_cast<size_t>(i) * ocp_ + o] = raw[src];
      }
    }
    return true;
  }

  void run(uint8_t* const* tensors, Scratch& s) override {
    const float* x = reinterpret_cast<const float*>(tensors[in_]);
    float* y = reinterpret_cast<float*>(tensors[out_]);
    float* __restrict acc = s.f32.data();
    std::fill(acc, acc + ocp_, 0.0f);
    for (int i = 0; i < p_.in_c; ++i) {
      const float v = x[i];
      const float* __restrict w = weights_.data() + static_cast<size_t>(i) * ocp_;
      for (int o = 0; o < ocp_; ++o) acc[o] += v * w[o];
    }
    for (int o = 0; o < p_.out_c; ++o) y[o] = std::min(std::max(acc[o] + bias_[o], p_.lo), p_.hi);
  }

 private:
  int in_, out_;
  FullyConnectedParams p_;
  int ocp_;
  std::vector<float> weights_, bias_;
};

// Average / max pooling over the in-bounds taps; T is the storage type (float for float models).
template <typename T>
class Pool final : public CpuKernel {
 public:
  Pool(const Kernel& k, const PoolParams& p, bool average)
      : in_(k.inputs[0]), out_(k.output), p_(p), average_(average) {}

  void run(uint8_t* const* tensors, Scratch&) override {
    const T* x = reinterpret_cast<const T*>(tensors[in_]);
    T* y = reinterpret_cast<T*>(tensors[out_]);
    const Window& w = p_.win;
    const int c = w.in_c;
    for (int oy = 0; oy < w.out_h; ++oy) {
      for (int ox = 0; ox < w.out_w; ++ox) {
        T* dst = y + (static_cast<size_t>(oy) * w.out_w + ox) * c;
        for (int ch = 0; ch < c; ++ch) dst[ch] = pool_channel(x, oy, ox, ch);
      }
    }
  }

 private:
  using Acc = typename std::conditional<std::is_floating_point<T>::value, double, int32_t>::type;

  T pool_channel(const T* x, int oy, int ox, int ch) const {
    const Window& w = p_.win;
    Acc acc = average_ ? Acc(0) : Acc(std::numeric_limits<T>::lowest());
    int count = 0;
    for (int ky = 0; ky < w.k_h; ++ky) {
      const int iy = oy * w.stride_h - w.pad_top + ky * w.dil_h;
      if (iy < 0 || iy >= w.in_h) continue;
      for (int kx = 0; kx < w.k_w; ++kx) {
        const int ix = ox * w.stride_w - w.pad_left + kx * w.dil_w;
        if (ix < 0 || ix >= w.in_w) continue;
        const Acc v = x[(static_cast<size_t>(iy) * w.in_w + ix) * w.in_c + ch];
        acc = average_ ? acc + v : std::max(acc, v);
        ++count;
      }
    }
    return finish(acc, count);
  }

  T finish(Acc acc, int count) const {
    if constexpr (std::is_floating_point<T>::value) {
      const float v = average_ ? static_cast<float>(count ? acc / count : 0.0) : static_cast<float>(acc);
      return std::min(std::max(v, p_.lo), p_.hi);
    } else {
      int32_t v = acc;
      if (average_) {
        // Reference rounding: halves away from zero with C's truncating division.
        v = count == 0 ? 0 : (acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count);
      }
      return clamp_to<T>(v, p_.act_min, p_.act_max);
    }
  }

  int in_, out_;
  PoolParams p_;
  bool average_;
};

template <typename T>
class Mean final : public CpuKernel {
 public:
  Mean(const Kernel& k, const MeanParams& p) : in_(k.inputs[0]), out_(k.output), p_(p) {
    need_i32 = static_cast<size_t>(p.c);
    need_f32 = 0;
  }

  void run(uint8_t* const* tensors, Scratch& s) override {
    const T* x = reinterpret_cast<const T*>(tensors[in_]);
    T* y = reinterpret_cast<T*>(tensors[out_]);
    const size_t pixels = static_cast<size_t>(p_.h) * p_.w;
    if constexpr (std::is_floating_point<T>::value) {
      for (int ch = 0; ch < p_.c; ++ch) {
        double sum = 0.0;
        for (size_t i = 0; i < pixels; ++i) sum += x[i * p_.c + ch];
        y[ch] = static_cast<float>(sum / static_cast<double>(p_.count));
      }
    } else {
      // The reference sums in int32 (wrapping) and removes zp * N in int64 before the cast back.
      uint32_t* __restrict sum = reinterpret_cast<uint32_t*>(s.i32.data());
      std::fill(sum, sum + p_.c, 0u);
      for (size_t i = 0; i < pixels; ++i) {
        const T* __restrict px = x + i * p_.c;
        for (int ch = 0; ch < p_.c; ++ch) sum[ch] += static_cast<uint32_t>(static_cast<int32_t>(px[ch]));
      }
      const int64_t zp_n = static_cast<int64_t>(p_.input_zero_point) * p_.count;
      for (int ch = 0; ch < p_.c; ++ch) {
        const int32_t shifted = fx::wrap32(static_cast<int64_t>(static_cast<int32_t>(sum[ch])) - zp_n);
        const int32_t v = fx::add_wrap(fx::mbqm(shifted, p_.multiplier, p_.shift), p_.output_zero_point);
        y[ch] = clamp_to<T>(v, p_.act_min, p_.act_max);
      }
    }
  }

 private:
  int in_, out_;
  MeanParams p_;
};

template <typename T>
class AddKernel final : public CpuKernel {
 public:
  AddKernel(const Kernel& k, const AddParams& p, size_t count)
      : a_(k.inputs[0]), b_(k.inputs[1]), out_(k.output), p_(p), count_(count) {}

  void run(uint8_t* const* tensors, Scratch&) override {
    const T* a = reinterpret_cast<const T*>(tensors[a_]);
    const T* b = reinterpret_cast<const T*>(tensors[b_]);
    T* y = reinterpret_cast<T*>(tensors[out_]);
    for (size_t i = 0; i < count_; ++i) {
      if constexpr (std::is_floating_point<T>::value) {
        y[i] = std::min(std::max(a[i] + b[i], p_.lo), p_.hi);
      } else {
        const int32_t x1 = fx::shl_wrap(a[i] + p_.input1_offset, p_.left_shift);
        const int32_t x2 = fx::shl_wrap(b[i] + p_.input2_offset, p_.left_shift);
        const int32_t s1 = fx::mbqm(x1, p_.input1_multiplier, p_.input1_shift);
        const int32_t s2 = fx::mbqm(x2, p_.input2_multiplier, p_.input2_shift);
        const int32_t raw = fx::mbqm(fx::add_wrap(s1, s2), p_.output_multiplier, p_.output_shift);
        y[i] = clamp_to<T>(fx::add_wrap(raw, p_.output_offset), p_.act_min, p_.act_max);
      }
    }
  }

 private:
  int a_, b_, out_;
  AddParams p_;
  size_t count_;
};

template <typename T>
class PadKernel final : public CpuKernel {
 public:
  PadKernel(const Kernel& k, const PadParams& p, const TensorInfo& in, const TensorInfo& out)
      : in_(k.inputs[0]), out_(k.output), p_(p), ih_(in.h), iw_(in.w), c_(in.c), oh_(out.h), ow_(out.w) {}

  void run(uint8_t* const* tensors, Scratch&) override {
    const T* x = reinterpret_cast<const T*>(tensors[in_]);
    T* y = reinterpret_cast<T*>(tensors[out_]);
    const T value = static_cast<T>(p_.value);
    std::fill(y, y + static_cast<size_t>(oh_) * ow_ * c_, value);
    const size_t row = static_cast<size_t>(iw_) * c_;
    for (int iy = 0; iy < ih_; ++iy) {
      T* dst = y + ((static_cast<size_t>(iy) + p_.pad_top) * ow_ + p_.pad_left) * c_;
      std::memcpy(dst, x + iy * row, row * sizeof(T));
    }
  }

 private:
  int in_, out_;
  PadParams p_;
  int ih_, iw_, c_, oh_, ow_;
};

class ConcatKernel final : public CpuKernel {
 public:
  ConcatKernel(const Kernel& k, const ConcatParams& p, size_t element, size_t outer)
      : a_(k.inputs[0]), b_(k.inputs[1]), out_(k.output), bytes0_(p.c0 * element), bytes1_(p.c1 * element),
        outer_(outer), p_(p) {}

  void run(uint8_t* const* tensors, Scratch&) override {
    const uint8_t* a = tensors[a_];
    const uint8_t* b = tensors[b_];
    uint8_t* y = tensors[out_];
    for (size_t i = 0; i < outer_; ++i) {
      part(a + i * bytes0_, y, bytes0_, p_.rescale0, p_.scale0, p_.bias0);
      part(b + i * bytes1_, y + bytes0_, bytes1_, p_.rescale1, p_.scale1, p_.bias1);
      y += bytes0_ + bytes1_;
    }
  }

 private:
  // One input's channels: copied, or (legacy uint8, rescale set) LiteRT's ConcatenationWithScaling
  // clamp(int(roundf(x * scale + bias)) + zp_out, 0, 255) in float32 with two roundings: the
  // product goes through a volatile so that no compiler fuses it with the add (an FMA would round
  // once and differ from the reference in the last bit).
  void part(const uint8_t* x, uint8_t* y, size_t n, int32_t rescale, float scale, float bias) const {
    if (!rescale) {
      std::memcpy(y, x, n);
      return;
    }
    for (size_t c = 0; c < n; ++c) {
      volatile float product = static_cast<float>(x[c]) * scale;
      const float value = product + bias;
      // Clamping the rounded value to [-512, 512] changes no result (the output clamps to
      // [0, 255] after adding a zero point in [0, 255]) and keeps the int conversion defined.
      const float r = std::min(std::max(std::round(value), -512.0f), 512.0f);
      const int32_t q = static_cast<int32_t>(r) + p_.output_zero_point;
      y[c] = static_cast<uint8_t>(std::min(std::max(q, 0), 255));
    }
  }

  int a_, b_, out_;
  size_t bytes0_, bytes1_, outer_;
  ConcatParams p_;
};

template <typename T>
class SoftmaxKernel final : public CpuKernel {
 public:
  SoftmaxKernel(const Kernel& k, const SoftmaxParams& p, size_t rows, int depth)
      : in_(k.inputs[0]), out_(k.output), p_(p), rows_(rows), depth_(depth) {
    if (std::is_floating_point<T>::value) need_f32 = 0;
  }

  void run(uint8_t* const* tensors, Scratch&) override {
    const T* x = reinterpret_cast<const T*>(tensors[in_]);
    T* y = reinterpret_cast<T*>(tensors[out_]);
    for (size_t r = 0; r < rows_; ++r) row(x + r * depth_, y + r * depth_);
  }

 private:
  // The exp input is Q5.26 (differences down to -32), the sum of exps Q12.19.
  static constexpr int kScaledDiffIntegerBits = 5;
  static constexpr int kAccumulationIntegerBits = 12;
  static constexpr int kOutputBits = 8;

  void row(const T* x, T* y) const {
    if constexpr (std::is_floating_point<T>::value) {
      double mx = -std::numeric_limits<double>::infinity();
      for (int i = 0; i < depth_; ++i) mx = std::max(mx, static_cast<double>(x[i]));
      double sum = 0.0;
      for (int i = 0; i < depth_; ++i) sum += std::exp((x[i] - mx) * static_cast<double>(p_.beta));
      for (int i = 0; i < depth_; ++i) {
        y[i] = static_cast<float>(std::exp((x[i] - mx) * static_cast<double>(p_.beta)) / sum);
      }
    } else {
      // reference_ops::Softmax (quantized), gemmlowp fixed point.
      int32_t max_in_row = std::numeric_limits<int32_t>::min();
      for (int i = 0; i < depth_; ++i) max_in_row = std::max<int32_t>(max_in_row, x[i]);
      int32_t sum_of_exps = 0;
      for (int i = 0; i < depth_; ++i) {
        const int32_t diff = static_cast<int32_t>(x[i]) - max_in_row;
        if (diff >= p_.diff_min) {
          const int32_t scaled = fx::mbqm(diff, p_.input_multiplier, p_.input_left_shift);
          const int32_t e = fx::exp_on_negative_values(scaled, kScaledDiffIntegerBits);
          sum_of_exps = fx::add_wrap(sum_of_exps, fx::rdbpot(e, kAccumulationIntegerBits));
        }
      }
      int num_bits_over_unit = 0;
      const int32_t shifted_scale = fx::get_reciprocal(sum_of_exps, kAccumulationIntegerBits, &num_bits_over_unit);
      // The reference aborts (TFLITE_CHECK) outside [0, 31]: only for hundreds of values tied at
      // the row maximum. Clamped here so the shift stays defined.
      const int exponent = std::min(std::max(num_bits_over_unit + 31 - kOutputBits, 0), 31);
      for (int i = 0; i < depth_; ++i) {
        const int32_t diff = static_cast<int32_t>(x[i]) - max_in_row;
        int32_t out = p_.output_min;
        if (diff >= p_.diff_min) {
          const int32_t scaled = fx::mbqm(diff, p_.input_multiplier, p_.input_left_shift);
          const int32_t e = fx::exp_on_negative_values(scaled, kScaledDiffIntegerBits);
          const int32_t unsat = fx::rdbpot(fx::srdhm(shifted_scale, e), exponent);
          out = std::min(std::max(fx::add_wrap(unsat, p_.output_min), p_.output_min), p_.output_max);
        }
        y[i] = static_cast<T>(out);
      }
    }
  }

  int in_, out_;
  SoftmaxParams p_;
  size_t rows_;
  int depth_;
};

template <typename Out>
class QuantizeKernel final : public CpuKernel {
 public:
  QuantizeKernel(const Kernel& k, const QuantizeParams& p, size_t count)
      : in_(k.inputs[0]), out_(k.output), p_(p), count_(count) {}

  void run(uint8_t* const* tensors, Scratch&) override {
    const float* x = reinterpret_cast<const float*>(tensors[in_]);
    Out* y = reinterpret_cast<Out*>(tensors[out_]);
    // Bounds on the rounded quotient that keep the int conversion defined (NaN goes to lo).
    const float lo = static_cast<float>(p_.qmin - p_.zero_point);
    const float hi = static_cast<float>(p_.qmax - p_.zero_point);
    for (size_t i = 0; i < count_; ++i) {
      float r = std::round(x[i] / p_.scale);  // float32 division, halves away from zero
      r = r >= lo ? (r <= hi ? r : hi) : lo;
      y[i] = static_cast<Out>(static_cast<int32_t>(r) + p_.zero_point);
    }
  }

 private:
  int in_, out_;
  QuantizeParams p_;
  size_t count_;
};

template <typename In, typename Out>
class RequantizeKernel final : public CpuKernel {
 public:
  RequantizeKernel(const Kernel& k, const QuantizeParams& p, size_t count)
      : in_(k.inputs[0]), out_(k.output), p_(p), count_(count) {}

  void run(uint8_t* const* tensors, Scratch&) override {
    const In* x = reinterpret_cast<const In*>(tensors[in_]);
    Out* y = reinterpret_cast<Out*>(tensors[out_]);
    for (size_t i = 0; i < count_; ++i) {
      const int32_t v = fx::mbqm(static_cast<int32_t>(x[i]) - p_.input_zero_point, p_.multiplier, p_.shift);
      y[i] = clamp_to<Out>(fx::add_wrap(v, p_.output_zero_point), p_.qmin, p_.qmax);
    }
  }

 private:
  int in_, out_;
  QuantizeParams p_;
  size_t count_;
};

template <typename In>
class DequantizeKernel final : public CpuKernel {
 public:
  DequantizeKernel(const Kernel& k, const QuantizeParams& p, size_t count)
      : in_(k.inputs[0]), out_(k.output), p_(p), count_(count) {}

  void run(uint8_t* const* tensors, Scratch&) override {
    const In* x = reinterpret_cast<const In*>(tensors[in_]);
    float* y = reinterpret_cast<float*>(tensors[out_]);
    const double scale = p_.scale;
    for (size_t i = 0; i < count_; ++i) {
      y[i] = static_cast<float>(scale * (static_cast<int32_t>(x[i]) - p_.zero_point));
    }
  }

 private:
  int in_, out_;
  QuantizeParams p_;
  size_t count_;
};

template <typename T>
class ActivationKernel final : public CpuKernel {
 public:
  ActivationKernel(const Kernel& k, const ActivationParams& p, size_t count)
      : in_(k.inputs[0]), out_(k.output), p_(p), count_(count) {}

  void run(uint8_t* const* tensors, Scratch&) override {
    const T* x = reinterpret_cast<const T*>(tensors[in_]);
    T* y = reinterpret_cast<T*>(tensors[out_]);
    for (size_t i = 0; i < count_; ++i) {
      if constexpr (std::is_floating_point<T>::value) {
        y[i] = std::min(std::max(x[i], p_.lo), p_.hi);
      } else {
        const int32_t v = fx::mbqm(static_cast<int32_t>(x[i]) - p_.input_zero_point, p_.multiplier, p_.shift);
        y[i] = clamp_to<T>(fx::add_wrap(v, p_.output_offset), p_.act_min, p_.act_max);
      }
    }
  }

 private:
  int in_, out_;
  ActivationParams p_;
  size_t count_;
};

// --- construction ----------------------------------------------------------------------------

size_t element_count(const TensorInfo& t) { return static_cast<size_t>(t.h) * t.w * t.c; }

// Calls f(T{}) with T the C++ type of an 8-bit or float dtype.
template <typename F>
auto with_type(DType d, F&& f) {
  switch (d) {
    case DType::Int8: return f(int8_t{});
    case DType::UInt8: return f(uint8_t{});
    case DType::Float32: break;
  }
  return f(float{});
}

class CpuBackend final : public BackendImpl {
 public:
  Status init(const ModelPlan& plan, const uint8_t* payload, size_t payload_size, const Options&,
              std::string* error) override {
    plan_ = &plan;
    Constants constants(payload, payload_size, error);
    kernels_.clear();
    for (int i = 0; i < plan.num_kernels; ++i) {
      std::unique_ptr<CpuKernel> k;
      constants.set_half_floats(plan.tensors[plan.kernels[i].output].half);
      const Status st = make_kernel(plan, i, constants, &k, error);
      if (st != Status::Ok) return st;
      kernels_.push_back(std::move(k));
    }
    allocate(plan);
    return Status::Ok;
  }

  Status run(const void* const* inputs, void* const* outputs, std::string*, const TensorDumpFn& dump) override {
    const ModelPlan& plan = *plan_;
    for (int i = 0; i < plan.num_inputs; ++i) {
      const int32_t id = plan.inputs[i];
      const TensorInfo& in = plan.tensors[id];
      std::memcpy(tensors_[id], inputs[i], tensor_bytes(in));
      store(in, tensors_[id]);
    }
    if (dump) {
      for (int i = 0; i < plan.num_inputs; ++i) {
        const TensorInfo& in = plan.tensors[plan.inputs[i]];
        dump(in, tensors_[plan.inputs[i]], tensor_bytes(in));
      }
    }
    for (int i = 0; i < plan.num_kernels; ++i) {
      if (kernels_[i]) {
        kernels_[i]->run(tensors_.data(), scratch_);
        store(plan.tensors[plan.kernels[i].output], tensors_[plan.kernels[i].output]);
      }
      if (dump) {
        const TensorInfo& t = plan.tensors[plan.kernels[i].output];
        dump(t, tensors_[plan.kernels[i].output], tensor_bytes(t));
      }
    }
    for (int i = 0; i < plan.num_outputs; ++i) {
      const int32_t id = plan.outputs[i];
      std::memcpy(outputs[i], tensors_[id], tensor_bytes(plan.tensors[id]));
    }
    return Status::Ok;
  }

  Backend kind() const override { return Backend::Cpu; }

 private:
  // What storing tensor `t` does to its values: a float16 tensor's floats become float16 numbers.
  void store(const TensorInfo& t, uint8_t* data) const {
    if (!t.half || t.dtype != DType::Float32) return;
    float* v = reinterpret_cast<float*>(data);
    for (size_t i = 0, n = element_count(t); i < n; ++i) v[i] = round_to_half(v[i]);
  }

  Status make_kernel(const ModelPlan& plan, int index, Constants& constants, std::unique_ptr<CpuKernel>* made,
                     std::string* error) {
    const Kernel& k = plan.kernels[index];
    auto bad = [&](const std::string& why) {
      if (error) *error = "kernel " + std::to_string(index) + " (op " + std::to_string(k.op_index) + "): " + why;
      return Status::InvalidArgument;
    };
    auto tensor_ok = [&](int id) { return id >= 0 && id < plan.num_tensors; };
    if (!tensor_ok(k.output) || !tensor_ok(k.inputs[0]) || (k.inputs[1] != -1 && !tensor_ok(k.inputs[1]))) {
      return bad("tensor id out of range");
    }
    if (k.type != KernelType::Reshape && k.params == nullptr) return bad("missing parameters");
    const TensorInfo& in = plan.tensors[k.inputs[0]];
    const TensorInfo& out = plan.tensors[k.output];
    const size_t count = element_count(out);
    const bool quantized = out.dtype != DType::Float32;
    bool ok = true;
    switch (k.type) {
      case KernelType::Conv2D:
      case KernelType::DepthwiseConv2D: {
        const auto& p = *static_cast<const ConvParams*>(k.params);
        const bool dw = k.type == KernelType::DepthwiseConv2D;
        if (in.dtype != out.dtype) return bad("input and output types differ");
        if (!quantized) {
          auto conv = std::make_unique<ConvFloat>(k, p, dw);
          ok = conv->init(p, index, constants);
          *made = std::move(conv);
        } else {
          with_type(out.dtype, [&](auto t) {
            using T = decltype(t);
            if constexpr (!std::is_floating_point<T>::value) {
              if (dw) {
                auto conv = std::make_unique<DepthwiseInt<T>>(k, p);
                ok = conv->init(p, index, constants);
                *made = std::move(conv);
              } else {
                auto conv = std::make_unique<ConvInt<T>>(k, p);
                ok = conv->init(p, index, constants);
                *made = std::move(conv);
              }
            }
          });
        }
        break;
      }
      case KernelType::FullyConnected: {
        const auto& p = *static_cast<const FullyConnectedParams*>(k.params);
        if (element_count(in) != static_cast<size_t>(p.in_c) || count != static_cast<size_t>(p.out_c)) {
          return bad("fully connected sizes do not match its tensors");
        }
        with_type(out.dtype, [&](auto t) {
          using T = decltype(t);
          if constexpr (std::is_floating_point<T>::value) {
            auto fc = std::make_unique<FullyConnectedFloat>(k, p);
            ok = fc->init(index, constants);
            *made = std::move(fc);
          } else {
            auto fc = std::make_unique<FullyConnectedInt<T>>(k, p);
            ok = fc->init(index, constants);
            *made = std::move(fc);
          }
        });
        break;
      }
      case KernelType::AveragePool2D:
      case KernelType::MaxPool2D: {
        const auto& p = *static_cast<const PoolParams*>(k.params);
        const bool avg = k.type == KernelType::AveragePool2D;
        with_type(out.dtype, [&](auto t) { *made = std::make_unique<Pool<decltype(t)>>(k, p, avg); });
        break;
      }
      case KernelType::Mean: {
        const auto& p = *static_cast<const MeanParams*>(k.params);
        if (p.count <= 0) return bad("mean over no elements");
        with_type(out.dtype, [&](auto t) { *made = std::make_unique<Mean<decltype(t)>>(k, p); });
        break;
      }
      case KernelType::Add: {
        const auto& p = *static_cast<const AddParams*>(k.params);
        with_type(out.dtype, [&](auto t) { *made = std::make_unique<AddKernel<decltype(t)>>(k, p, count); });
        break;
      }
      case KernelType::Pad: {
        const auto& p = *static_cast<const PadParams*>(k.params);
        if (in.h + p.pad_top + p.pad_bottom != out.h || in.w + p.pad_left + p.pad_right != out.w || in.c != out.c) {
          return bad("pad sizes do not match its tensors");
        }
        with_type(out.dtype, [&](auto t) { *made = std::make_unique<PadKernel<decltype(t)>>(k, p, in, out); });
        break;
      }
      case KernelType::Concat: {
        const auto& p = *static_cast<const ConcatParams*>(k.params);
        const int depth = p.c0 + p.c1;
        if (depth <= 0 || count % depth != 0) return bad("concat sizes do not match its tensors");
        if ((p.rescale0 || p.rescale1) && out.dtype != DType::UInt8) return bad("concat rescales only uint8");
        *made = std::make_unique<ConcatKernel>(k, p, dtype_size(out.dtype), count / depth);
        break;
      }
      case KernelType::Softmax: {
        const auto& p = *static_cast<const SoftmaxParams*>(k.params);
        const int depth = out.rank > 0 ? out.shape[out.rank - 1] : 1;
        if (depth <= 0 || count % depth != 0) return bad("softmax depth does not divide its tensor");
        with_type(out.dtype, [&](auto t) {
          *made = std::make_unique<SoftmaxKernel<decltype(t)>>(k, p, count / depth, depth);
        });
        break;
      }
      case KernelType::Quantize: {
        const auto& p = *static_cast<const QuantizeParams*>(k.params);
        if (in.dtype != DType::Float32 || !quantized) return bad("quantize needs float input, 8-bit output");
        with_type(out.dtype, [&](auto t) {
          using T = decltype(t);
          if constexpr (!std::is_floating_point<T>::value) *made = std::make_unique<QuantizeKernel<T>>(k, p, count);
        });
        break;
      }
      case KernelType::Requantize: {
        const auto& p = *static_cast<const QuantizeParams*>(k.params);
        if (in.dtype == DType::Float32 || !quantized) return bad("requantize needs 8-bit input and output");
        with_type(in.dtype, [&](auto a) {
          with_type(out.dtype, [&](auto b) {
            using In = decltype(a);
            using Out = decltype(b);
            if constexpr (!std::is_floating_point<In>::value && !std::is_floating_point<Out>::value) {
              *made = std::make_unique<RequantizeKernel<In, Out>>(k, p, count);
            }
          });
        });
        break;
      }
      case KernelType::Dequantize: {
        const auto& p = *static_cast<const QuantizeParams*>(k.params);
        if (in.dtype == DType::Float32 || quantized) return bad("dequantize needs 8-bit input, float output");
        with_type(in.dtype, [&](auto t) {
          using T = decltype(t);
          if constexpr (!std::is_floating_point<T>::value) *made = std::make_unique<DequantizeKernel<T>>(k, p, count);
        });
        break;
      }
      case KernelType::Reshape:
        // The bytes of an NHWC array do not depend on its shape: the output aliases the input.
        if (tensor_bytes(in) != tensor_bytes(out)) return bad("reshape changes the tensor's size");
        return Status::Ok;
      case KernelType::Activation: {
        const auto& p = *static_cast<const ActivationParams*>(k.params);
        with_type(out.dtype, [&](auto t) { *made = std::make_unique<ActivationKernel<decltype(t)>>(k, p, count); });
        break;
      }
      default:
        return bad("unknown kernel type " + std::to_string(static_cast<int>(k.type)));
    }
    if (!ok) {
      if (error && error->empty()) *error = "kernel " + std::to_string(index) + ": inconsistent parameters";
      return Status::InvalidBlob;
    }
    if (!*made) return bad("unsupported tensor types");
    return Status::Ok;
  }

  void allocate(const ModelPlan& plan) {
    std::vector<int> alias(plan.num_tensors, -1);
    for (int i = 0; i < plan.num_kernels; ++i) {
      if (plan.kernels[i].type == KernelType::Reshape) alias[plan.kernels[i].output] = plan.kernels[i].inputs[0];
    }
    std::vector<size_t> offset(plan.num_tensors, 0);
    size_t total = 0;
    for (int t = 0; t < plan.num_tensors; ++t) {
      if (alias[t] >= 0) continue;
      offset[t] = total;
      total += round_up(std::max<size_t>(tensor_bytes(plan.tensors[t]), 1), kArenaAlign);
    }
    arena_.assign(total + kArenaAlign, 0);
    uint8_t* base = arena_.data();
    base += (kArenaAlign - reinterpret_cast<uintptr_t>(base) % kArenaAlign) % kArenaAlign;
    tensors_.assign(plan.num_tensors, nullptr);
    for (int t = 0; t < plan.num_tensors; ++t) {
      if (alias[t] < 0) tensors_[t] = base + offset[t];
    }
    // Reshape chains resolve in kernel order: an input is placed before the kernel that reads it.
    for (int i = 0; i < plan.num_kernels; ++i) {
      const Kernel& k = plan.kernels[i];
      if (k.type == KernelType::Reshape) tensors_[k.output] = tensors_[k.inputs[0]];
    }
    size_t i16 = 0, i32 = 0, f32 = 0;
    for (const auto& k : kernels_) {
      if (!k) continue;
      i16 = std::max(i16, k->need_i16);
      i32 = std::max(i32, k->need_i32);
      f32 = std::max(f32, k->need_f32);
    }
    scratch_.i16.assign(i16, 0);
    scratch_.i32.assign(i32, 0);
    scratch_.f32.assign(f32, 0.0f);
  }

  const ModelPlan* plan_ = nullptr;
  std::vector<std::unique_ptr<CpuKernel>> kernels_;
  std::vector<uint8_t> arena_;
  std::vector<uint8_t*> tensors_;
  Scratch scratch_;
};

}  // namespace

std::unique_ptr<BackendImpl> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace mobilegen
