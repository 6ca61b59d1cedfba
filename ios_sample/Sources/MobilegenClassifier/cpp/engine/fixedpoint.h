// mobilegen engine: the integer primitives of TFLite's reference kernels (internal).
//
// Bit-exact ports of mobilegen/numerics/fixedpoint.py, which mirrors gemmlowp's fixedpoint.h and
// TFLite's MultiplyByQuantizedMultiplier in the double-rounding build the LiteRT wheels ship.
// Signed overflow that the C++ reference relies on wrapping is done in uint32 here, so nothing
// below is undefined behaviour.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

namespace mobilegen {
namespace fixedpoint {

constexpr int32_t kInt32Min = std::numeric_limits<int32_t>::min();
constexpr int32_t kInt32Max = std::numeric_limits<int32_t>::max();

// Two's-complement wrap of a 64-bit value into int32 (what int32 overflow does on every target).
inline int32_t wrap32(int64_t x) { return static_cast<int32_t>(static_cast<uint32_t>(x)); }

inline int32_t add_wrap(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) + static_cast<uint32_t>(b));
}
inline int32_t sub_wrap(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) - static_cast<uint32_t>(b));
}
inline int32_t shl_wrap(int32_t x, int shift) {
  return static_cast<int32_t>(static_cast<uint32_t>(x) << shift);
}

// gemmlowp SaturatingRoundingDoublingHighMul: round(a * b / 2^31), halves toward +infinity; the
// single overflowing case MIN * MIN saturates. One arithmetic shift of the nudged product equals
// gemmlowp's sign-dependent nudge plus truncating division.
inline int32_t srdhm(int32_t a, int32_t b) {
  if (a == kInt32Min && b == kInt32Min) return kInt32Max;
  const int64_t ab = static_cast<int64_t>(a) * static_cast<int64_t>(b);
  return static_cast<int32_t>((ab + (int64_t{1} << 30)) >> 31);
}

// gemmlowp RoundingDivideByPOT: x / 2^exponent (exponent in [0, 31]), halves away from zero.
inline int32_t rdbpot(int32_t x, int exponent) {
  const int32_t mask = static_cast<int32_t>((uint32_t{1} << exponent) - 1u);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

// TFLite MultiplyByQuantizedMultiplier (double rounding): shift > 0 is a left shift done in int32.
inline int32_t mbqm(int32_t x, int32_t multiplier, int32_t shift) {
  const int left = shift > 0 ? shift : 0;
  const int right = shift > 0 ? 0 : -shift;
  return rdbpot(srdhm(shl_wrap(x, left), multiplier), right);
}

// gemmlowp SaturatingRoundingMultiplyByPOT<exponent> on int32.
inline int32_t saturating_rounding_mul_by_pot(int32_t x, int exponent) {
  if (exponent == 0) return x;
  if (exponent < 0) return rdbpot(x, -exponent);
  const int32_t threshold = static_cast<int32_t>((uint32_t{1} << (31 - exponent)) - 1u);
  if (x > threshold) return kInt32Max;
  if (x < -threshold) return kInt32Min;
  return shl_wrap(x, exponent);
}

// gemmlowp RoundingHalfSum: (a + b) / 2 rounded away from zero (C truncation of the nudged sum).
inline int32_t rounding_half_sum(int32_t a, int32_t b) {
  int64_t s = static_cast<int64_t>(a) + b;
  s += s >= 0 ? 1 : -1;
  return static_cast<int32_t>(s / 2);
}

// Round half away from zero into int64, for finite values inside the int64 range.
inline int64_t round_away(double x) { return static_cast<int64_t>(std::round(x)); }

// --- gemmlowp transcendental helpers on raw int32 fixed-point values -----------------------------

// exp(a) for a in [-1/4, 0), Q0.31 in and out: Taylor series around -1/8.
inline int32_t exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a) {
  constexpr int32_t kExpMinusOneEighth = 1895147668;  // exp(-1/8) in Q0.31
  constexpr int32_t kOneThird = 715827883;            // 1/3 in Q0.31
  constexpr int32_t kOneEighth = 1 << 28;
  const int32_t x = add_wrap(a, kOneEighth);
  const int32_t x2 = srdhm(x, x);
  const int32_t x3 = srdhm(x2, x);
  const int32_t x4 = srdhm(x2, x2);
  const int32_t x4_over_4 = rdbpot(x4, 2);
  const int32_t inner = add_wrap(srdhm(add_wrap(x4_over_4, x3), kOneThird), x2);
  const int32_t poly = rdbpot(inner, 1);
  return add_wrap(kExpMinusOneEighth, srdhm(kExpMinusOneEighth, add_wrap(x, poly)));
}

// gemmlowp exp_on_negative_values for FixedPoint<int32, integer_bits> a <= 0; Q0.31 result.
inline int32_t exp_on_negative_values(int32_t a, int integer_bits) {
  // exp(-2^k) in Q0.31 for the barrel shifter, k = -2 .. 4.
  struct Barrel {
    int exponent;
    int32_t multiplier;
  };
  static constexpr Barrel kBarrel[] = {{-2, 1672461947}, {-1, 1302514674}, {0, 790015084},
                                       {1, 290630308},   {2, 39332535},    {3, 720401},
                                       {4, 242}};
  const int fractional_bits = 31 - integer_bits;
  const int32_t one_quarter = int32_t{1} << (fractional_bits - 2);
  const int32_t mask = one_quarter - 1;
  const int32_t a_mod_quarter_minus_one_quarter = sub_wrap(a & mask, one_quarter);
  int32_t result = exp_on_interval_between_negative_one_quarter_and_0_excl(
      saturating_rounding_mul_by_pot(a_mod_quarter_minus_one_quarter, integer_bits));
  const int32_t remainder = sub_wrap(a_mod_quarter_minus_one_quarter, a);
  for (const Barrel& b : kBarrel) {
    if (integer_bits > b.exponent) {
      const int bit_index = fractional_bits + b.exponent;
      if (bit_index >= 0 && bit_index < 32 &&
          (static_cast<uint32_t>(remainder) & (uint32_t{1} << bit_index)) != 0) {
        result = srdhm(result, b.multiplier);
      }
    }
  }
  if (integer_bits > 5) {
    const int32_t clamp = -(int32_t{1} << (36 - integer_bits));  // inputs below -32 give 0
    if (a < clamp) result = 0;
  }
  return a == 0 ? kInt32Max : result;
}

// gemmlowp one_over_one_plus_x_for_x_in_0_1: 1 / (1 + a) for Q0.31 a in [0, 1); Q0.31 result.
inline int32_t one_over_one_plus_x_for_x_in_0_1(int32_t a) {
  constexpr int32_t k48Over17 = 1515870810;       // Q2.29
  constexpr int32_t kNeg32Over17 = -1010580540;   // Q2.29
  constexpr int32_t kOne = int32_t{1} << 29;      // Q2.29
  constexpr int kNewtonRaphsonIterations = 3;
  const int32_t half_denominator = rounding_half_sum(a, kInt32Max);
  int32_t x = add_wrap(k48Over17, srdhm(half_denominator, kNeg32Over17));
  for (int i = 0; i < kNewtonRaphsonIterations; ++i) {
    const int32_t half_denominator_times_x = srdhm(half_denominator, x);
    const int32_t one_minus = sub_wrap(kOne, half_denominator_times_x);
    x = add_wrap(x, saturating_rounding_mul_by_pot(srdhm(x, one_minus), 2));
  }
  return saturating_rounding_mul_by_pot(x, 1);
}

inline int count_leading_zeros_u32(uint32_t x) {
  int n = 0;
  for (uint32_t bit = uint32_t{1} << 31; bit != 0 && (x & bit) == 0; bit >>= 1) ++n;
  return n;
}

// TFLite GetReciprocal: 1 / x = result * 2^-num_bits_over_unit, result in Q0.31.
inline int32_t get_reciprocal(int32_t x, int x_integer_digits, int* num_bits_over_unit) {
  const int headroom_plus_one = count_leading_zeros_u32(static_cast<uint32_t>(x));
  *num_bits_over_unit = x_integer_digits - headroom_plus_one;
  const uint32_t shifted = headroom_plus_one >= 32 ? 0u : static_cast<uint32_t>(x) << headroom_plus_one;
  const int32_t shifted_sum_minus_one = static_cast<int32_t>(shifted - (uint32_t{1} << 31));
  return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);
}

}  // namespace fixedpoint
}  // namespace mobilegen
