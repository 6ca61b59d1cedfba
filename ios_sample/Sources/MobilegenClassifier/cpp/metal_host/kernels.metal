// mobilegen Metal library: every kernel of this model, after these shared helpers.
#ifdef __METAL_VERSION__
#include <metal_stdlib>
#if __METAL_VERSION__ >= 320
// No fused multiply-add: every float operation rounds on its own (MSL 3.2 §1.6.3; the engine also
// compiles with MTLMathModeSafe, which alone still allows contraction within a statement).
#pragma METAL fp math_mode(safe)
#pragma METAL fp contract(off)
#endif
#endif
// (The host proof compiles this file as C++ after metal_shim.h, with -ffp-contract=off.)
using namespace metal;

constexpr constant int I32_MIN = -2147483647 - 1;
constexpr constant int I32_MAX = 2147483647;

// -- wrapping int32 arithmetic ----------------------------------------------------------------
// a + b modulo 2^32 (the int32 sums the reference kernels let wrap).
inline int wrapping_add(int a, int b) {
  return as_type<int>(as_type<uint>(a) + as_type<uint>(b));
}
inline int4 wrapping_add(int4 a, int4 b) {
  return as_type<int4>(as_type<uint4>(a) + as_type<uint4>(b));
}
// x << e modulo 2^32, e in [0, 31].
inline int wrapping_shl(int x, int e) {
  return as_type<int>(as_type<uint>(x) << uint(e));
}

// -- 8-bit packing ----------------------------------------------------------------------------
// 4 x int8 (sign-extended) / 4 x uint8 out of one uint; lane i in bits 8i..8i+7.
inline int4 unpack_s8(uint w) {
  return int4(as_type<char4>(w));
}
inline int4 unpack_u8(uint w) {
  return int4(as_type<uchar4>(w));
}
// The low 8 bits of each lane (values are already clamped to the 8-bit range).
inline uint pack8(int4 v) {
  uint4 b = as_type<uint4>(v) & 0xffu;
  return b.x | (b.y << 8) | (b.z << 16) | (b.w << 24);
}
// Integer dot product of 8-bit-range lanes (products and their sum fit int32).
inline int idot(int4 a, int4 b) {
  int4 p = a * b;
  return p.x + p.y + p.z + p.w;
}

// -- TFLite's integer requantization primitives (NUMERICS.md) ---------------------------------

// gemmlowp SaturatingRoundingDoublingHighMul from the 64-bit product: (a * b + 2^30) >> 31 with
// an arithmetic (flooring) shift, which equals gemmlowp's nudged division rounded toward zero;
// the only overflow, I32_MIN * I32_MIN, saturates.
inline int srdhm(int a, int b) {
  if (a == I32_MIN && b == I32_MIN) return I32_MAX;
  long ab = long(a) * long(b);
  return int((ab + (long(1) << 30)) >> 31);
}

// gemmlowp RoundingDivideByPOT: x / 2^e rounded to nearest, halves away from zero; e in [0, 31].
inline int rdbpot(int x, int e) {
  if (e <= 0) return x;
  int mask = int((1u << uint(e)) - 1u);
  int remainder = x & mask;
  int threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> e) + (remainder > threshold ? 1 : 0);
}

// TFLite MultiplyByQuantizedMultiplier (double-rounding build); shift > 0 shifts left first
// (wrapping, as the reference's int32 shift does).
inline int mbqm(int x, int multiplier, int shift) {
  int left = clamp(shift, 0, 31);
  int right = clamp(-shift, 0, 31);
  return rdbpot(srdhm(wrapping_shl(x, left), multiplier), right);
}

inline int4 mbqm4(int4 x, int4 multiplier, int4 shift) {
  return int4(mbqm(x.x, multiplier.x, shift.x), mbqm(x.y, multiplier.y, shift.y),
              mbqm(x.z, multiplier.z, shift.z), mbqm(x.w, multiplier.w, shift.w));
}
inline int4 mbqm4(int4 x, int multiplier, int shift) {
  return mbqm4(x, int4(multiplier), int4(shift));
}

// -- gemmlowp exp and reciprocal (integer SOFTMAX) --------------------------------------------
// exp_on_negative_values (Q5.26 in) and GetReciprocal (Q12.19 in), as in
// mobilegen/numerics/fixedpoint.py.

// gemmlowp SaturatingRoundingMultiplyByPOT: saturating << e for e > 0, RDBPOT for e < 0.
inline int sat_mul_by_pot(int x, int e) {
  if (e == 0) return x;
  if (e < 0) return rdbpot(x, -e);
  int threshold = int((1u << uint(31 - e)) - 1u);
  if (x > threshold) return I32_MAX;
  if (x < -threshold) return I32_MIN;
  return wrapping_shl(x, e);
}

// exp(a) for a in [-1/4, 0), Q0.31 in and out: Taylor series around -1/8.
constexpr constant int EXP_MINUS_ONE_EIGHTH_Q31 = 1895147668;
constexpr constant int ONE_THIRD_Q31 = 715827883;
inline int exp_on_interval_between_negative_one_quarter_and_0_excl(int a) {
  int x = a + (1 << 28);  // a + 1/8
  int x2 = srdhm(x, x);
  int x3 = srdhm(x2, x);
  int x4 = srdhm(x2, x2);
  int x4_over_4 = rdbpot(x4, 2);
  int inner = srdhm(x4_over_4 + x3, ONE_THIRD_Q31) + x2;
  int x4_over_24_plus_x3_over_6_plus_x2_over_2 = rdbpot(inner, 1);
  return EXP_MINUS_ONE_EIGHTH_Q31 +
         srdhm(EXP_MINUS_ONE_EIGHTH_Q31, x + x4_over_24_plus_x3_over_6_plus_x2_over_2);
}

// exp(a) for a <= 0 in Q5.26 (5 integer bits), result Q0.31; exp(0) is I32_MAX (gemmlowp's One()).
constexpr constant int EXP_INTEGER_BITS = 5;
constexpr constant int EXP_FRACTIONAL_BITS = 31 - EXP_INTEGER_BITS;
inline int exp_on_negative_values(int a) {
  const int one_quarter = 1 << (EXP_FRACTIONAL_BITS - 2);
  const int mask = one_quarter - 1;
  int a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter;
  int result = exp_on_interval_between_negative_one_quarter_and_0_excl(
      sat_mul_by_pot(a_mod_quarter_minus_one_quarter, EXP_INTEGER_BITS));
  int remainder = a_mod_quarter_minus_one_quarter - a;
  // Barrel shifter: multiply by exp(-2^k) for each set bit k = -2 .. 4 of the remainder.
  if ((remainder & (1 << (EXP_FRACTIONAL_BITS - 2))) != 0) result = srdhm(result, 1672461947);
  if ((remainder & (1 << (EXP_FRACTIONAL_BITS - 1))) != 0) result = srdhm(result, 1302514674);
  if ((remainder & (1 << (EXP_FRACTIONAL_BITS + 0))) != 0) result = srdhm(result, 790015084);
  if ((remainder & (1 << (EXP_FRACTIONAL_BITS + 1))) != 0) result = srdhm(result, 290630308);
  if ((remainder & (1 << (EXP_FRACTIONAL_BITS + 2))) != 0) result = srdhm(result, 39332535);
  if ((remainder & (1 << (EXP_FRACTIONAL_BITS + 3))) != 0) result = srdhm(result, 720401);
  if ((remainder & (1 << (EXP_FRACTIONAL_BITS + 4))) != 0) result = srdhm(result, 242);
  return a == 0 ? I32_MAX : result;
}

// gemmlowp RoundingHalfSum(a, I32_MAX) for a >= 0: (a + 2^31) / 2 without int32 overflow.
inline int rounding_half_sum_with_one(int a) {
  return int((uint(a) + 0x80000000u) >> 1);
}

// 1 / (1 + a) for a in [0, 1) (Q0.31 in and out): Newton-Raphson in Q2.29.
inline int one_over_one_plus_x_for_x_in_0_1(int a) {
  int half_denominator = rounding_half_sum_with_one(a);
  int x = 1515870810 + srdhm(half_denominator, -1010580540);  // 48/17 - 32/17 * d
  for (int i = 0; i < 3; ++i) {
    int half_denominator_times_x = srdhm(half_denominator, x);
    int one_minus_half_denominator_times_x = (1 << 29) - half_denominator_times_x;
    x = x + sat_mul_by_pot(srdhm(x, one_minus_half_denominator_times_x), 2);
  }
  return sat_mul_by_pot(x, 1);
}

// TFLite GetReciprocal for a positive Q12.19 value: 1/x = scale * 2^-num_bits_over_unit.
constexpr constant int ACCUMULATION_INTEGER_BITS = 12;
inline int get_reciprocal(int x, thread int& num_bits_over_unit) {
  int headroom_plus_one = int(clz(uint(x)));  // 32 for 0
  num_bits_over_unit = ACCUMULATION_INTEGER_BITS - headroom_plus_one;
  uint shifted = headroom_plus_one >= 32 ? 0u : uint(x) << uint(headroom_plus_one);
  return one_over_one_plus_x_for_x_in_0_1(as_type<int>(shifted - 0x80000000u));
}

// -- exact float rounding without float division or doubles -----------------------------------
constexpr constant int SATURATED = 1 << 24;  // any magnitude the 8-bit output clamp saturates

// QUANTIZE's roundf(float32(v / scale)) with scale = scale_mantissa * 2^scale_exponent
// (scale_mantissa a 24-bit integer): Metal's division is not correctly rounded, so the quotient
// is formed exactly by long division, rounded to 24 bits to nearest-even (the IEEE division),
// then to an integer with halves away from zero. Magnitudes beyond 2^24 saturate.
inline int quantize_value(float v, uint scale_mantissa, int scale_exponent) {
  uint bits = as_type<uint>(v);
  int biased = int((bits >> 23) & 0xffu);
  bool negative = (bits >> 31) != 0u;
  if (biased == 0) return 0;  // zero or subnormal: far below half a step of any valid scale
  if (biased == 255) return negative ? -SATURATED : SATURATED;  // infinity (NaN: undefined in C)
  uint a = (bits & 0x7fffffu) | 0x800000u;  // |v| = a * 2^(biased - 150)
  int e = biased - 150 - scale_exponent;    // |v| / scale = (a / scale_mantissa) * 2^e
  if (a < scale_mantissa) {                 // make the ratio lie in [1, 2)
    a <<= 1;
    e -= 1;
  }
  // 26 quotient bits q = floor(a / b * 2^25) and a sticky bit for the remainder.
  uint q = 0u;
  uint r = a;
  for (int i = 0; i < 26; ++i) {
    q <<= 1;
    if (r >= scale_mantissa) {
      r -= scale_mantissa;
      q |= 1u;
    }
    r <<= 1;
  }
  bool sticky = r != 0u;
  // Round to 24 significant bits, nearest-even: quotient = m * 2^(e - 23).
  uint dropped = q & 3u;
  uint m = q >> 2;
  if (dropped > 2u || (dropped == 2u && (sticky || (m & 1u) == 1u))) m += 1u;
  // Round m * 2^-k to an integer, halves away from zero.
  int k = 23 - e;
  int magnitude;
  if (k <= 0) {
    magnitude = SATURATED;  // >= 2^23
  } else if (k > 25) {
    magnitude = 0;  // < 1/2
  } else {
    magnitude = min(int((m + (1u << uint(k - 1))) >> uint(k)), SATURATED);
  }
  return negative ? -magnitude : magnitude;
}

// FULLY_CONNECTED's round_half_away(double(acc) * scale) without doubles (MSL has none), exactly
// as IEEE: scale = m * 2^e (scale_lo, scale_hi: the float64's words) with a 53-bit integer m; the
// exact product |acc| * m (< 2^84) is hi * 2^32 + lo with 64-bit ulong hi, rounded to 53
// significant bits to nearest-even (the double multiply), and that double is rounded to an
// integer, halves away from zero (C round). Magnitudes beyond 2^24 saturate.
inline int scale_and_round(int acc, uint scale_lo, uint scale_hi) {
  int biased_exponent = int((scale_hi >> 20) & 0x7ffu);
  if (acc == 0 || biased_exponent == 0) return 0;  // zero, or a subnormal scale: |product| < 1/2
  ulong m_hi = ulong((scale_hi & 0xfffffu) | 0x100000u);  // m = m_hi * 2^32 + scale_lo
  int e = biased_exponent - 1075;                            // scale = m * 2^e
  ulong a = acc < 0 ? 0ul - ulong(long(acc)) : ulong(acc);    // |acc|, also for I32_MIN

  // |acc| * m = hi * 2^32 + lo (hi < 2^54)
  ulong low_product = a * ulong(scale_lo);
  ulong hi = a * m_hi + (low_product >> 32);
  uint lo = uint(low_product & 0xffffffffu);

  // Round to 53 significant bits: drop d = bits - 53 low bits (0 <= d <= 31: 2^52 <= product < 2^84).
  uint hi_top = uint(hi >> 32);
  int bits = hi_top != 0u ? 96 - int(clz(hi_top)) : 64 - int(clz(uint(hi)));
  int d = bits - 53;
  ulong r;  // the kept bits
  if (d == 0) {
    r = (hi << 32) | ulong(lo);
  } else {
    r = (hi << uint(32 - d)) | ulong(lo >> uint(d));
    uint rem = lo & ((1u << uint(d)) - 1u);
    uint half_ulp = 1u << uint(d - 1);
    if (rem > half_ulp || (rem == half_ulp && (r & 1ul) == 1ul)) r += 1ul;  // nearest-even
  }

  // |product| = r * 2^(d + e), r in [2^52, 2^53]; round to an integer, halves away from zero.
  int k = -(d + e);
  int magnitude;
  if (k <= 21) {
    magnitude = SATURATED;  // >= 2^31
  } else if (k >= 55) {
    magnitude = 0;  // < 1/2
  } else {
    ulong n = (r + (ulong(1) << uint(k - 1))) >> uint(k);
    magnitude = n >= ulong(SATURATED) ? SATURATED : int(n);
  }
  return acc < 0 ? -magnitude : magnitude;
}

// mobilegen: Quantize (int8), output [128][128][3] int8, threadgroup 8x8x1
namespace quantize_impl {
// out: int8 [128][128][3] stored as PHWC4 [1][128][128][4]
constexpr constant int OUT_H = 128;
constexpr constant int OUT_W = 128;
constexpr constant int OUT_C = 3;
constexpr constant int OUT_S = 1;  // slices of 4 channels
inline void out_store(device uint* data, int s, int y, int x, int4 v) {
  if (s == OUT_S - 1) v *= int4(1, 1, 1, 0);  // zero the padding lanes
  data[(s * OUT_H + y) * OUT_W + x] = pack8(v);
}

// inp: float32 [128][128][3] stored as PHWC4 [1][128][128][4]
constexpr constant int INP_H = 128;
constexpr constant int INP_W = 128;
constexpr constant int INP_C = 3;
constexpr constant int INP_S = 1;  // slices of 4 channels
inline float4 inp_load(const device float4* data, int s, int y, int x) {
  return data[(s * INP_H + y) * INP_W + x];
}

// QUANTIZE float32 -> 8-bit: clamp(roundf(x / scale) + ZERO_POINT), the division in IEEE float32,
// computed exactly in integers (quantize_value): scale = SCALE_MANTISSA * 2^SCALE_EXPONENT (0.00782186259f).
constexpr constant uint SCALE_MANTISSA = 8398661u;  // 24 significant bits
constexpr constant int SCALE_EXPONENT = -30;
constexpr constant int ZERO_POINT = -1;
constexpr constant int QMIN = -128;
constexpr constant int QMAX = 127;
}  // namespace quantize_impl

kernel void quantize(
    device uint* out_data [[buffer(0)]],
    const device float4* inp_data [[buffer(1)]],
    uint3 gid [[thread_position_in_grid]]) {
  using namespace quantize_impl;
  int x = int(gid.x);
  int y = int(gid.y);
  int s = int(gid.z);
  if (x >= OUT_W || y >= OUT_H || s >= OUT_S) return;

  float4 v = inp_load(inp_data, s, y, x);
  int4 q = int4(quantize_value(v.x, SCALE_MANTISSA, SCALE_EXPONENT), quantize_value(v.y, SCALE_MANTISSA, SCALE_EXPONENT),
                quantize_value(v.z, SCALE_MANTISSA, SCALE_EXPONENT), quantize_value(v.w, SCALE_MANTISSA, SCALE_EXPONENT));
  out_store(out_data, s, y, x, clamp(q + ZERO_POINT, int4(QMIN), int4(QMAX)));
}

// mobilegen: Conv2D (int8), output [64][64][8] int8, threadgroup 8x8x1
namespace conv2d_3x3_s2_impl {
// out: int8 [64][64][8] stored as PHWC4 [2][64][64][4]
constexpr constant int OUT_H = 64;
constexpr constant int OUT_W = 64;
constexpr constant int OUT_C = 8;
constexpr constant int OUT_S = 2;  // slices of 4 channels
inline void out_store(device uint* data, int s, int y, int x, int4 v) {
  data[(s * OUT_H + y) * OUT_W + x] = pack8(v);
}

// inp: int8 [128][128][3] stored as PHWC4 [1][128][128][4]
constexpr constant int INP_H = 128;
constexpr constant int INP_W = 128;
constexpr constant int INP_C = 3;
constexpr constant int INP_S = 1;  // slices of 4 channels
inline int4 inp_load(const device uint* data, int s, int y, int x) {
  return unpack_s8(data[(s * INP_H + y) * INP_W + x]);
}

// Window (pad_top/pad_left: SAME padding's odd pixel goes bottom/right).
constexpr constant int K_H = 3;
constexpr constant int K_W = 3;
constexpr constant int STRIDE_H = 2;
constexpr constant int STRIDE_W = 2;
constexpr constant int DIL_H = 1;
constexpr constant int DIL_W = 1;
constexpr constant int PAD_TOP = 0;
constexpr constant int PAD_LEFT = 0;
constexpr constant int INPUT_OFFSET = 1;    // -input zero point
constexpr constant int WEIGHTS_OFFSET = 0;  // -filter zero point (0 for int8)
constexpr constant int OUTPUT_ZERO_POINT = -128;
constexpr constant int ACT_MIN = -128;
constexpr constant int ACT_MAX = 127;
}  // namespace conv2d_3x3_s2_impl

// weights: filter [ceil(oc/4)][kh][kw][ceil(ic/4)][o4][i4], int8: one uint holds the 4 i4 of an o4.
// channel: per-channel int32 vectors, each [OUT_S][4]: bias, then multipliers, then shifts.
kernel void conv2d_3x3_s2(
    device uint* out_data [[buffer(0)]],
    const device uint* inp_data [[buffer(1)]],
    const device int4* channel [[buffer(2)]],
    const device uint* weights [[buffer(3)]],
    uint3 gid [[thread_position_in_grid]]) {
  using namespace conv2d_3x3_s2_impl;
  int x = int(gid.x);
  int y = int(gid.y);
  int s = int(gid.z);
  if (x >= OUT_W || y >= OUT_H || s >= OUT_S) return;

  int4 acc = int4(0);  // int32, wrapping like the reference accumulator
  for (int ky = 0; ky < K_H; ++ky) {
    int iy = y * STRIDE_H - PAD_TOP + ky * DIL_H;
    if (iy < 0 || iy >= INP_H) continue;  // out-of-bounds taps contribute nothing
    for (int kx = 0; kx < K_W; ++kx) {
      int ix = x * STRIDE_W - PAD_LEFT + kx * DIL_W;
      if (ix < 0 || ix >= INP_W) continue;
      int base = ((s * K_H + ky) * K_W + kx) * INP_S * 4;
      for (int si = 0; si < INP_S; ++si, base += 4) {
        int4 v = inp_load(inp_data, si, iy, ix) + INPUT_OFFSET;
        if (si == INP_S - 1) v *= int4(1, 1, 1, 0);  // padding lanes
        acc = wrapping_add(acc, int4(idot(unpack_s8(weights[base + 0]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 1]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 2]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 3]) + WEIGHTS_OFFSET, v)));
      }
    }
  }
  acc = wrapping_add(acc, channel[s]);  // bias
  int4 result = mbqm4(acc, channel[OUT_S + s], channel[2 * OUT_S + s]) + OUTPUT_ZERO_POINT;
  out_store(out_data, s, y, x, clamp(result, int4(ACT_MIN), int4(ACT_MAX)));
}

// mobilegen: DepthwiseConv2D (int8), output [64][64][8] int8, threadgroup 8x8x1
namespace depthwise_3x3_s1_impl {
// out: int8 [64][64][8] stored as PHWC4 [2][64][64][4]
constexpr constant int OUT_H = 64;
constexpr constant int OUT_W = 64;
constexpr constant int OUT_C = 8;
constexpr constant int OUT_S = 2;  // slices of 4 channels
inline void out_store(device uint* data, int s, int y, int x, int4 v) {
  data[(s * OUT_H + y) * OUT_W + x] = pack8(v);
}

// inp: int8 [64][64][8] stored as PHWC4 [2][64][64][4]
constexpr constant int INP_H = 64;
constexpr constant int INP_W = 64;
constexpr constant int INP_C = 8;
constexpr constant int INP_S = 2;  // slices of 4 channels
inline int4 inp_load(const device uint* data, int s, int y, int x) {
  return unpack_s8(data[(s * INP_H + y) * INP_W + x]);
}

constexpr constant int K_H = 3;
constexpr constant int K_W = 3;
constexpr constant int STRIDE_H = 1;
constexpr constant int STRIDE_W = 1;
constexpr constant int DIL_H = 1;
constexpr constant int DIL_W = 1;
constexpr constant int PAD_TOP = 1;
constexpr constant int PAD_LEFT = 1;
constexpr constant int DEPTH_MULTIPLIER = 1;  // output channel oc reads input channel oc / DEPTH_MULTIPLIER
constexpr constant int INPUT_OFFSET = 128;
constexpr constant int WEIGHTS_OFFSET = 0;
constexpr constant int OUTPUT_ZERO_POINT = -128;
constexpr constant int ACT_MIN = -128;
constexpr constant int ACT_MAX = 127;
}  // namespace depthwise_3x3_s1_impl

// weights: filter [ceil(oc/4)][kh][kw][4], int8: one uint per tap and output slice.
// channel: per-channel int32 vectors, each [OUT_S][4]: bias, then multipliers, then shifts.
kernel void depthwise_3x3_s1(
    device uint* out_data [[buffer(0)]],
    const device uint* inp_data [[buffer(1)]],
    const device int4* channel [[buffer(2)]],
    const device uint* weights [[buffer(3)]],
    uint3 gid [[thread_position_in_grid]]) {
  using namespace depthwise_3x3_s1_impl;
  int x = int(gid.x);
  int y = int(gid.y);
  int s = int(gid.z);
  if (x >= OUT_W || y >= OUT_H || s >= OUT_S) return;

  int4 acc = int4(0);
  for (int ky = 0; ky < K_H; ++ky) {
    int iy = y * STRIDE_H - PAD_TOP + ky * DIL_H;
    if (iy < 0 || iy >= INP_H) continue;  // out-of-bounds taps contribute nothing
    for (int kx = 0; kx < K_W; ++kx) {
      int ix = x * STRIDE_W - PAD_LEFT + kx * DIL_W;
      if (ix < 0 || ix >= INP_W) continue;
      int4 v = inp_load(inp_data, s, iy, ix);
      acc = wrapping_add(acc, (unpack_s8(weights[(s * K_H + ky) * K_W + kx]) + WEIGHTS_OFFSET) * (v + INPUT_OFFSET));
    }
  }
  acc = wrapping_add(acc, channel[s]);  // bias
  int4 result = mbqm4(acc, channel[OUT_S + s], channel[2 * OUT_S + s]) + OUTPUT_ZERO_POINT;
  out_store(out_data, s, y, x, clamp(result, int4(ACT_MIN), int4(ACT_MAX)));  // padding lanes are zeroed by the store
}

// mobilegen: Conv2D (int8), output [64][64][16] int8, threadgroup 8x8x1
namespace conv2d_1x1_s1_impl {
// out: int8 [64][64][16] stored as PHWC4 [4][64][64][4]
constexpr constant int OUT_H = 64;
constexpr constant int OUT_W = 64;
constexpr constant int OUT_C = 16;
constexpr constant int OUT_S = 4;  // slices of 4 channels
inline void out_store(device uint* data, int s, int y, int x, int4 v) {
  data[(s * OUT_H + y) * OUT_W + x] = pack8(v);
}

// inp: int8 [64][64][8] stored as PHWC4 [2][64][64][4]
constexpr constant int INP_H = 64;
constexpr constant int INP_W = 64;
constexpr constant int INP_C = 8;
constexpr constant int INP_S = 2;  // slices of 4 channels
inline int4 inp_load(const device uint* data, int s, int y, int x) {
  return unpack_s8(data[(s * INP_H + y) * INP_W + x]);
}

// Window (pad_top/pad_left: SAME padding's odd pixel goes bottom/right).
constexpr constant int K_H = 1;
constexpr constant int K_W = 1;
constexpr constant int STRIDE_H = 1;
constexpr constant int STRIDE_W = 1;
constexpr constant int DIL_H = 1;
constexpr constant int DIL_W = 1;
constexpr constant int PAD_TOP = 0;
constexpr constant int PAD_LEFT = 0;
constexpr constant int INPUT_OFFSET = 128;    // -input zero point
constexpr constant int WEIGHTS_OFFSET = 0;  // -filter zero point (0 for int8)
constexpr constant int OUTPUT_ZERO_POINT = -128;
constexpr constant int ACT_MIN = -128;
constexpr constant int ACT_MAX = 127;
}  // namespace conv2d_1x1_s1_impl

// weights: filter [ceil(oc/4)][kh][kw][ceil(ic/4)][o4][i4], int8: one uint holds the 4 i4 of an o4.
// channel: per-channel int32 vectors, each [OUT_S][4]: bias, then multipliers, then shifts.
kernel void conv2d_1x1_s1(
    device uint* out_data [[buffer(0)]],
    const device uint* inp_data [[buffer(1)]],
    const device int4* channel [[buffer(2)]],
    const device uint* weights [[buffer(3)]],
    uint3 gid [[thread_position_in_grid]]) {
  using namespace conv2d_1x1_s1_impl;
  int x = int(gid.x);
  int y = int(gid.y);
  int s = int(gid.z);
  if (x >= OUT_W || y >= OUT_H || s >= OUT_S) return;

  int4 acc = int4(0);  // int32, wrapping like the reference accumulator
  for (int ky = 0; ky < K_H; ++ky) {
    int iy = y * STRIDE_H - PAD_TOP + ky * DIL_H;
    if (iy < 0 || iy >= INP_H) continue;  // out-of-bounds taps contribute nothing
    for (int kx = 0; kx < K_W; ++kx) {
      int ix = x * STRIDE_W - PAD_LEFT + kx * DIL_W;
      if (ix < 0 || ix >= INP_W) continue;
      int base = ((s * K_H + ky) * K_W + kx) * INP_S * 4;
      for (int si = 0; si < INP_S; ++si, base += 4) {
        int4 v = inp_load(inp_data, si, iy, ix) + INPUT_OFFSET;
        acc = wrapping_add(acc, int4(idot(unpack_s8(weights[base + 0]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 1]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 2]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 3]) + WEIGHTS_OFFSET, v)));
      }
    }
  }
  acc = wrapping_add(acc, channel[s]);  // bias
  int4 result = mbqm4(acc, channel[OUT_S + s], channel[2 * OUT_S + s]) + OUTPUT_ZERO_POINT;
  out_store(out_data, s, y, x, clamp(result, int4(ACT_MIN), int4(ACT_MAX)));
}

// mobilegen: DepthwiseConv2D (int8), output [32][32][16] int8, threadgroup 8x8x1
namespace depthwise_3x3_s2_impl {
// out: int8 [32][32][16] stored as PHWC4 [4][32][32][4]
constexpr constant int OUT_H = 32;
constexpr constant int OUT_W = 32;
constexpr constant int OUT_C = 16;
constexpr constant int OUT_S = 4;  // slices of 4 channels
inline void out_store(device uint* data, int s, int y, int x, int4 v) {
  data[(s * OUT_H + y) * OUT_W + x] = pack8(v);
}

// inp: int8 [64][64][16] stored as PHWC4 [4][64][64][4]
constexpr constant int INP_H = 64;
constexpr constant int INP_W = 64;
constexpr constant int INP_C = 16;
constexpr constant int INP_S = 4;  // slices of 4 channels
inline int4 inp_load(const device uint* data, int s, int y, int x) {
  return unpack_s8(data[(s * INP_H + y) * INP_W + x]);
}

constexpr constant int K_H = 3;
constexpr constant int K_W = 3;
constexpr constant int STRIDE_H = 2;
constexpr constant int STRIDE_W = 2;
constexpr constant int DIL_H = 1;
constexpr constant int DIL_W = 1;
constexpr constant int PAD_TOP = 0;
constexpr constant int PAD_LEFT = 0;
constexpr constant int DEPTH_MULTIPLIER = 1;  // output channel oc reads input channel oc / DEPTH_MULTIPLIER
constexpr constant int INPUT_OFFSET = 128;
constexpr constant int WEIGHTS_OFFSET = 0;
constexpr constant int OUTPUT_ZERO_POINT = -128;
constexpr constant int ACT_MIN = -128;
constexpr constant int ACT_MAX = 127;
}  // namespace depthwise_3x3_s2_impl

// weights: filter [ceil(oc/4)][kh][kw][4], int8: one uint per tap and output slice.
// channel: per-channel int32 vectors, each [OUT_S][4]: bias, then multipliers, then shifts.
kernel void depthwise_3x3_s2(
    device uint* out_data [[buffer(0)]],
    const device uint* inp_data [[buffer(1)]],
    const device int4* channel [[buffer(2)]],
    const device uint* weights [[buffer(3)]],
    uint3 gid [[thread_position_in_grid]]) {
  using namespace depthwise_3x3_s2_impl;
  int x = int(gid.x);
  int y = int(gid.y);
  int s = int(gid.z);
  if (x >= OUT_W || y >= OUT_H || s >= OUT_S) return;

  int4 acc = int4(0);
  for (int ky = 0; ky < K_H; ++ky) {
    int iy = y * STRIDE_H - PAD_TOP + ky * DIL_H;
    if (iy < 0 || iy >= INP_H) continue;  // out-of-bounds taps contribute nothing
    for (int kx = 0; kx < K_W; ++kx) {
      int ix = x * STRIDE_W - PAD_LEFT + kx * DIL_W;
      if (ix < 0 || ix >= INP_W) continue;
      int4 v = inp_load(inp_data, s, iy, ix);
      acc = wrapping_add(acc, (unpack_s8(weights[(s * K_H + ky) * K_W + kx]) + WEIGHTS_OFFSET) * (v + INPUT_OFFSET));
    }
  }
  acc = wrapping_add(acc, channel[s]);  // bias
  int4 result = mbqm4(acc, channel[OUT_S + s], channel[2 * OUT_S + s]) + OUTPUT_ZERO_POINT;
  out_store(out_data, s, y, x, clamp(result, int4(ACT_MIN), int4(ACT_MAX)));  // padding lanes are zeroed by the store
}

// mobilegen: Conv2D (int8), output [32][32][32] int8, threadgroup 8x8x1
namespace conv2d_1x1_s1_2_impl {
// out: int8 [32][32][32] stored as PHWC4 [8][32][32][4]
constexpr constant int OUT_H = 32;
constexpr constant int OUT_W = 32;
constexpr constant int OUT_C = 32;
constexpr constant int OUT_S = 8;  // slices of 4 channels
inline void out_store(device uint* data, int s, int y, int x, int4 v) {
  data[(s * OUT_H + y) * OUT_W + x] = pack8(v);
}

// inp: int8 [32][32][16] stored as PHWC4 [4][32][32][4]
constexpr constant int INP_H = 32;
constexpr constant int INP_W = 32;
constexpr constant int INP_C = 16;
constexpr constant int INP_S = 4;  // slices of 4 channels
inline int4 inp_load(const device uint* data, int s, int y, int x) {
  return unpack_s8(data[(s * INP_H + y) * INP_W + x]);
}

// Window (pad_top/pad_left: SAME padding's odd pixel goes bottom/right).
constexpr constant int K_H = 1;
constexpr constant int K_W = 1;
constexpr constant int STRIDE_H = 1;
constexpr constant int STRIDE_W = 1;
constexpr constant int DIL_H = 1;
constexpr constant int DIL_W = 1;
constexpr constant int PAD_TOP = 0;
constexpr constant int PAD_LEFT = 0;
constexpr constant int INPUT_OFFSET = 128;    // -input zero point
constexpr constant int WEIGHTS_OFFSET = 0;  // -filter zero point (0 for int8)
constexpr constant int OUTPUT_ZERO_POINT = -128;
constexpr constant int ACT_MIN = -128;
constexpr constant int ACT_MAX = 127;
}  // namespace conv2d_1x1_s1_2_impl

// weights: filter [ceil(oc/4)][kh][kw][ceil(ic/4)][o4][i4], int8: one uint holds the 4 i4 of an o4.
// channel: per-channel int32 vectors, each [OUT_S][4]: bias, then multipliers, then shifts.
kernel void conv2d_1x1_s1_2(
    device uint* out_data [[buffer(0)]],
    const device uint* inp_data [[buffer(1)]],
    const device int4* channel [[buffer(2)]],
    const device uint* weights [[buffer(3)]],
    uint3 gid [[thread_position_in_grid]]) {
  using namespace conv2d_1x1_s1_2_impl;
  int x = int(gid.x);
  int y = int(gid.y);
  int s = int(gid.z);
  if (x >= OUT_W || y >= OUT_H || s >= OUT_S) return;

  int4 acc = int4(0);  // int32, wrapping like the reference accumulator
  for (int ky = 0; ky < K_H; ++ky) {
    int iy = y * STRIDE_H - PAD_TOP + ky * DIL_H;
    if (iy < 0 || iy >= INP_H) continue;  // out-of-bounds taps contribute nothing
    for (int kx = 0; kx < K_W; ++kx) {
      int ix = x * STRIDE_W - PAD_LEFT + kx * DIL_W;
      if (ix < 0 || ix >= INP_W) continue;
      int base = ((s * K_H + ky) * K_W + kx) * INP_S * 4;
      for (int si = 0; si < INP_S; ++si, base += 4) {
        int4 v = inp_load(inp_data, si, iy, ix) + INPUT_OFFSET;
        acc = wrapping_add(acc, int4(idot(unpack_s8(weights[base + 0]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 1]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 2]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 3]) + WEIGHTS_OFFSET, v)));
      }
    }
  }
  acc = wrapping_add(acc, channel[s]);  // bias
  int4 result = mbqm4(acc, channel[OUT_S + s], channel[2 * OUT_S + s]) + OUTPUT_ZERO_POINT;
  out_store(out_data, s, y, x, clamp(result, int4(ACT_MIN), int4(ACT_MAX)));
}

// mobilegen: DepthwiseConv2D (int8), output [32][32][32] int8, threadgroup 8x8x1
namespace depthwise_3x3_s1_2_impl {
// out: int8 [32][32][32] stored as PHWC4 [8][32][32][4]
constexpr constant int OUT_H = 32;
constexpr constant int OUT_W = 32;
constexpr constant int OUT_C = 32;
constexpr constant int OUT_S = 8;  // slices of 4 channels
inline void out_store(device uint* data, int s, int y, int x, int4 v) {
  data[(s * OUT_H + y) * OUT_W + x] = pack8(v);
}

// inp: int8 [32][32][32] stored as PHWC4 [8][32][32][4]
constexpr constant int INP_H = 32;
constexpr constant int INP_W = 32;
constexpr constant int INP_C = 32;
constexpr constant int INP_S = 8;  // slices of 4 channels
inline int4 inp_load(const device uint* data, int s, int y, int x) {
  return unpack_s8(data[(s * INP_H + y) * INP_W + x]);
}

constexpr constant int K_H = 3;
constexpr constant int K_W = 3;
constexpr constant int STRIDE_H = 1;
constexpr constant int STRIDE_W = 1;
constexpr constant int DIL_H = 1;
constexpr constant int DIL_W = 1;
constexpr constant int PAD_TOP = 1;
constexpr constant int PAD_LEFT = 1;
constexpr constant int DEPTH_MULTIPLIER = 1;  // output channel oc reads input channel oc / DEPTH_MULTIPLIER
constexpr constant int INPUT_OFFSET = 128;
constexpr constant int WEIGHTS_OFFSET = 0;
constexpr constant int OUTPUT_ZERO_POINT = -128;
constexpr constant int ACT_MIN = -128;
constexpr constant int ACT_MAX = 127;
}  // namespace depthwise_3x3_s1_2_impl

// weights: filter [ceil(oc/4)][kh][kw][4], int8: one uint per tap and output slice.
// channel: per-channel int32 vectors, each [OUT_S][4]: bias, then multipliers, then shifts.
kernel void depthwise_3x3_s1_2(
    device uint* out_data [[buffer(0)]],
    const device uint* inp_data [[buffer(1)]],
    const device int4* channel [[buffer(2)]],
    const device uint* weights [[buffer(3)]],
    uint3 gid [[thread_position_in_grid]]) {
  using namespace depthwise_3x3_s1_2_impl;
  int x = int(gid.x);
  int y = int(gid.y);
  int s = int(gid.z);
  if (x >= OUT_W || y >= OUT_H || s >= OUT_S) return;

  int4 acc = int4(0);
  for (int ky = 0; ky < K_H; ++ky) {
    int iy = y * STRIDE_H - PAD_TOP + ky * DIL_H;
    if (iy < 0 || iy >= INP_H) continue;  // out-of-bounds taps contribute nothing
    for (int kx = 0; kx < K_W; ++kx) {
      int ix = x * STRIDE_W - PAD_LEFT + kx * DIL_W;
      if (ix < 0 || ix >= INP_W) continue;
      int4 v = inp_load(inp_data, s, iy, ix);
      acc = wrapping_add(acc, (unpack_s8(weights[(s * K_H + ky) * K_W + kx]) + WEIGHTS_OFFSET) * (v + INPUT_OFFSET));
    }
  }
  acc = wrapping_add(acc, channel[s]);  // bias
  int4 result = mbqm4(acc, channel[OUT_S + s], channel[2 * OUT_S + s]) + OUTPUT_ZERO_POINT;
  out_store(out_data, s, y, x, clamp(result, int4(ACT_MIN), int4(ACT_MAX)));  // padding lanes are zeroed by the store
}

// mobilegen: Conv2D (int8), output [32][32][32] int8, threadgroup 8x8x1
namespace conv2d_1x1_s1_3_impl {
// out: int8 [32][32][32] stored as PHWC4 [8][32][32][4]
constexpr constant int OUT_H = 32;
constexpr constant int OUT_W = 32;
constexpr constant int OUT_C = 32;
constexpr constant int OUT_S = 8;  // slices of 4 channels
inline void out_store(device uint* data, int s, int y, int x, int4 v) {
  data[(s * OUT_H + y) * OUT_W + x] = pack8(v);
}

// inp: int8 [32][32][32] stored as PHWC4 [8][32][32][4]
constexpr constant int INP_H = 32;
constexpr constant int INP_W = 32;
constexpr constant int INP_C = 32;
constexpr constant int INP_S = 8;  // slices of 4 channels
inline int4 inp_load(const device uint* data, int s, int y, int x) {
  return unpack_s8(data[(s * INP_H + y) * INP_W + x]);
}

// Window (pad_top/pad_left: SAME padding's odd pixel goes bottom/right).
constexpr constant int K_H = 1;
constexpr constant int K_W = 1;
constexpr constant int STRIDE_H = 1;
constexpr constant int STRIDE_W = 1;
constexpr constant int DIL_H = 1;
constexpr constant int DIL_W = 1;
constexpr constant int PAD_TOP = 0;
constexpr constant int PAD_LEFT = 0;
constexpr constant int INPUT_OFFSET = 128;    // -input zero point
constexpr constant int WEIGHTS_OFFSET = 0;  // -filter zero point (0 for int8)
constexpr constant int OUTPUT_ZERO_POINT = -128;
constexpr constant int ACT_MIN = -128;
constexpr constant int ACT_MAX = 127;
}  // namespace conv2d_1x1_s1_3_impl

// weights: filter [ceil(oc/4)][kh][kw][ceil(ic/4)][o4][i4], int8: one uint holds the 4 i4 of an o4.
// channel: per-channel int32 vectors, each [OUT_S][4]: bias, then multipliers, then shifts.
kernel void conv2d_1x1_s1_3(
    device uint* out_data [[buffer(0)]],
    const device uint* inp_data [[buffer(1)]],
    const device int4* channel [[buffer(2)]],
    const device uint* weights [[buffer(3)]],
    uint3 gid [[thread_position_in_grid]]) {
  using namespace conv2d_1x1_s1_3_impl;
  int x = int(gid.x);
  int y = int(gid.y);
  int s = int(gid.z);
  if (x >= OUT_W || y >= OUT_H || s >= OUT_S) return;

  int4 acc = int4(0);  // int32, wrapping like the reference accumulator
  for (int ky = 0; ky < K_H; ++ky) {
    int iy = y * STRIDE_H - PAD_TOP + ky * DIL_H;
    if (iy < 0 || iy >= INP_H) continue;  // out-of-bounds taps contribute nothing
    for (int kx = 0; kx < K_W; ++kx) {
      int ix = x * STRIDE_W - PAD_LEFT + kx * DIL_W;
      if (ix < 0 || ix >= INP_W) continue;
      int base = ((s * K_H + ky) * K_W + kx) * INP_S * 4;
      for (int si = 0; si < INP_S; ++si, base += 4) {
        int4 v = inp_load(inp_data, si, iy, ix) + INPUT_OFFSET;
        acc = wrapping_add(acc, int4(idot(unpack_s8(weights[base + 0]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 1]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 2]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 3]) + WEIGHTS_OFFSET, v)));
      }
    }
  }
  acc = wrapping_add(acc, channel[s]);  // bias
  int4 result = mbqm4(acc, channel[OUT_S + s], channel[2 * OUT_S + s]) + OUTPUT_ZERO_POINT;
  out_store(out_data, s, y, x, clamp(result, int4(ACT_MIN), int4(ACT_MAX)));
}

// mobilegen: DepthwiseConv2D (int8), output [16][16][32] int8, threadgroup 8x8x1
namespace depthwise_3x3_s2_2_impl {
// out: int8 [16][16][32] stored as PHWC4 [8][16][16][4]
constexpr constant int OUT_H = 16;
constexpr constant int OUT_W = 16;
constexpr constant int OUT_C = 32;
constexpr constant int OUT_S = 8;  // slices of 4 channels
inline void out_store(device uint* data, int s, int y, int x, int4 v) {
  data[(s * OUT_H + y) * OUT_W + x] = pack8(v);
}

// inp: int8 [32][32][32] stored as PHWC4 [8][32][32][4]
constexpr constant int INP_H = 32;
constexpr constant int INP_W = 32;
constexpr constant int INP_C = 32;
constexpr constant int INP_S = 8;  // slices of 4 channels
inline int4 inp_load(const device uint* data, int s, int y, int x) {
  return unpack_s8(data[(s * INP_H + y) * INP_W + x]);
}

constexpr constant int K_H = 3;
constexpr constant int K_W = 3;
constexpr constant int STRIDE_H = 2;
constexpr constant int STRIDE_W = 2;
constexpr constant int DIL_H = 1;
constexpr constant int DIL_W = 1;
constexpr constant int PAD_TOP = 0;
constexpr constant int PAD_LEFT = 0;
constexpr constant int DEPTH_MULTIPLIER = 1;  // output channel oc reads input channel oc / DEPTH_MULTIPLIER
constexpr constant int INPUT_OFFSET = 128;
constexpr constant int WEIGHTS_OFFSET = 0;
constexpr constant int OUTPUT_ZERO_POINT = -128;
constexpr constant int ACT_MIN = -128;
constexpr constant int ACT_MAX = 127;
}  // namespace depthwise_3x3_s2_2_impl

// weights: filter [ceil(oc/4)][kh][kw][4], int8: one uint per tap and output slice.
// channel: per-channel int32 vectors, each [OUT_S][4]: bias, then multipliers, then shifts.
kernel void depthwise_3x3_s2_2(
    device uint* out_data [[buffer(0)]],
    const device uint* inp_data [[buffer(1)]],
    const device int4* channel [[buffer(2)]],
    const device uint* weights [[buffer(3)]],
    uint3 gid [[thread_position_in_grid]]) {
  using namespace depthwise_3x3_s2_2_impl;
  int x = int(gid.x);
  int y = int(gid.y);
  int s = int(gid.z);
  if (x >= OUT_W || y >= OUT_H || s >= OUT_S) return;

  int4 acc = int4(0);
  for (int ky = 0; ky < K_H; ++ky) {
    int iy = y * STRIDE_H - PAD_TOP + ky * DIL_H;
    if (iy < 0 || iy >= INP_H) continue;  // out-of-bounds taps contribute nothing
    for (int kx = 0; kx < K_W; ++kx) {
      int ix = x * STRIDE_W - PAD_LEFT + kx * DIL_W;
      if (ix < 0 || ix >= INP_W) continue;
      int4 v = inp_load(inp_data, s, iy, ix);
      acc = wrapping_add(acc, (unpack_s8(weights[(s * K_H + ky) * K_W + kx]) + WEIGHTS_OFFSET) * (v + INPUT_OFFSET));
    }
  }
  acc = wrapping_add(acc, channel[s]);  // bias
  int4 result = mbqm4(acc, channel[OUT_S + s], channel[2 * OUT_S + s]) + OUTPUT_ZERO_POINT;
  out_store(out_data, s, y, x, clamp(result, int4(ACT_MIN), int4(ACT_MAX)));  // padding lanes are zeroed by the store
}

// mobilegen: Conv2D (int8), output [16][16][64] int8, threadgroup 8x8x1
namespace conv2d_1x1_s1_4_impl {
// out: int8 [16][16][64] stored as PHWC4 [16][16][16][4]
constexpr constant int OUT_H = 16;
constexpr constant int OUT_W = 16;
constexpr constant int OUT_C = 64;
constexpr constant int OUT_S = 16;  // slices of 4 channels
inline void out_store(device uint* data, int s, int y, int x, int4 v) {
  data[(s * OUT_H + y) * OUT_W + x] = pack8(v);
}

// inp: int8 [16][16][32] stored as PHWC4 [8][16][16][4]
constexpr constant int INP_H = 16;
constexpr constant int INP_W = 16;
constexpr constant int INP_C = 32;
constexpr constant int INP_S = 8;  // slices of 4 channels
inline int4 inp_load(const device uint* data, int s, int y, int x) {
  return unpack_s8(data[(s * INP_H + y) * INP_W + x]);
}

// Window (pad_top/pad_left: SAME padding's odd pixel goes bottom/right).
constexpr constant int K_H = 1;
constexpr constant int K_W = 1;
constexpr constant int STRIDE_H = 1;
constexpr constant int STRIDE_W = 1;
constexpr constant int DIL_H = 1;
constexpr constant int DIL_W = 1;
constexpr constant int PAD_TOP = 0;
constexpr constant int PAD_LEFT = 0;
constexpr constant int INPUT_OFFSET = 128;    // -input zero point
constexpr constant int WEIGHTS_OFFSET = 0;  // -filter zero point (0 for int8)
constexpr constant int OUTPUT_ZERO_POINT = -128;
constexpr constant int ACT_MIN = -128;
constexpr constant int ACT_MAX = 127;
}  // namespace conv2d_1x1_s1_4_impl

// weights: filter [ceil(oc/4)][kh][kw][ceil(ic/4)][o4][i4], int8: one uint holds the 4 i4 of an o4.
// channel: per-channel int32 vectors, each [OUT_S][4]: bias, then multipliers, then shifts.
kernel void conv2d_1x1_s1_4(
    device uint* out_data [[buffer(0)]],
    const device uint* inp_data [[buffer(1)]],
    const device int4* channel [[buffer(2)]],
    const device uint* weights [[buffer(3)]],
    uint3 gid [[thread_position_in_grid]]) {
  using namespace conv2d_1x1_s1_4_impl;
  int x = int(gid.x);
  int y = int(gid.y);
  int s = int(gid.z);
  if (x >= OUT_W || y >= OUT_H || s >= OUT_S) return;

  int4 acc = int4(0);  // int32, wrapping like the reference accumulator
  for (int ky = 0; ky < K_H; ++ky) {
    int iy = y * STRIDE_H - PAD_TOP + ky * DIL_H;
    if (iy < 0 || iy >= INP_H) continue;  // out-of-bounds taps contribute nothing
    for (int kx = 0; kx < K_W; ++kx) {
      int ix = x * STRIDE_W - PAD_LEFT + kx * DIL_W;
      if (ix < 0 || ix >= INP_W) continue;
      int base = ((s * K_H + ky) * K_W + kx) * INP_S * 4;
      for (int si = 0; si < INP_S; ++si, base += 4) {
        int4 v = inp_load(inp_data, si, iy, ix) + INPUT_OFFSET;
        acc = wrapping_add(acc, int4(idot(unpack_s8(weights[base + 0]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 1]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 2]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 3]) + WEIGHTS_OFFSET, v)));
      }
    }
  }
  acc = wrapping_add(acc, channel[s]);  // bias
  int4 result = mbqm4(acc, channel[OUT_S + s], channel[2 * OUT_S + s]) + OUTPUT_ZERO_POINT;
  out_store(out_data, s, y, x, clamp(result, int4(ACT_MIN), int4(ACT_MAX)));
}

// mobilegen: DepthwiseConv2D (int8), output [16][16][64] int8, threadgroup 8x8x1
namespace depthwise_3x3_s1_3_impl {
// out: int8 [16][16][64] stored as PHWC4 [16][16][16][4]
constexpr constant int OUT_H = 16;
constexpr constant int OUT_W = 16;
constexpr constant int OUT_C = 64;
constexpr constant int OUT_S = 16;  // slices of 4 channels
inline void out_store(device uint* data, int s, int y, int x, int4 v) {
  data[(s * OUT_H + y) * OUT_W + x] = pack8(v);
}

// inp: int8 [16][16][64] stored as PHWC4 [16][16][16][4]
constexpr constant int INP_H = 16;
constexpr constant int INP_W = 16;
constexpr constant int INP_C = 64;
constexpr constant int INP_S = 16;  // slices of 4 channels
inline int4 inp_load(const device uint* data, int s, int y, int x) {
  return unpack_s8(data[(s * INP_H + y) * INP_W + x]);
}

constexpr constant int K_H = 3;
constexpr constant int K_W = 3;
constexpr constant int STRIDE_H = 1;
constexpr constant int STRIDE_W = 1;
constexpr constant int DIL_H = 1;
constexpr constant int DIL_W = 1;
constexpr constant int PAD_TOP = 1;
constexpr constant int PAD_LEFT = 1;
constexpr constant int DEPTH_MULTIPLIER = 1;  // output channel oc reads input channel oc / DEPTH_MULTIPLIER
constexpr constant int INPUT_OFFSET = 128;
constexpr constant int WEIGHTS_OFFSET = 0;
constexpr constant int OUTPUT_ZERO_POINT = -128;
constexpr constant int ACT_MIN = -128;
constexpr constant int ACT_MAX = 127;
}  // namespace depthwise_3x3_s1_3_impl

// weights: filter [ceil(oc/4)][kh][kw][4], int8: one uint per tap and output slice.
// channel: per-channel int32 vectors, each [OUT_S][4]: bias, then multipliers, then shifts.
kernel void depthwise_3x3_s1_3(
    device uint* out_data [[buffer(0)]],
    const device uint* inp_data [[buffer(1)]],
    const device int4* channel [[buffer(2)]],
    const device uint* weights [[buffer(3)]],
    uint3 gid [[thread_position_in_grid]]) {
  using namespace depthwise_3x3_s1_3_impl;
  int x = int(gid.x);
  int y = int(gid.y);
  int s = int(gid.z);
  if (x >= OUT_W || y >= OUT_H || s >= OUT_S) return;

  int4 acc = int4(0);
  for (int ky = 0; ky < K_H; ++ky) {
    int iy = y * STRIDE_H - PAD_TOP + ky * DIL_H;
    if (iy < 0 || iy >= INP_H) continue;  // out-of-bounds taps contribute nothing
    for (int kx = 0; kx < K_W; ++kx) {
      int ix = x * STRIDE_W - PAD_LEFT + kx * DIL_W;
      if (ix < 0 || ix >= INP_W) continue;
      int4 v = inp_load(inp_data, s, iy, ix);
      acc = wrapping_add(acc, (unpack_s8(weights[(s * K_H + ky) * K_W + kx]) + WEIGHTS_OFFSET) * (v + INPUT_OFFSET));
    }
  }
  acc = wrapping_add(acc, channel[s]);  // bias
  int4 result = mbqm4(acc, channel[OUT_S + s], channel[2 * OUT_S + s]) + OUTPUT_ZERO_POINT;
  out_store(out_data, s, y, x, clamp(result, int4(ACT_MIN), int4(ACT_MAX)));  // padding lanes are zeroed by the store
}

// mobilegen: Conv2D (int8), output [16][16][64] int8, threadgroup 8x8x1
namespace conv2d_1x1_s1_5_impl {
// out: int8 [16][16][64] stored as PHWC4 [16][16][16][4]
constexpr constant int OUT_H = 16;
constexpr constant int OUT_W = 16;
constexpr constant int OUT_C = 64;
constexpr constant int OUT_S = 16;  // slices of 4 channels
inline void out_store(device uint* data, int s, int y, int x, int4 v) {
  data[(s * OUT_H + y) * OUT_W + x] = pack8(v);
}

// inp: int8 [16][16][64] stored as PHWC4 [16][16][16][4]
constexpr constant int INP_H = 16;
constexpr constant int INP_W = 16;
constexpr constant int INP_C = 64;
constexpr constant int INP_S = 16;  // slices of 4 channels
inline int4 inp_load(const device uint* data, int s, int y, int x) {
  return unpack_s8(data[(s * INP_H + y) * INP_W + x]);
}

// Window (pad_top/pad_left: SAME padding's odd pixel goes bottom/right).
constexpr constant int K_H = 1;
constexpr constant int K_W = 1;
constexpr constant int STRIDE_H = 1;
constexpr constant int STRIDE_W = 1;
constexpr constant int DIL_H = 1;
constexpr constant int DIL_W = 1;
constexpr constant int PAD_TOP = 0;
constexpr constant int PAD_LEFT = 0;
constexpr constant int INPUT_OFFSET = 128;    // -input zero point
constexpr constant int WEIGHTS_OFFSET = 0;  // -filter zero point (0 for int8)
constexpr constant int OUTPUT_ZERO_POINT = -128;
constexpr constant int ACT_MIN = -128;
constexpr constant int ACT_MAX = 127;
}  // namespace conv2d_1x1_s1_5_impl

// weights: filter [ceil(oc/4)][kh][kw][ceil(ic/4)][o4][i4], int8: one uint holds the 4 i4 of an o4.
// channel: per-channel int32 vectors, each [OUT_S][4]: bias, then multipliers, then shifts.
kernel void conv2d_1x1_s1_5(
    device uint* out_data [[buffer(0)]],
    const device uint* inp_data [[buffer(1)]],
    const device int4* channel [[buffer(2)]],
    const device uint* weights [[buffer(3)]],
    uint3 gid [[thread_position_in_grid]]) {
  using namespace conv2d_1x1_s1_5_impl;
  int x = int(gid.x);
  int y = int(gid.y);
  int s = int(gid.z);
  if (x >= OUT_W || y >= OUT_H || s >= OUT_S) return;

  int4 acc = int4(0);  // int32, wrapping like the reference accumulator
  for (int ky = 0; ky < K_H; ++ky) {
    int iy = y * STRIDE_H - PAD_TOP + ky * DIL_H;
    if (iy < 0 || iy >= INP_H) continue;  // out-of-bounds taps contribute nothing
    for (int kx = 0; kx < K_W; ++kx) {
      int ix = x * STRIDE_W - PAD_LEFT + kx * DIL_W;
      if (ix < 0 || ix >= INP_W) continue;
      int base = ((s * K_H + ky) * K_W + kx) * INP_S * 4;
      for (int si = 0; si < INP_S; ++si, base += 4) {
        int4 v = inp_load(inp_data, si, iy, ix) + INPUT_OFFSET;
        acc = wrapping_add(acc, int4(idot(unpack_s8(weights[base + 0]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 1]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 2]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 3]) + WEIGHTS_OFFSET, v)));
      }
    }
  }
  acc = wrapping_add(acc, channel[s]);  // bias
  int4 result = mbqm4(acc, channel[OUT_S + s], channel[2 * OUT_S + s]) + OUTPUT_ZERO_POINT;
  out_store(out_data, s, y, x, clamp(result, int4(ACT_MIN), int4(ACT_MAX)));
}

// mobilegen: DepthwiseConv2D (int8), output [8][8][64] int8, threadgroup 8x8x1
namespace depthwise_3x3_s2_3_impl {
// out: int8 [8][8][64] stored as PHWC4 [16][8][8][4]
constexpr constant int OUT_H = 8;
constexpr constant int OUT_W = 8;
constexpr constant int OUT_C = 64;
constexpr constant int OUT_S = 16;  // slices of 4 channels
inline void out_store(device uint* data, int s, int y, int x, int4 v) {
  data[(s * OUT_H + y) * OUT_W + x] = pack8(v);
}

// inp: int8 [16][16][64] stored as PHWC4 [16][16][16][4]
constexpr constant int INP_H = 16;
constexpr constant int INP_W = 16;
constexpr constant int INP_C = 64;
constexpr constant int INP_S = 16;  // slices of 4 channels
inline int4 inp_load(const device uint* data, int s, int y, int x) {
  return unpack_s8(data[(s * INP_H + y) * INP_W + x]);
}

constexpr constant int K_H = 3;
constexpr constant int K_W = 3;
constexpr constant int STRIDE_H = 2;
constexpr constant int STRIDE_W = 2;
constexpr constant int DIL_H = 1;
constexpr constant int DIL_W = 1;
constexpr constant int PAD_TOP = 0;
constexpr constant int PAD_LEFT = 0;
constexpr constant int DEPTH_MULTIPLIER = 1;  // output channel oc reads input channel oc / DEPTH_MULTIPLIER
constexpr constant int INPUT_OFFSET = 128;
constexpr constant int WEIGHTS_OFFSET = 0;
constexpr constant int OUTPUT_ZERO_POINT = -128;
constexpr constant int ACT_MIN = -128;
constexpr constant int ACT_MAX = 127;
}  // namespace depthwise_3x3_s2_3_impl

// weights: filter [ceil(oc/4)][kh][kw][4], int8: one uint per tap and output slice.
// channel: per-channel int32 vectors, each [OUT_S][4]: bias, then multipliers, then shifts.
kernel void depthwise_3x3_s2_3(
    device uint* out_data [[buffer(0)]],
    const device uint* inp_data [[buffer(1)]],
    const device int4* channel [[buffer(2)]],
    const device uint* weights [[buffer(3)]],
    uint3 gid [[thread_position_in_grid]]) {
  using namespace depthwise_3x3_s2_3_impl;
  int x = int(gid.x);
  int y = int(gid.y);
  int s = int(gid.z);
  if (x >= OUT_W || y >= OUT_H || s >= OUT_S) return;

  int4 acc = int4(0);
  for (int ky = 0; ky < K_H; ++ky) {
    int iy = y * STRIDE_H - PAD_TOP + ky * DIL_H;
    if (iy < 0 || iy >= INP_H) continue;  // out-of-bounds taps contribute nothing
    for (int kx = 0; kx < K_W; ++kx) {
      int ix = x * STRIDE_W - PAD_LEFT + kx * DIL_W;
      if (ix < 0 || ix >= INP_W) continue;
      int4 v = inp_load(inp_data, s, iy, ix);
      acc = wrapping_add(acc, (unpack_s8(weights[(s * K_H + ky) * K_W + kx]) + WEIGHTS_OFFSET) * (v + INPUT_OFFSET));
    }
  }
  acc = wrapping_add(acc, channel[s]);  // bias
  int4 result = mbqm4(acc, channel[OUT_S + s], channel[2 * OUT_S + s]) + OUTPUT_ZERO_POINT;
  out_store(out_data, s, y, x, clamp(result, int4(ACT_MIN), int4(ACT_MAX)));  // padding lanes are zeroed by the store
}

// mobilegen: Conv2D (int8), output [8][8][128] int8, threadgroup 8x8x1
namespace conv2d_1x1_s1_6_impl {
// out: int8 [8][8][128] stored as PHWC4 [32][8][8][4]
constexpr constant int OUT_H = 8;
constexpr constant int OUT_W = 8;
constexpr constant int OUT_C = 128;
constexpr constant int OUT_S = 32;  // slices of 4 channels
inline void out_store(device uint* data, int s, int y, int x, int4 v) {
  data[(s * OUT_H + y) * OUT_W + x] = pack8(v);
}

// inp: int8 [8][8][64] stored as PHWC4 [16][8][8][4]
constexpr constant int INP_H = 8;
constexpr constant int INP_W = 8;
constexpr constant int INP_C = 64;
constexpr constant int INP_S = 16;  // slices of 4 channels
inline int4 inp_load(const device uint* data, int s, int y, int x) {
  return unpack_s8(data[(s * INP_H + y) * INP_W + x]);
}

// Window (pad_top/pad_left: SAME padding's odd pixel goes bottom/right).
constexpr constant int K_H = 1;
constexpr constant int K_W = 1;
constexpr constant int STRIDE_H = 1;
constexpr constant int STRIDE_W = 1;
constexpr constant int DIL_H = 1;
constexpr constant int DIL_W = 1;
constexpr constant int PAD_TOP = 0;
constexpr constant int PAD_LEFT = 0;
constexpr constant int INPUT_OFFSET = 128;    // -input zero point
constexpr constant int WEIGHTS_OFFSET = 0;  // -filter zero point (0 for int8)
constexpr constant int OUTPUT_ZERO_POINT = -128;
constexpr constant int ACT_MIN = -128;
constexpr constant int ACT_MAX = 127;
}  // namespace conv2d_1x1_s1_6_impl

// weights: filter [ceil(oc/4)][kh][kw][ceil(ic/4)][o4][i4], int8: one uint holds the 4 i4 of an o4.
// channel: per-channel int32 vectors, each [OUT_S][4]: bias, then multipliers, then shifts.
kernel void conv2d_1x1_s1_6(
    device uint* out_data [[buffer(0)]],
    const device uint* inp_data [[buffer(1)]],
    const device int4* channel [[buffer(2)]],
    const device uint* weights [[buffer(3)]],
    uint3 gid [[thread_position_in_grid]]) {
  using namespace conv2d_1x1_s1_6_impl;
  int x = int(gid.x);
  int y = int(gid.y);
  int s = int(gid.z);
  if (x >= OUT_W || y >= OUT_H || s >= OUT_S) return;

  int4 acc = int4(0);  // int32, wrapping like the reference accumulator
  for (int ky = 0; ky < K_H; ++ky) {
    int iy = y * STRIDE_H - PAD_TOP + ky * DIL_H;
    if (iy < 0 || iy >= INP_H) continue;  // out-of-bounds taps contribute nothing
    for (int kx = 0; kx < K_W; ++kx) {
      int ix = x * STRIDE_W - PAD_LEFT + kx * DIL_W;
      if (ix < 0 || ix >= INP_W) continue;
      int base = ((s * K_H + ky) * K_W + kx) * INP_S * 4;
      for (int si = 0; si < INP_S; ++si, base += 4) {
        int4 v = inp_load(inp_data, si, iy, ix) + INPUT_OFFSET;
        acc = wrapping_add(acc, int4(idot(unpack_s8(weights[base + 0]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 1]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 2]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 3]) + WEIGHTS_OFFSET, v)));
      }
    }
  }
  acc = wrapping_add(acc, channel[s]);  // bias
  int4 result = mbqm4(acc, channel[OUT_S + s], channel[2 * OUT_S + s]) + OUTPUT_ZERO_POINT;
  out_store(out_data, s, y, x, clamp(result, int4(ACT_MIN), int4(ACT_MAX)));
}

// mobilegen: DepthwiseConv2D (int8), output [8][8][128] int8, threadgroup 8x8x1
namespace depthwise_3x3_s1_4_impl {
// out: int8 [8][8][128] stored as PHWC4 [32][8][8][4]
constexpr constant int OUT_H = 8;
constexpr constant int OUT_W = 8;
constexpr constant int OUT_C = 128;
constexpr constant int OUT_S = 32;  // slices of 4 channels
inline void out_store(device uint* data, int s, int y, int x, int4 v) {
  data[(s * OUT_H + y) * OUT_W + x] = pack8(v);
}

// inp: int8 [8][8][128] stored as PHWC4 [32][8][8][4]
constexpr constant int INP_H = 8;
constexpr constant int INP_W = 8;
constexpr constant int INP_C = 128;
constexpr constant int INP_S = 32;  // slices of 4 channels
inline int4 inp_load(const device uint* data, int s, int y, int x) {
  return unpack_s8(data[(s * INP_H + y) * INP_W + x]);
}

constexpr constant int K_H = 3;
constexpr constant int K_W = 3;
constexpr constant int STRIDE_H = 1;
constexpr constant int STRIDE_W = 1;
constexpr constant int DIL_H = 1;
constexpr constant int DIL_W = 1;
constexpr constant int PAD_TOP = 1;
constexpr constant int PAD_LEFT = 1;
constexpr constant int DEPTH_MULTIPLIER = 1;  // output channel oc reads input channel oc / DEPTH_MULTIPLIER
constexpr constant int INPUT_OFFSET = 128;
constexpr constant int WEIGHTS_OFFSET = 0;
constexpr constant int OUTPUT_ZERO_POINT = -128;
constexpr constant int ACT_MIN = -128;
constexpr constant int ACT_MAX = 127;
}  // namespace depthwise_3x3_s1_4_impl

// weights: filter [ceil(oc/4)][kh][kw][4], int8: one uint per tap and output slice.
// channel: per-channel int32 vectors, each [OUT_S][4]: bias, then multipliers, then shifts.
kernel void depthwise_3x3_s1_4(
    device uint* out_data [[buffer(0)]],
    const device uint* inp_data [[buffer(1)]],
    const device int4* channel [[buffer(2)]],
    const device uint* weights [[buffer(3)]],
    uint3 gid [[thread_position_in_grid]]) {
  using namespace depthwise_3x3_s1_4_impl;
  int x = int(gid.x);
  int y = int(gid.y);
  int s = int(gid.z);
  if (x >= OUT_W || y >= OUT_H || s >= OUT_S) return;

  int4 acc = int4(0);
  for (int ky = 0; ky < K_H; ++ky) {
    int iy = y * STRIDE_H - PAD_TOP + ky * DIL_H;
    if (iy < 0 || iy >= INP_H) continue;  // out-of-bounds taps contribute nothing
    for (int kx = 0; kx < K_W; ++kx) {
      int ix = x * STRIDE_W - PAD_LEFT + kx * DIL_W;
      if (ix < 0 || ix >= INP_W) continue;
      int4 v = inp_load(inp_data, s, iy, ix);
      acc = wrapping_add(acc, (unpack_s8(weights[(s * K_H + ky) * K_W + kx]) + WEIGHTS_OFFSET) * (v + INPUT_OFFSET));
    }
  }
  acc = wrapping_add(acc, channel[s]);  // bias
  int4 result = mbqm4(acc, channel[OUT_S + s], channel[2 * OUT_S + s]) + OUTPUT_ZERO_POINT;
  out_store(out_data, s, y, x, clamp(result, int4(ACT_MIN), int4(ACT_MAX)));  // padding lanes are zeroed by the store
}

// mobilegen: Conv2D (int8), output [8][8][128] int8, threadgroup 8x8x1
namespace conv2d_1x1_s1_7_impl {
// out: int8 [8][8][128] stored as PHWC4 [32][8][8][4]
constexpr constant int OUT_H = 8;
constexpr constant int OUT_W = 8;
constexpr constant int OUT_C = 128;
constexpr constant int OUT_S = 32;  // slices of 4 channels
inline void out_store(device uint* data, int s, int y, int x, int4 v) {
  data[(s * OUT_H + y) * OUT_W + x] = pack8(v);
}

// inp: int8 [8][8][128] stored as PHWC4 [32][8][8][4]
constexpr constant int INP_H = 8;
constexpr constant int INP_W = 8;
constexpr constant int INP_C = 128;
constexpr constant int INP_S = 32;  // slices of 4 channels
inline int4 inp_load(const device uint* data, int s, int y, int x) {
  return unpack_s8(data[(s * INP_H + y) * INP_W + x]);
}

// Window (pad_top/pad_left: SAME padding's odd pixel goes bottom/right).
constexpr constant int K_H = 1;
constexpr constant int K_W = 1;
constexpr constant int STRIDE_H = 1;
constexpr constant int STRIDE_W = 1;
constexpr constant int DIL_H = 1;
constexpr constant int DIL_W = 1;
constexpr constant int PAD_TOP = 0;
constexpr constant int PAD_LEFT = 0;
constexpr constant int INPUT_OFFSET = 128;    // -input zero point
constexpr constant int WEIGHTS_OFFSET = 0;  // -filter zero point (0 for int8)
constexpr constant int OUTPUT_ZERO_POINT = -128;
constexpr constant int ACT_MIN = -128;
constexpr constant int ACT_MAX = 127;
}  // namespace conv2d_1x1_s1_7_impl

// weights: filter [ceil(oc/4)][kh][kw][ceil(ic/4)][o4][i4], int8: one uint holds the 4 i4 of an o4.
// channel: per-channel int32 vectors, each [OUT_S][4]: bias, then multipliers, then shifts.
kernel void conv2d_1x1_s1_7(
    device uint* out_data [[buffer(0)]],
    const device uint* inp_data [[buffer(1)]],
    const device int4* channel [[buffer(2)]],
    const device uint* weights [[buffer(3)]],
    uint3 gid [[thread_position_in_grid]]) {
  using namespace conv2d_1x1_s1_7_impl;
  int x = int(gid.x);
  int y = int(gid.y);
  int s = int(gid.z);
  if (x >= OUT_W || y >= OUT_H || s >= OUT_S) return;

  int4 acc = int4(0);  // int32, wrapping like the reference accumulator
  for (int ky = 0; ky < K_H; ++ky) {
    int iy = y * STRIDE_H - PAD_TOP + ky * DIL_H;
    if (iy < 0 || iy >= INP_H) continue;  // out-of-bounds taps contribute nothing
    for (int kx = 0; kx < K_W; ++kx) {
      int ix = x * STRIDE_W - PAD_LEFT + kx * DIL_W;
      if (ix < 0 || ix >= INP_W) continue;
      int base = ((s * K_H + ky) * K_W + kx) * INP_S * 4;
      for (int si = 0; si < INP_S; ++si, base += 4) {
        int4 v = inp_load(inp_data, si, iy, ix) + INPUT_OFFSET;
        acc = wrapping_add(acc, int4(idot(unpack_s8(weights[base + 0]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 1]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 2]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 3]) + WEIGHTS_OFFSET, v)));
      }
    }
  }
  acc = wrapping_add(acc, channel[s]);  // bias
  int4 result = mbqm4(acc, channel[OUT_S + s], channel[2 * OUT_S + s]) + OUTPUT_ZERO_POINT;
  out_store(out_data, s, y, x, clamp(result, int4(ACT_MIN), int4(ACT_MAX)));
}

// mobilegen: DepthwiseConv2D (int8), output [4][4][128] int8, threadgroup 4x4x4
namespace depthwise_3x3_s2_4_impl {
// out: int8 [4][4][128] stored as PHWC4 [32][4][4][4]
constexpr constant int OUT_H = 4;
constexpr constant int OUT_W = 4;
constexpr constant int OUT_C = 128;
constexpr constant int OUT_S = 32;  // slices of 4 channels
inline void out_store(device uint* data, int s, int y, int x, int4 v) {
  data[(s * OUT_H + y) * OUT_W + x] = pack8(v);
}

// inp: int8 [8][8][128] stored as PHWC4 [32][8][8][4]
constexpr constant int INP_H = 8;
constexpr constant int INP_W = 8;
constexpr constant int INP_C = 128;
constexpr constant int INP_S = 32;  // slices of 4 channels
inline int4 inp_load(const device uint* data, int s, int y, int x) {
  return unpack_s8(data[(s * INP_H + y) * INP_W + x]);
}

constexpr constant int K_H = 3;
constexpr constant int K_W = 3;
constexpr constant int STRIDE_H = 2;
constexpr constant int STRIDE_W = 2;
constexpr constant int DIL_H = 1;
constexpr constant int DIL_W = 1;
constexpr constant int PAD_TOP = 0;
constexpr constant int PAD_LEFT = 0;
constexpr constant int DEPTH_MULTIPLIER = 1;  // output channel oc reads input channel oc / DEPTH_MULTIPLIER
constexpr constant int INPUT_OFFSET = 128;
constexpr constant int WEIGHTS_OFFSET = 0;
constexpr constant int OUTPUT_ZERO_POINT = -128;
constexpr constant int ACT_MIN = -128;
constexpr constant int ACT_MAX = 127;
}  // namespace depthwise_3x3_s2_4_impl

// weights: filter [ceil(oc/4)][kh][kw][4], int8: one uint per tap and output slice.
// channel: per-channel int32 vectors, each [OUT_S][4]: bias, then multipliers, then shifts.
kernel void depthwise_3x3_s2_4(
    device uint* out_data [[buffer(0)]],
    const device uint* inp_data [[buffer(1)]],
    const device int4* channel [[buffer(2)]],
    const device uint* weights [[buffer(3)]],
    uint3 gid [[thread_position_in_grid]]) {
  using namespace depthwise_3x3_s2_4_impl;
  int x = int(gid.x);
  int y = int(gid.y);
  int s = int(gid.z);
  if (x >= OUT_W || y >= OUT_H || s >= OUT_S) return;

  int4 acc = int4(0);
  for (int ky = 0; ky < K_H; ++ky) {
    int iy = y * STRIDE_H - PAD_TOP + ky * DIL_H;
    if (iy < 0 || iy >= INP_H) continue;  // out-of-bounds taps contribute nothing
    for (int kx = 0; kx < K_W; ++kx) {
      int ix = x * STRIDE_W - PAD_LEFT + kx * DIL_W;
      if (ix < 0 || ix >= INP_W) continue;
      int4 v = inp_load(inp_data, s, iy, ix);
      acc = wrapping_add(acc, (unpack_s8(weights[(s * K_H + ky) * K_W + kx]) + WEIGHTS_OFFSET) * (v + INPUT_OFFSET));
    }
  }
  acc = wrapping_add(acc, channel[s]);  // bias
  int4 result = mbqm4(acc, channel[OUT_S + s], channel[2 * OUT_S + s]) + OUTPUT_ZERO_POINT;
  out_store(out_data, s, y, x, clamp(result, int4(ACT_MIN), int4(ACT_MAX)));  // padding lanes are zeroed by the store
}

// mobilegen: Conv2D (int8), output [4][4][256] int8, threadgroup 4x4x4
namespace conv2d_1x1_s1_8_impl {
// out: int8 [4][4][256] stored as PHWC4 [64][4][4][4]
constexpr constant int OUT_H = 4;
constexpr constant int OUT_W = 4;
constexpr constant int OUT_C = 256;
constexpr constant int OUT_S = 64;  // slices of 4 channels
inline void out_store(device uint* data, int s, int y, int x, int4 v) {
  data[(s * OUT_H + y) * OUT_W + x] = pack8(v);
}

// inp: int8 [4][4][128] stored as PHWC4 [32][4][4][4]
constexpr constant int INP_H = 4;
constexpr constant int INP_W = 4;
constexpr constant int INP_C = 128;
constexpr constant int INP_S = 32;  // slices of 4 channels
inline int4 inp_load(const device uint* data, int s, int y, int x) {
  return unpack_s8(data[(s * INP_H + y) * INP_W + x]);
}

// Window (pad_top/pad_left: SAME padding's odd pixel goes bottom/right).
constexpr constant int K_H = 1;
constexpr constant int K_W = 1;
constexpr constant int STRIDE_H = 1;
constexpr constant int STRIDE_W = 1;
constexpr constant int DIL_H = 1;
constexpr constant int DIL_W = 1;
constexpr constant int PAD_TOP = 0;
constexpr constant int PAD_LEFT = 0;
constexpr constant int INPUT_OFFSET = 128;    // -input zero point
constexpr constant int WEIGHTS_OFFSET = 0;  // -filter zero point (0 for int8)
constexpr constant int OUTPUT_ZERO_POINT = -128;
constexpr constant int ACT_MIN = -128;
constexpr constant int ACT_MAX = 127;
}  // namespace conv2d_1x1_s1_8_impl

// weights: filter [ceil(oc/4)][kh][kw][ceil(ic/4)][o4][i4], int8: one uint holds the 4 i4 of an o4.
// channel: per-channel int32 vectors, each [OUT_S][4]: bias, then multipliers, then shifts.
kernel void conv2d_1x1_s1_8(
    device uint* out_data [[buffer(0)]],
    const device uint* inp_data [[buffer(1)]],
    const device int4* channel [[buffer(2)]],
    const device uint* weights [[buffer(3)]],
    uint3 gid [[thread_position_in_grid]]) {
  using namespace conv2d_1x1_s1_8_impl;
  int x = int(gid.x);
  int y = int(gid.y);
  int s = int(gid.z);
  if (x >= OUT_W || y >= OUT_H || s >= OUT_S) return;

  int4 acc = int4(0);  // int32, wrapping like the reference accumulator
  for (int ky = 0; ky < K_H; ++ky) {
    int iy = y * STRIDE_H - PAD_TOP + ky * DIL_H;
    if (iy < 0 || iy >= INP_H) continue;  // out-of-bounds taps contribute nothing
    for (int kx = 0; kx < K_W; ++kx) {
      int ix = x * STRIDE_W - PAD_LEFT + kx * DIL_W;
      if (ix < 0 || ix >= INP_W) continue;
      int base = ((s * K_H + ky) * K_W + kx) * INP_S * 4;
      for (int si = 0; si < INP_S; ++si, base += 4) {
        int4 v = inp_load(inp_data, si, iy, ix) + INPUT_OFFSET;
        acc = wrapping_add(acc, int4(idot(unpack_s8(weights[base + 0]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 1]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 2]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 3]) + WEIGHTS_OFFSET, v)));
      }
    }
  }
  acc = wrapping_add(acc, channel[s]);  // bias
  int4 result = mbqm4(acc, channel[OUT_S + s], channel[2 * OUT_S + s]) + OUTPUT_ZERO_POINT;
  out_store(out_data, s, y, x, clamp(result, int4(ACT_MIN), int4(ACT_MAX)));
}

// mobilegen: DepthwiseConv2D (int8), output [4][4][256] int8, threadgroup 4x4x4
namespace depthwise_3x3_s1_5_impl {
// out: int8 [4][4][256] stored as PHWC4 [64][4][4][4]
constexpr constant int OUT_H = 4;
constexpr constant int OUT_W = 4;
constexpr constant int OUT_C = 256;
constexpr constant int OUT_S = 64;  // slices of 4 channels
inline void out_store(device uint* data, int s, int y, int x, int4 v) {
  data[(s * OUT_H + y) * OUT_W + x] = pack8(v);
}

// inp: int8 [4][4][256] stored as PHWC4 [64][4][4][4]
constexpr constant int INP_H = 4;
constexpr constant int INP_W = 4;
constexpr constant int INP_C = 256;
constexpr constant int INP_S = 64;  // slices of 4 channels
inline int4 inp_load(const device uint* data, int s, int y, int x) {
  return unpack_s8(data[(s * INP_H + y) * INP_W + x]);
}

constexpr constant int K_H = 3;
constexpr constant int K_W = 3;
constexpr constant int STRIDE_H = 1;
constexpr constant int STRIDE_W = 1;
constexpr constant int DIL_H = 1;
constexpr constant int DIL_W = 1;
constexpr constant int PAD_TOP = 1;
constexpr constant int PAD_LEFT = 1;
constexpr constant int DEPTH_MULTIPLIER = 1;  // output channel oc reads input channel oc / DEPTH_MULTIPLIER
constexpr constant int INPUT_OFFSET = 128;
constexpr constant int WEIGHTS_OFFSET = 0;
constexpr constant int OUTPUT_ZERO_POINT = -128;
constexpr constant int ACT_MIN = -128;
constexpr constant int ACT_MAX = 127;
}  // namespace depthwise_3x3_s1_5_impl

// weights: filter [ceil(oc/4)][kh][kw][4], int8: one uint per tap and output slice.
// channel: per-channel int32 vectors, each [OUT_S][4]: bias, then multipliers, then shifts.
kernel void depthwise_3x3_s1_5(
    device uint* out_data [[buffer(0)]],
    const device uint* inp_data [[buffer(1)]],
    const device int4* channel [[buffer(2)]],
    const device uint* weights [[buffer(3)]],
    uint3 gid [[thread_position_in_grid]]) {
  using namespace depthwise_3x3_s1_5_impl;
  int x = int(gid.x);
  int y = int(gid.y);
  int s = int(gid.z);
  if (x >= OUT_W || y >= OUT_H || s >= OUT_S) return;

  int4 acc = int4(0);
  for (int ky = 0; ky < K_H; ++ky) {
    int iy = y * STRIDE_H - PAD_TOP + ky * DIL_H;
    if (iy < 0 || iy >= INP_H) continue;  // out-of-bounds taps contribute nothing
    for (int kx = 0; kx < K_W; ++kx) {
      int ix = x * STRIDE_W - PAD_LEFT + kx * DIL_W;
      if (ix < 0 || ix >= INP_W) continue;
      int4 v = inp_load(inp_data, s, iy, ix);
      acc = wrapping_add(acc, (unpack_s8(weights[(s * K_H + ky) * K_W + kx]) + WEIGHTS_OFFSET) * (v + INPUT_OFFSET));
    }
  }
  acc = wrapping_add(acc, channel[s]);  // bias
  int4 result = mbqm4(acc, channel[OUT_S + s], channel[2 * OUT_S + s]) + OUTPUT_ZERO_POINT;
  out_store(out_data, s, y, x, clamp(result, int4(ACT_MIN), int4(ACT_MAX)));  // padding lanes are zeroed by the store
}

// mobilegen: Conv2D (int8), output [4][4][256] int8, threadgroup 4x4x4
namespace conv2d_1x1_s1_9_impl {
// out: int8 [4][4][256] stored as PHWC4 [64][4][4][4]
constexpr constant int OUT_H = 4;
constexpr constant int OUT_W = 4;
constexpr constant int OUT_C = 256;
constexpr constant int OUT_S = 64;  // slices of 4 channels
inline void out_store(device uint* data, int s, int y, int x, int4 v) {
  data[(s * OUT_H + y) * OUT_W + x] = pack8(v);
}

// inp: int8 [4][4][256] stored as PHWC4 [64][4][4][4]
constexpr constant int INP_H = 4;
constexpr constant int INP_W = 4;
constexpr constant int INP_C = 256;
constexpr constant int INP_S = 64;  // slices of 4 channels
inline int4 inp_load(const device uint* data, int s, int y, int x) {
  return unpack_s8(data[(s * INP_H + y) * INP_W + x]);
}

// Window (pad_top/pad_left: SAME padding's odd pixel goes bottom/right).
constexpr constant int K_H = 1;
constexpr constant int K_W = 1;
constexpr constant int STRIDE_H = 1;
constexpr constant int STRIDE_W = 1;
constexpr constant int DIL_H = 1;
constexpr constant int DIL_W = 1;
constexpr constant int PAD_TOP = 0;
constexpr constant int PAD_LEFT = 0;
constexpr constant int INPUT_OFFSET = 128;    // -input zero point
constexpr constant int WEIGHTS_OFFSET = 0;  // -filter zero point (0 for int8)
constexpr constant int OUTPUT_ZERO_POINT = -128;
constexpr constant int ACT_MIN = -128;
constexpr constant int ACT_MAX = 127;
}  // namespace conv2d_1x1_s1_9_impl

// weights: filter [ceil(oc/4)][kh][kw][ceil(ic/4)][o4][i4], int8: one uint holds the 4 i4 of an o4.
// channel: per-channel int32 vectors, each [OUT_S][4]: bias, then multipliers, then shifts.
kernel void conv2d_1x1_s1_9(
    device uint* out_data [[buffer(0)]],
    const device uint* inp_data [[buffer(1)]],
    const device int4* channel [[buffer(2)]],
    const device uint* weights [[buffer(3)]],
    uint3 gid [[thread_position_in_grid]]) {
  using namespace conv2d_1x1_s1_9_impl;
  int x = int(gid.x);
  int y = int(gid.y);
  int s = int(gid.z);
  if (x >= OUT_W || y >= OUT_H || s >= OUT_S) return;

  int4 acc = int4(0);  // int32, wrapping like the reference accumulator
  for (int ky = 0; ky < K_H; ++ky) {
    int iy = y * STRIDE_H - PAD_TOP + ky * DIL_H;
    if (iy < 0 || iy >= INP_H) continue;  // out-of-bounds taps contribute nothing
    for (int kx = 0; kx < K_W; ++kx) {
      int ix = x * STRIDE_W - PAD_LEFT + kx * DIL_W;
      if (ix < 0 || ix >= INP_W) continue;
      int base = ((s * K_H + ky) * K_W + kx) * INP_S * 4;
      for (int si = 0; si < INP_S; ++si, base += 4) {
        int4 v = inp_load(inp_data, si, iy, ix) + INPUT_OFFSET;
        acc = wrapping_add(acc, int4(idot(unpack_s8(weights[base + 0]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 1]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 2]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 3]) + WEIGHTS_OFFSET, v)));
      }
    }
  }
  acc = wrapping_add(acc, channel[s]);  // bias
  int4 result = mbqm4(acc, channel[OUT_S + s], channel[2 * OUT_S + s]) + OUTPUT_ZERO_POINT;
  out_store(out_data, s, y, x, clamp(result, int4(ACT_MIN), int4(ACT_MAX)));
}

// mobilegen: Mean (int8), output [1][1][256] int8, threadgroup 1x1x64
namespace mean_impl {
// out: int8 [1][1][256] stored as PHWC4 [64][1][1][4]
constexpr constant int OUT_H = 1;
constexpr constant int OUT_W = 1;
constexpr constant int OUT_C = 256;
constexpr constant int OUT_S = 64;  // slices of 4 channels
inline void out_store(device uint* data, int s, int y, int x, int4 v) {
  data[(s * OUT_H + y) * OUT_W + x] = pack8(v);
}

// inp: int8 [4][4][256] stored as PHWC4 [64][4][4][4]
constexpr constant int INP_H = 4;
constexpr constant int INP_W = 4;
constexpr constant int INP_C = 256;
constexpr constant int INP_S = 64;  // slices of 4 channels
inline int4 inp_load(const device uint* data, int s, int y, int x) {
  return unpack_s8(data[(s * INP_H + y) * INP_W + x]);
}

// MEAN over h and w, per channel.
constexpr constant int COUNT = 16;
// Reference QuantizedMeanOrSum: MBQM(sum - zp_in * COUNT) with 1/COUNT folded into the multiplier.
constexpr constant int INPUT_ZERO_POINT = -128;
constexpr constant int OUTPUT_ZERO_POINT = -128;
constexpr constant int MULTIPLIER = 1602635504;
constexpr constant int SHIFT = -2;
constexpr constant int ACT_MIN = -128;
constexpr constant int ACT_MAX = 127;
}  // namespace mean_impl

