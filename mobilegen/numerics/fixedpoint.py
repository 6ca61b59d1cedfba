"""Fixed-point primitives of TFLite's integer kernels, vectorized over numpy arrays.

Mirrors, bit for bit, the double-rounding build that the ai-edge-litert / TF wheels ship
(TFLITE_SINGLE_ROUNDING off):

- `quantize_multiplier`        tflite/kernels/internal/quantization_util.cc  QuantizeMultiplier
- `srdhm`, `rdbpot`            gemmlowp fixedpoint/fixedpoint.h  SaturatingRoundingDoublingHighMul,
                               RoundingDivideByPOT (int32 specializations)
- `mbqm`                       tflite/kernels/internal/common.cc  MultiplyByQuantizedMultiplier(int32)
- `saturating_rounding_mul_by_pot`, `rounding_half_sum`, `exp_on_negative_values`,
  `one_over_one_plus_x_for_x_in_0_1`   gemmlowp fixedpoint.h (scalar int32 paths)
- `get_reciprocal`             tflite/kernels/internal/common.h  GetReciprocal

Conventions: every integer result is int64 (numpy), holding a value that the C++ holds in an
int32; inputs may be Python ints/floats or arrays of any integer dtype and broadcast normally.
Where the C++ would overflow an int32 (signed overflow, which wraps on every compiler/CPU the
wheels are built for) the result is wrapped explicitly with `wrap_int32`.
"""

from __future__ import annotations

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
UINT32_MASK = (1 << 32) - 1

# QuantizeMultiplier represents a real multiplier as M * 2^(e - 31) with M in [2^30, 2^31).
_Q31_ONE = 1 << 31
# A right shift beyond 31 would drop every bit; QuantizeMultiplier flushes such multipliers to 0.
_MIN_SHIFT = -31

# Rounding nudge of SaturatingRoundingDoublingHighMul: one half in Q31 after the doubling.
_SRDHM_NUDGE = 1 << 30


def _i64(x) -> np.ndarray:
    """As an int64 array (no copy when already int64)."""
    return np.asarray(x, dtype=np.int64)


def wrap_int32(x):
    """Two's-complement wrap of an int64 value into the int32 range (what int32 overflow does)."""
    x = _i64(x)
    return ((x - INT32_MIN) & UINT32_MASK) + INT32_MIN


def round_half_away(x):
    """C `round` / `roundf` / TfLiteRound: nearest integer, halves away from zero, as int64.

    Works in the input's own float precision (pass float32 to emulate `roundf`); exact for every
    finite input, including 0.49999999999999994 where floor(x + 0.5) would be wrong.
    Raises ValueError on NaN or infinity (the C++ cast to an integer would be undefined).
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("round_half_away: non-finite input")
    whole = np.trunc(x)
    frac = x - whole  # exact: both operands share the exponent range of x
    step = np.where(np.abs(frac) >= 0.5, np.sign(x), 0.0).astype(x.dtype)
    return (whole + step).astype(np.int64)


def quantize_multiplier(real):
    """QuantizeMultiplier(double) -> (M, e) with real ~= M * 2^(e - 31).

    `real` is a float (used as a C double) or an array of them, e.g. per-channel multipliers;
    results have the same shape (Python ints for a scalar input, int64 arrays otherwise).
      q, e = frexp(real)          q in [0.5, 1)
      M = round_half_away(q * 2^31); if M == 2^31: M = 2^30, e += 1
      if e < -31: M, e = 0, 0      (flush to zero instead of shifting everything out)
      real == 0 -> (0, 0)
    Raises ValueError for negative or non-finite multipliers: no quantized kernel here uses them,
    and QuantizeMultiplierGreaterThanOne/SmallerThanOneExp would abort on them.
    """
    r = np.asarray(real, dtype=np.float64)
    if not np.all(np.isfinite(r)):
        raise ValueError(f"quantize_multiplier: non-finite multiplier {real!r}")
    if np.any(r < 0):
        raise ValueError(f"quantize_multiplier: negative multiplier {real!r}")
    q, e = np.frexp(r)  # frexp(0) = (0, 0): M = 0, e = 0 as the C++ special case gives
    m = round_half_away(q * float(_Q31_ONE))  # exact scaling by a power of two
    e = e.astype(np.int64)
    corner = m == _Q31_ONE  # q rounded up to 1.0
    m = np.where(corner, m // 2, m)
    e = np.where(corner, e + 1, e)
    tiny = e < _MIN_SHIFT
    m = np.where(tiny, 0, m)
    e = np.where(tiny, 0, e)
    if r.ndim == 0:
        return int(m), int(e)
    return m.astype(np.int64), e.astype(np.int64)


def srdhm(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul(int32 a, int32 b) (ARM VQRDMULH).

    round(a * b / 2^31) with halves rounded toward +infinity; the one overflowing case
    a == b == INT32_MIN saturates to INT32_MAX. The C++ adds a sign-dependent nudge and truncates
    the division toward zero; for the negative branch that equals floor((ab + 2^30) / 2^31), so a
    single arithmetic shift reproduces both branches.
    """
    a = _i64(a)
    b = _i64(b)
    ab = a * b  # |a|, |b| <= 2^31, so |ab| <= 2^62 fits int64
    result = (ab + _SRDHM_NUDGE) >> 31
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    return np.where(overflow, INT32_MAX, result)


