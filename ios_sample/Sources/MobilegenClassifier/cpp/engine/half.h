// mobilegen engine: IEEE 754 binary16 ("half") <-> binary32 conversions for Precision::Fp16.
//
// float_to_half rounds to nearest, ties to even, keeps binary16 subnormals, turns magnitudes from
// 65520 up into infinity and NaN into a quiet NaN: the rounding of numpy's float16 cast, which the
// simulator uses, and of packHalf2x16 on the drivers mobilegen is tested on. half_to_float is
// exact. Bit manipulation only, so the result does not depend on the compiler, the FPU's
// rounding mode or a flush-to-zero setting.
#pragma once

#include <cstdint>
#include <cstring>

namespace mobilegen {

inline uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  const uint32_t sign = (x >> 16) & 0x8000u;
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) return static_cast<uint16_t>(sign | (x > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (x >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520: infinity
  if (x >= 0x38800000u) {  // a normal half: rebias the exponent, round away 13 mantissa bits
    uint32_t h = (x - 0x38000000u) >> 13;
    const uint32_t rest = x & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is right
    return static_cast<uint16_t>(sign | h);
  }
  if (x <= 0x33000000u) return static_cast<uint16_t>(sign);  // <= 2^-25: rounds to (signed) zero
  // A subnormal half: the value in units of 2^-24, from the 24-bit significand.
  const uint32_t significand = (x & 0x7fffffu) | 0x800000u;
  const int shift = 126 - static_cast<int>(x >> 23);  // 14 .. 24
  uint32_t h = significand >> shift;
  const uint32_t rest = significand & ((1u << shift) - 1u), half_unit = 1u << (shift - 1);
  if (rest > half_unit || (rest == half_unit && (h & 1u))) ++h;  // 0x400 is the smallest normal
  return static_cast<uint16_t>(sign | h);
}

inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  uint32_t x;
  if (exponent == 0x1fu) {
    x = sign | 0x7f800000u | (mantissa << 13);  // infinity, NaN
  } else if (exponent != 0) {
    x = sign | ((exponent + 112u) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    x = sign;
  } else {  // subnormal: mantissa * 2^-24, normalized for float32
    int e = 113;  // float32 biased exponent of 2^-14
    uint32_t m = mantissa;
    while ((m & 0x400u) == 0) {
      m <<= 1;
      --e;
    }
    x = sign | (static_cast<uint32_t>(e) << 23) | ((m & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &x, sizeof f);
  return f;
}

// The float16 value nearest to `f` (ties to even), as a float.
inline float round_to_half(float f) { return half_to_float(float_to_half(f)); }

}  // namespace mobilegen