kernel void mean(
    device uint* out_data [[buffer(0)]],
    const device uint* inp_data [[buffer(1)]],
    uint3 gid [[thread_position_in_grid]]) {
  using namespace mean_impl;
  int s = int(gid.z);
  if (int(gid.x) >= OUT_W || int(gid.y) >= OUT_H || s >= OUT_S) return;
  int4 sum = int4(0);  // int32, wrapping like the reference accumulator
  for (int y = 0; y < INP_H; ++y) {
    for (int x = 0; x < INP_W; ++x) {
      sum = wrapping_add(sum, inp_load(inp_data, s, y, x));
    }
  }
  sum = wrapping_add(sum, int4(-INPUT_ZERO_POINT * COUNT));
  out_store(out_data, s, 0, 0, clamp(mbqm4(sum, MULTIPLIER, SHIFT) + OUTPUT_ZERO_POINT, int4(ACT_MIN), int4(ACT_MAX)));
}

// mobilegen: Conv2D (int8), output [1][1][10] int8, threadgroup 1x1x4
namespace conv2d_1x1_s1_10_impl {
// out: int8 [1][1][10] stored as PHWC4 [3][1][1][4]
constexpr constant int OUT_H = 1;
constexpr constant int OUT_W = 1;
constexpr constant int OUT_C = 10;
constexpr constant int OUT_S = 3;  // slices of 4 channels
inline void out_store(device uint* data, int s, int y, int x, int4 v) {
  if (s == OUT_S - 1) v *= int4(1, 1, 0, 0);  // zero the padding lanes
  data[(s * OUT_H + y) * OUT_W + x] = pack8(v);
}

// inp: int8 [1][1][256] stored as PHWC4 [64][1][1][4]
constexpr constant int INP_H = 1;
constexpr constant int INP_W = 1;
constexpr constant int INP_C = 256;
constexpr constant int INP_S = 64;  // slices of 4 channels
inline int4 inp_load(const device uint* data, int s, int y, int x) {
  return unpack_s8(data[(s * INP_H + y) * INP_W + x]);
}

// Window (pad_top/pad_left: SAME padding's odd pixel goes bottom/right).
constexpr constant int K_H = 1;
constexpr constant int K_W = 1;
constexpr constant int STRIDE_H = 1;
constexpr constant int STRIDE_W = 1;
constexpr constant int DIL_H = 1;
constexpr constant int DIL_W = 1;
constexpr constant int PAD_TOP = 0;
constexpr constant int PAD_LEFT = 0;
constexpr constant int INPUT_OFFSET = 128;    // -input zero point
constexpr constant int WEIGHTS_OFFSET = 0;  // -filter zero point (0 for int8)
constexpr constant int OUTPUT_ZERO_POINT = 41;
constexpr constant int ACT_MIN = -128;
constexpr constant int ACT_MAX = 127;
}  // namespace conv2d_1x1_s1_10_impl

// weights: filter [ceil(oc/4)][kh][kw][ceil(ic/4)][o4][i4], int8: one uint holds the 4 i4 of an o4.
// channel: per-channel int32 vectors, each [OUT_S][4]: bias, then multipliers, then shifts.
kernel void conv2d_1x1_s1_10(
    device uint* out_data [[buffer(0)]],
    const device uint* inp_data [[buffer(1)]],
    const device int4* channel [[buffer(2)]],
    const device uint* weights [[buffer(3)]],
    uint3 gid [[thread_position_in_grid]]) {
  using namespace conv2d_1x1_s1_10_impl;
  int x = int(gid.x);
  int y = int(gid.y);
  int s = int(gid.z);
  if (x >= OUT_W || y >= OUT_H || s >= OUT_S) return;

  int4 acc = int4(0);  // int32, wrapping like the reference accumulator
  for (int ky = 0; ky < K_H; ++ky) {
    int iy = y * STRIDE_H - PAD_TOP + ky * DIL_H;
    if (iy < 0 || iy >= INP_H) continue;  // out-of-bounds taps contribute nothing
    for (int kx = 0; kx < K_W; ++kx) {
      int ix = x * STRIDE_W - PAD_LEFT + kx * DIL_W;
      if (ix < 0 || ix >= INP_W) continue;
      int base = ((s * K_H + ky) * K_W + kx) * INP_S * 4;
      for (int si = 0; si < INP_S; ++si, base += 4) {
        int4 v = inp_load(inp_data, si, iy, ix) + INPUT_OFFSET;
        acc = wrapping_add(acc, int4(idot(unpack_s8(weights[base + 0]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 1]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 2]) + WEIGHTS_OFFSET, v),
                                     idot(unpack_s8(weights[base + 3]) + WEIGHTS_OFFSET, v)));
      }
    }
  }
  acc = wrapping_add(acc, channel[s]);  // bias
  int4 result = mbqm4(acc, channel[OUT_S + s], channel[2 * OUT_S + s]) + OUTPUT_ZERO_POINT;
  out_store(out_data, s, y, x, clamp(result, int4(ACT_MIN), int4(ACT_MAX)));
}

// mobilegen: Softmax (int8), output [1][1][10] int8, threadgroup 64x1x1
namespace softmax_impl {
// out: int8 [1][1][10] stored as PHWC4 [3][1][1][4]
constexpr constant int OUT_H = 1;
constexpr constant int OUT_W = 1;
constexpr constant int OUT_C = 10;
constexpr constant int OUT_S = 3;  // slices of 4 channels
inline void out_store(device uint* data, int s, int y, int x, int4 v) {
  if (s == OUT_S - 1) v *= int4(1, 1, 0, 0);  // zero the padding lanes
  data[(s * OUT_H + y) * OUT_W + x] = pack8(v);
}

// inp: int8 [1][1][10] stored as PHWC4 [3][1][1][4]
constexpr constant int INP_H = 1;
constexpr constant int INP_W = 1;
constexpr constant int INP_C = 10;
constexpr constant int INP_S = 3;  // slices of 4 channels
inline int4 inp_load(const device uint* data, int s, int y, int x) {
  return unpack_s8(data[(s * INP_H + y) * INP_W + x]);
}

// SOFTMAX over the channels of one (y, x) row per threadgroup: THREADS invocations stride over the
// row's slices and reduce through threadgroup memory in a tree of strides THREADS/2, ..., 1 (the
// same pairs and order as the GLSL kernel's unrolled tree).
constexpr constant int THREADS = 64;
// Reference integer softmax (gemmlowp fixed point); output scale 1/256, zero point OUTPUT_MIN.
constexpr constant int INPUT_MULTIPLIER = 1225648128;
constexpr constant int INPUT_LEFT_SHIFT = 21;
constexpr constant int DIFF_MIN = -992;  // input - max below this gives exp = 0 and OUTPUT_MIN
constexpr constant int OUTPUT_MIN = -128;
constexpr constant int OUTPUT_MAX = 127;
constexpr constant int OUTPUT_BITS = 8;

// exp((x - max) * beta * input_scale) in Q0.31 for an in-range difference.
inline int exp_of_diff(int diff) {
  return exp_on_negative_values(mbqm(diff, INPUT_MULTIPLIER, INPUT_LEFT_SHIFT));
}
}  // namespace softmax_impl

kernel void softmax(
    device uint* out_data [[buffer(0)]],
    const device uint* inp_data [[buffer(1)]],
    uint3 gid [[thread_position_in_grid]],
    uint3 lid [[thread_position_in_threadgroup]],
    uint3 tgid [[threadgroup_position_in_grid]]) {
  using namespace softmax_impl;
  threadgroup int reduction[THREADS];
  int row = int(tgid.x);
  if (row >= INP_H * INP_W) return;  // a whole threadgroup past the rows: no barrier is left waiting
  int y = row / INP_W;
  int x = row % INP_W;
  int t = int(lid.x);

  // 1. The row maximum.
  int partial = I32_MIN;
  for (int s = t; s < INP_S; s += THREADS) {
    int4 v = inp_load(inp_data, s, y, x);
    for (int i = 0; i < 4 && 4 * s + i < INP_C; ++i) partial = max(partial, v[i]);
  }
  reduction[t] = partial;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  for (int stride = THREADS / 2; stride > 0; stride /= 2) {
    if (t < stride) reduction[t] = max(reduction[t], reduction[t + stride]);
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  int row_max = reduction[0];
  threadgroup_barrier(mem_flags::mem_threadgroup);

  // 2. The sum of exps.
  int sum = 0;  // Q12.19, wrapping int32 like the reference
  for (int s = t; s < INP_S; s += THREADS) {
    int4 v = inp_load(inp_data, s, y, x);
    for (int i = 0; i < 4 && 4 * s + i < INP_C; ++i) {
      int diff = v[i] - row_max;
      if (diff >= DIFF_MIN) sum = wrapping_add(sum, rdbpot(exp_of_diff(diff), ACCUMULATION_INTEGER_BITS));  // Rescale<12>
    }
  }
  reduction[t] = sum;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  for (int stride = THREADS / 2; stride > 0; stride /= 2) {
    if (t < stride) reduction[t] = wrapping_add(reduction[t], reduction[t + stride]);
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  int total = reduction[0];

  // 3. The outputs.
  int num_bits_over_unit;
  int shifted_scale = get_reciprocal(total, num_bits_over_unit);
  // The reference aborts outside [0, 31] (a row summing to >= 512 exps); clamp the shift instead.
  int exponent = clamp(num_bits_over_unit + 31 - OUTPUT_BITS, 0, 31);
  for (int s = t; s < OUT_S; s += THREADS) {
    int4 v = inp_load(inp_data, s, y, x);
    int4 result = int4(0);
    for (int i = 0; i < 4 && 4 * s + i < INP_C; ++i) {
      int diff = v[i] - row_max;
      result[i] = OUTPUT_MIN;
      if (diff >= DIFF_MIN) {
        int unsat = rdbpot(srdhm(shifted_scale, exp_of_diff(diff)), exponent);
        result[i] = clamp(unsat + OUTPUT_MIN, OUTPUT_MIN, OUTPUT_MAX);
      }
    }
    out_store(out_data, s, y, x, result);
  }
}

// mobilegen: Dequantize (int8), output [1][1][10] float32, threadgroup 1x1x4
namespace dequantize_impl {
// out: float32 [1][1][10] stored as PHWC4 [3][1][1][4]
constexpr constant int OUT_H = 1;
constexpr constant int OUT_W = 1;
constexpr constant int OUT_C = 10;
constexpr constant int OUT_S = 3;  // slices of 4 channels
inline void out_store(device float4* data, int s, int y, int x, float4 v) {
  if (s == OUT_S - 1) v *= float4(1.0f, 1.0f, 0.0f, 0.0f);  // zero the padding lanes
  data[(s * OUT_H + y) * OUT_W + x] = v;
}

// inp: int8 [1][1][10] stored as PHWC4 [3][1][1][4]
constexpr constant int INP_H = 1;
constexpr constant int INP_W = 1;
constexpr constant int INP_C = 10;
constexpr constant int INP_S = 3;  // slices of 4 channels
inline int4 inp_load(const device uint* data, int s, int y, int x) {
  return unpack_s8(data[(s * INP_H + y) * INP_W + x]);
}

// DEQUANTIZE 8-bit -> float32: float(double(SCALE) * (q - ZERO_POINT)); the product of a float32
// and an integer below 2^9 is exact in double, so one float32 multiply rounds identically.
constexpr constant float SCALE = 0.00390625f;
constexpr constant int ZERO_POINT = -128;
}  // namespace dequantize_impl

kernel void dequantize(
    device float4* out_data [[buffer(0)]],
    const device uint* inp_data [[buffer(1)]],
    uint3 gid [[thread_position_in_grid]]) {
  using namespace dequantize_impl;
  int x = int(gid.x);
  int y = int(gid.y);
  int s = int(gid.z);
  if (x >= OUT_W || y >= OUT_H || s >= OUT_S) return;

  out_store(out_data, s, y, x, SCALE * float4(inp_load(inp_data, s, y, x) - ZERO_POINT));
}