def rdbpot(x, exponent):
    """gemmlowp RoundingDivideByPOT(int32 x, exponent in [0, 31]): x / 2^exponent rounded to
    nearest, halves away from zero. `exponent` may be an array broadcasting against x."""
    x = _i64(x)
    exponent = _i64(exponent)
    if np.any(exponent < 0) or np.any(exponent > 31):
        raise ValueError("rdbpot: exponent must be in [0, 31]")
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask  # low bits, identical in int32 and int64 two's complement
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def mbqm(x, multiplier, shift):
    """MultiplyByQuantizedMultiplier(int32 x, int32 M, int shift), double-rounding build:
        RDBPOT(SRDHM(x * 2^max(shift, 0), M), max(-shift, 0))
    The left shift happens in int32 (wrapping if it overflows, as the C++ does). M and shift
    broadcast against x, so per-channel (C,) arrays apply along the last axis of an [..., C] x.
    For shift >= 0 this is also MultiplyByQuantizedMultiplierGreaterThanOne, and for shift <= 0
    MultiplyByQuantizedMultiplierSmallerThanOneExp.
    """
    x = _i64(x)
    shift = _i64(shift)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rdbpot(srdhm(wrap_int32(x << left), multiplier), right)


def saturating_rounding_mul_by_pot(x, exponent: int):
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent> on int32 (the engine of Rescale<>):
    a saturating left shift for exponent > 0, RDBPOT for exponent < 0."""
    x = _i64(x)
    if exponent == 0:
        return x
    if exponent < 0:
        return rdbpot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    shifted = wrap_int32(x << exponent)
    shifted = np.where(x > threshold, INT32_MAX, shifted)
    return np.where(x < -threshold, INT32_MIN, shifted)


def rounding_half_sum(a, b):
    """gemmlowp RoundingHalfSum(int32, int32): (a + b + sign) / 2 with C truncation, where
    sign = +1 for a + b >= 0 and -1 otherwise (i.e. the half sum rounded away from zero)."""
    s = _i64(a) + _i64(b)
    s = s + np.where(s >= 0, 1, -1)
    # C division truncates toward zero; numpy's // floors, so divide the magnitude.
    return np.sign(s) * (np.abs(s) // 2)


# --- gemmlowp fixed-point transcendental helpers (raw int32 values in int64 arrays) ---
# FixedPoint<int32, I> stores value * 2^(31 - I). Products of FixedPoints are SRDHM of the raws
# (integer bits add up); + and - are plain, non-saturating int32 arithmetic (wrapped here).

def _fp_add(a, b):
    return wrap_int32(_i64(a) + _i64(b))


def _fp_sub(a, b):
    return wrap_int32(_i64(a) - _i64(b))


# Q0.31 constants of exp_on_interval_between_negative_one_quarter_and_0_excl.
_EXP_MINUS_ONE_EIGHTH_Q31 = 1895147668  # exp(-1/8)
_ONE_THIRD_Q31 = 715827883  # 1/3
# exp(-2^k) in Q0.31 for the barrel shifter, k = -2 .. 4.
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    """exp(a) for a in [-1/4, 0), a and result in Q0.31: Taylor series around -1/8."""
    x = _fp_add(a, 1 << 28)  # a + 1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbpot(x4, 2)
    inner = _fp_add(srdhm(_fp_add(x4_over_4, x3), _ONE_THIRD_Q31), x2)
    x4_over_24_plus_x3_over_6_plus_x2_over_2 = rdbpot(inner, 1)
    return _fp_add(_EXP_MINUS_ONE_EIGHTH_Q31,
                   srdhm(_EXP_MINUS_ONE_EIGHTH_Q31,
                         _fp_add(x, x4_over_24_plus_x3_over_6_plus_x2_over_2)))


def exp_on_negative_values(a, integer_bits: int):
    """gemmlowp exp_on_negative_values for FixedPoint<int32, integer_bits> input a <= 0.

    Returns the raw Q0.31 result (exp(0) gives INT32_MAX, gemmlowp's One()).
    """
    if not 0 <= integer_bits < 31:
        raise ValueError("exp_on_negative_values: integer_bits must be in [0, 30]")
    a = _i64(a)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = _fp_sub(a & mask, one_quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_mul_by_pot(a_mod_quarter_minus_one_quarter, integer_bits))
    remainder = _fp_sub(a_mod_quarter_minus_one_quarter, a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = np.int64(1) << (fractional_bits + exponent)
            result = np.where((remainder & bit) != 0, srdhm(result, multiplier), result)
    if integer_bits > 5:
        # Inputs below -32 give exactly zero.
        clamp = -(1 << (36 - integer_bits))
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


# Newton-Raphson constants of one_over_one_plus_x_for_x_in_0_1, in Q2.29.
_48_OVER_17_Q29 = 1515870810
_NEG_32_OVER_17_Q29 = -1010580540
_ONE_Q29 = 1 << 29
_NEWTON_RAPHSON_ITERATIONS = 3


def one_over_one_plus_x_for_x_in_0_1(a):
    """gemmlowp one_over_one_plus_x_for_x_in_0_1: 1 / (1 + a) for raw Q0.31 a in [0, 1);
    returns the raw Q0.31 result."""
    half_denominator = rounding_half_sum(a, INT32_MAX)  # (1 + a) / 2 in Q0.31
    x = _fp_add(_48_OVER_17_Q29, srdhm(half_denominator, _NEG_32_OVER_17_Q29))  # Q2.29
    for _ in range(_NEWTON_RAPHSON_ITERATIONS):
        half_denominator_times_x = srdhm(half_denominator, x)  # Q2.29
        one_minus_half_denominator_times_x = _fp_sub(_ONE_Q29, half_denominator_times_x)
        # Q2 * Q2 = Q4; Rescale<2> is a saturating doubling-of-twice (<< 2).
        x = _fp_add(x, saturating_rounding_mul_by_pot(
            srdhm(x, one_minus_half_denominator_times_x), 2))
    # ExactMulByPot<-1> reinterprets Q2.29 as Q1.30 (x / 2); Rescale<0> shifts left once.
    return saturating_rounding_mul_by_pot(x, 1)


def count_leading_zeros_u32(x):
    """Count of leading zero bits of x viewed as uint32 (32 for 0)."""
    u = _i64(x) & UINT32_MASK
    # frexp gives the bit length exactly for integers below 2^53.
    _, bit_length = np.frexp(u.astype(np.float64))
    return 32 - bit_length.astype(np.int64)


def get_reciprocal(x, x_integer_digits: int):
    """tflite GetReciprocal(int32 x, x_integer_digits, &num_bits_over_unit).

    x is a positive FixedPoint<int32, x_integer_digits> raw value. Returns
    (shifted_scale_raw, num_bits_over_unit): 1 / x = shifted_scale * 2^-num_bits_over_unit with
    shifted_scale in Q0.31.
    """
    x = _i64(x)
    headroom_plus_one = count_leading_zeros_u32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    # (uint32(x) << headroom_plus_one) - 2^31, computed in uint32 and read back as int32.
    shifted_sum_minus_one = wrap_int32(((x & UINT32_MASK) << headroom_plus_one) - (1 << 31))
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit
