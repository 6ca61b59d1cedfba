"""Golden tests for mobilegen.numerics.

Two kinds:
- scalar, loop-by-loop Python transcriptions of the LiteRT / gemmlowp C++ (kept here, in the test
  file only) against the vectorized implementations, on edge cases and hypothesis inputs;
- experiments against LiteRT's reference kernels (OpResolverType.BUILTIN_REF) on one-op models.
  Those need tensorflow / ai_edge_litert: skipped when missing locally, failing under CI=true.
"""

from __future__ import annotations

import importlib
import math
import os
import signal
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobilegen.numerics import fixedpoint as fp
from mobilegen.numerics import params as P
from mobilegen.numerics.softmax import softmax_apply, softmax_params, softmax_quantized

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
QRANGE = {"int8": (-128, 127), "uint8": (0, 255)}


def require(module: str):
    """pytest.importorskip, except that under CI=true a missing module fails the test."""
    if os.environ.get("CI", "").strip().lower() == "true":
        try:
            return importlib.import_module(module)
        except ImportError as exc:  # pragma: no cover - only on a broken CI image
            pytest.fail(f"CI=true but {module} cannot be imported: {exc}")
    return pytest.importorskip(module)


# =============================================================================================
# Scalar transcriptions of the C++ (slow, obviously-correct reference code)
# =============================================================================================

def wrap32(v: int) -> int:
    return ((v - INT32_MIN) & 0xFFFFFFFF) + INT32_MIN


def c_div(a: int, b: int) -> int:
    """C integer division: truncation toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def c_round(x: float) -> int:
    """std::round, exactly (via rational arithmetic)."""
    f = Fraction(x)
    n = math.floor(abs(f))
    if abs(f) - n >= Fraction(1, 2):
        n += 1
    return n if f >= 0 else -n


def ref_quantize_multiplier(d: float):
    if d == 0.0:
        return 0, 0
    q, shift = math.frexp(d)
    q_fixed = c_round(q * (1 << 31))
    assert q_fixed <= (1 << 31)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return q_fixed, shift


def ref_srdhm(a: int, b: int) -> int:
    overflow = a == b and a == INT32_MIN
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else (1 - (1 << 30))
    high = wrap32(c_div(ab + nudge, 1 << 31))
    return INT32_MAX if overflow else high


def ref_rdbpot(x: int, exponent: int) -> int:
    assert 0 <= exponent <= 31
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def ref_mbqm(x: int, m: int, shift: int) -> int:
    left = shift if shift > 0 else 0
    right = 0 if shift > 0 else -shift
    return ref_rdbpot(ref_srdhm(wrap32(x * (1 << left)), m), right)


def ref_sat_mul_pot(x: int, exponent: int) -> int:
    if exponent == 0:
        return x
    if exponent < 0:
        return ref_rdbpot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return wrap32(x << exponent)


def ref_rounding_half_sum(a: int, b: int) -> int:
    s = a + b
    return c_div(s + (1 if s >= 0 else -1), 2)


def ref_exp_quarter(a: int) -> int:
    """exp_on_interval_between_negative_one_quarter_and_0_excl, Q0.31 in and out."""
    constant_term = 1895147668
    constant_1_over_3 = 715827883
    x = wrap32(a + (1 << 28))
    x2 = ref_srdhm(x, x)
    x3 = ref_srdhm(x2, x)
    x4 = ref_srdhm(x2, x2)
    x4_over_4 = ref_sat_mul_pot(x4, -2)
    poly = ref_sat_mul_pot(
        wrap32(ref_srdhm(wrap32(x4_over_4 + x3), constant_1_over_3) + x2), -1)
    return wrap32(constant_term + ref_srdhm(constant_term, wrap32(x + poly)))


def ref_exp_on_negative_values(a: int, integer_bits: int) -> int:
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    mask = one_quarter - 1
    a_mod = wrap32((a & mask) - one_quarter)
    result = ref_exp_quarter(ref_sat_mul_pot(a_mod, integer_bits))
    remainder = wrap32(a_mod - a)
    barrel = [(-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
              (2, 39332535), (3, 720401), (4, 242)]
    for exponent, multiplier in barrel:
        if integer_bits > exponent:
            if remainder & (1 << (fractional_bits + exponent)):
                result = ref_srdhm(result, multiplier)
    if integer_bits > 5 and a < -(1 << (36 - integer_bits)):
        result = 0
    if a == 0:
        result = INT32_MAX
    return result


def ref_one_over_one_plus_x(a: int) -> int:
    half_denominator = ref_rounding_half_sum(a, INT32_MAX)
    x = wrap32(1515870810 + ref_srdhm(half_denominator, -1010580540))
    for _ in range(3):
        half_denominator_times_x = ref_srdhm(half_denominator, x)
        one_minus = wrap32((1 << 29) - half_denominator_times_x)
        x = wrap32(x + ref_sat_mul_pot(ref_srdhm(x, one_minus), 2))
    return ref_sat_mul_pot(x, 1)


def ref_clz32(x: int) -> int:
    u = x & 0xFFFFFFFF
    return 32 - u.bit_length()


def ref_get_reciprocal(x: int, x_integer_digits: int):
    headroom_plus_one = ref_clz32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted = wrap32((((x & 0xFFFFFFFF) << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31))
    return ref_one_over_one_plus_x(shifted), num_bits_over_unit


def ref_softmax_prepare(beta: float, input_scale: float):
    """PreprocessSoftmaxScaling + CalculateInputRadius (double arithmetic)."""
    beta_d = float(np.float32(beta))
    scale_d = float(np.float32(input_scale))
    real = min(beta_d * scale_d * (1 << 26), float((1 << 31) - 1))
    assert real > 1.0
    m, left_shift = ref_quantize_multiplier(real)
    radius = math.floor(1.0 * 31 * (1 << 26) / (1 << left_shift))
    return m, left_shift, -radius


def ref_softmax_row(row, beta, input_scale, out_min, out_max):
    m, left_shift, diff_min = ref_softmax_prepare(beta, input_scale)
    max_in_row = max(int(v) for v in row)
    sum_of_exps = 0
    for v in row:
        diff = int(v) - max_in_row
        if diff >= diff_min:
            scaled = ref_srdhm(wrap32(diff * (1 << left_shift)), m)
            sum_of_exps = wrap32(
                sum_of_exps + ref_sat_mul_pot(ref_exp_on_negative_values(scaled, 5), -12))
    shifted_scale, num_bits_over_unit = ref_get_reciprocal(sum_of_exps, 12)
    exponent = num_bits_over_unit + 31 - 8
    if not 0 <= exponent <= 31:
        raise ValueError("abort")
    out = []
    for v in row:
        diff = int(v) - max_in_row
        if diff >= diff_min:
            scaled = ref_srdhm(wrap32(diff * (1 << left_shift)), m)
            exp_in_0 = ref_exp_on_negative_values(scaled, 5)
            unsat = ref_rdbpot(ref_srdhm(shifted_scale, exp_in_0), exponent)
            out.append(max(min(unsat + out_min, out_max), out_min))
        else:
            out.append(out_min)
    return out


# =============================================================================================
# fixedpoint.py vs the transcriptions
# =============================================================================================

int32s = st.integers(INT32_MIN, INT32_MAX)
EDGE_INT32 = [INT32_MIN, INT32_MIN + 1, -(1 << 30) - 1, -(1 << 30), -3, -2, -1, 0, 1, 2, 3,
              1 << 30, (1 << 30) + 1, INT32_MAX - 1, INT32_MAX]


class TestRoundAndMultiplier:
    @pytest.mark.parametrize("x", [0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999999999999994,
                                   -0.49999999999999994, 1e15 + 0.5, 4503599627370495.5,
                                   -7.5, 0.0, -0.0, 3.0])
    def test_round_half_away_edges(self, x):
        assert int(fp.round_half_away(x)) == c_round(x)

    @settings(deadline=None)
    @given(st.floats(-1e12, 1e12, allow_nan=False))
    def test_round_half_away_hypothesis(self, x):
        assert int(fp.round_half_away(x)) == c_round(x)

    def test_round_half_away_float32_and_nonfinite(self):
        x = np.array([0.5, -2.5, 1.4999999], dtype=np.float32)
        assert fp.round_half_away(x).tolist() == [c_round(float(v)) for v in x]
        with pytest.raises(ValueError):
            fp.round_half_away(np.inf)
        with pytest.raises(ValueError):
            fp.round_half_away(float("nan"))

    @pytest.mark.parametrize("real", [0.0, 1.0, 0.5, 0.75, 1 - 2**-40, 2**-31, 2**-32,
                                      2**-31 * 0.75, 2**-32 * 1.5, 3.0e-10, 1234.5678,
                                      float(2**31 - 1), 2.0**40, 5e-324, 0.0078125 * 0.3])
    def test_quantize_multiplier_edges(self, real):
        assert fp.quantize_multiplier(real) == ref_quantize_multiplier(real)

    def test_quantize_multiplier_corner_rounds_up(self):
        # q * 2^31 rounds to 2^31: the C++ halves M and bumps the exponent.
        assert fp.quantize_multiplier(1 - 2**-40) == (1 << 30, 1)

    @settings(deadline=None)
    @given(st.floats(0, 1e6, allow_nan=False, allow_infinity=False))
    def test_quantize_multiplier_hypothesis(self, real):
        assert fp.quantize_multiplier(real) == ref_quantize_multiplier(real)

    def test_quantize_multiplier_vectorized(self):
        reals = np.array([0.0, 1e-12, 0.3, 0.999999999999, 2.5, 1 - 2**-40])
        m, e = fp.quantize_multiplier(reals)
        assert m.dtype == np.int64 and e.dtype == np.int64
        assert list(zip(m.tolist(), e.tolist())) == [ref_quantize_multiplier(r) for r in reals]

    @pytest.mark.parametrize("bad", [-1e-9, -1.0, float("inf"), float("nan")])
    def test_quantize_multiplier_rejects(self, bad):
        with pytest.raises(ValueError):
            fp.quantize_multiplier(bad)
        with pytest.raises(ValueError):
            fp.quantize_multiplier(np.array([0.5, bad]))


class TestSrdhmRdbpotMbqm:
    def test_srdhm_edges(self):
        for a in EDGE_INT32:
            for b in EDGE_INT32:
                assert int(fp.srdhm(a, b)) == ref_srdhm(a, b), (a, b)
        assert int(fp.srdhm(INT32_MIN, INT32_MIN)) == INT32_MAX

    @settings(deadline=None)
    @given(int32s, int32s)
    def test_srdhm_hypothesis(self, a, b):
        assert int(fp.srdhm(a, b)) == ref_srdhm(a, b)

    def test_srdhm_vectorized_broadcast(self):
        a = np.array(EDGE_INT32, dtype=np.int64)[:, None]
        b = np.array(EDGE_INT32, dtype=np.int32)[None, :]
        got = fp.srdhm(a, b)
        want = [[ref_srdhm(x, y) for y in EDGE_INT32] for x in EDGE_INT32]
        assert got.tolist() == want

    def test_rdbpot_edges(self):
        for x in EDGE_INT32 + [-5, -6, -7, 5, 6, 7]:
            for e in (0, 1, 2, 3, 15, 30, 31):
                assert int(fp.rdbpot(x, e)) == ref_rdbpot(x, e), (x, e)
        # halves go away from zero
        assert fp.rdbpot(np.array([-3, -1, 1, 3, -5, 5]), 1).tolist() == [-2, -1, 1, 2, -3, 3]
        with pytest.raises(ValueError):
            fp.rdbpot(1, 32)

    @settings(deadline=None)
    @given(int32s, st.integers(0, 31))
    def test_rdbpot_hypothesis(self, x, e):
        assert int(fp.rdbpot(x, e)) == ref_rdbpot(x, e)

    def test_mbqm_edges(self):
        multipliers = [0, 1, 1 << 30, (1 << 30) + 1, INT32_MAX]
        for x in EDGE_INT32:
            for m in multipliers:
                for e in (-31, -30, -1, 0, 1, 7, 30, 31):
                    assert int(fp.mbqm(x, m, e)) == ref_mbqm(x, m, e), (x, m, e)

    @settings(deadline=None)
    @given(int32s, st.integers(0, INT32_MAX), st.integers(-31, 31))
    def test_mbqm_hypothesis(self, x, m, e):
        assert int(fp.mbqm(x, m, e)) == ref_mbqm(x, m, e)

    @settings(deadline=None, max_examples=50)
    @given(st.lists(int32s, min_size=1, max_size=24), st.integers(1, 6))
    def test_mbqm_per_channel_last_axis(self, xs, channels):
        rng = np.random.default_rng(len(xs))
        m = rng.integers(1 << 30, 1 << 31, size=channels)
        e = rng.integers(-31, 8, size=channels)
        x = np.resize(np.array(xs, dtype=np.int64), (3, channels))
        got = fp.mbqm(x, m, e)
        want = [[ref_mbqm(int(x[i, c]), int(m[c]), int(e[c])) for c in range(channels)]
                for i in range(3)]
        assert got.tolist() == want


class TestGemmlowpFunctions:
    def test_exp_on_negative_values_exhaustive_grid(self):
        # Every Q5.26 input reachable from int8 differences at typical shifts, plus extremes.
        values = set()
        for left_shift in (19, 22, 23, 26, 28, 30):
            m = 1518500250
            for d in range(-255, 1):
                values.add(ref_srdhm(wrap32(d * (1 << left_shift)), m))
        values.update([0, -1, -(1 << 24), -(1 << 26), -(31 << 26), INT32_MIN + 1, INT32_MIN])
        values = sorted(values)
        got = fp.exp_on_negative_values(np.array(values), 5)
        assert got.tolist() == [ref_exp_on_negative_values(v, 5) for v in values]

    @settings(deadline=None)
    @given(st.integers(INT32_MIN, 0), st.sampled_from([0, 1, 3, 5, 6, 12]))
    def test_exp_on_negative_values_hypothesis(self, a, integer_bits):
        got = int(fp.exp_on_negative_values(a, integer_bits))
        assert got == ref_exp_on_negative_values(a, integer_bits)

    @settings(deadline=None)
    @given(st.integers(0, INT32_MAX))
    def test_one_over_one_plus_x(self, a):
        assert int(fp.one_over_one_plus_x_for_x_in_0_1(a)) == ref_one_over_one_plus_x(a)

    @settings(deadline=None)
    @given(st.integers(1, INT32_MAX))
    def test_get_reciprocal(self, x):
        scale, bits = fp.get_reciprocal(x, 12)
        assert (int(scale), int(bits)) == ref_get_reciprocal(x, 12)

    @settings(deadline=None)
    @given(int32s, int32s)
    def test_rounding_half_sum(self, a, b):
        assert int(fp.rounding_half_sum(a, b)) == ref_rounding_half_sum(a, b)

    @settings(deadline=None)
    @given(int32s, st.integers(-31, 30))
    def test_saturating_rounding_mul_by_pot(self, x, e):
        assert int(fp.saturating_rounding_mul_by_pot(x, e)) == ref_sat_mul_pot(x, e)


# =============================================================================================
# softmax.py vs the transcription
# =============================================================================================

class TestSoftmaxScalar:
    @pytest.mark.parametrize("dtype", ["int8", "uint8"])
    @pytest.mark.parametrize("scale,beta", [(0.1, 1.0), (0.0039, 1.0), (1.7, 1.0), (0.05, 0.5),
                                            (0.2, 2.0), (2.0**-20, 1.0), (1e-3, 1.0)])
    def test_rows_match_transcription(self, dtype, scale, beta):
        lo, hi = QRANGE[dtype]
        rng = np.random.default_rng(7)
        x = rng.integers(lo, hi + 1, size=(6, 37))
        x[1] = hi  # all tied
        x[2, :5] = hi
        x[3] = lo
        x[4, 0] = hi
        x[4, 1:] = lo
        got = softmax_quantized(x, scale, beta, dtype, dtype)
        assert got.dtype == np.dtype(dtype)
        want = [ref_softmax_row(r, beta, scale, lo, hi) for r in x]
        assert got.tolist() == want

    @settings(max_examples=60, deadline=None)
    @given(st.sampled_from(["int8", "uint8"]), st.floats(2.0**-24, 8.0),
           st.lists(st.integers(0, 255), min_size=1, max_size=40))
    def test_hypothesis_rows(self, dtype, scale, values):
        lo, _ = QRANGE[dtype]
        row = np.array(values) + lo
        got = softmax_quantized(row, scale, 1.0, dtype, dtype)
        assert got.tolist() == ref_softmax_row(row, 1.0, scale, lo, lo + 255)

    def test_params_are_plain_ints(self):
        p = softmax_params(0.1, 1.0, "int8", "int8")
        for v in (p.input_multiplier, p.input_left_shift, p.diff_min, p.output_min):
            assert type(v) is int
        m, left_shift, diff_min = ref_softmax_prepare(1.0, 0.1)
        assert (p.input_multiplier, p.input_left_shift, p.diff_min) == (m, left_shift, diff_min)

    def test_degenerate_scale_raises(self):
        with pytest.raises(ValueError):
            softmax_params(2.0**-26, 1.0, "int8", "int8")  # real multiplier exactly 1.0
        with pytest.raises(ValueError):
            softmax_params(1e-12, 1.0, "uint8", "uint8")
        with pytest.raises(ValueError):
            softmax_params(0.0, 1.0, "int8", "int8")
        with pytest.raises(ValueError):
            softmax_params(0.1, 1.0, "int8", "uint8")
        softmax_params(1.5e-8, 1.0, "int8", "int8")  # just above 2^-26: accepted

    def test_too_many_ties_raises(self):
        p = softmax_params(0.1, 1.0, "int8", "int8")
        softmax_apply(np.full((1, 511), 3), p)
        with pytest.raises(ValueError):
            softmax_apply(np.full((1, 512), 3), p)

    def test_batched_shape(self):
        x = np.random.default_rng(1).integers(-128, 128, size=(2, 3, 4, 10))
        got = softmax_quantized(x, 0.07, 1.0, "int8", "int8")
        flat = softmax_quantized(x.reshape(-1, 10), 0.07, 1.0, "int8", "int8")
        assert got.shape == x.shape and np.array_equal(got.reshape(-1, 10), flat)


# =============================================================================================
# params.py vs transcriptions
# =============================================================================================

def ref_activation_range(act, scale, zp, dtype):
    qmin, qmax = QRANGE[dtype]

    def q(f):
        return zp + c_round(float(np.float32(f) / np.float32(scale)))

    if act == "RELU":
        return max(qmin, q(0.0)), qmax
    if act == "RELU6":
        return max(qmin, q(0.0)), min(qmax, q(6.0))
    if act == "RELU_N1_TO_1":
        return max(qmin, q(-1.0)), min(qmax, q(1.0))
    return qmin, qmax


class TestParamsScalar:
    @settings(deadline=None)
    @given(st.sampled_from(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]),
           st.floats(1e-4, 1.0), st.integers(-128, 127), st.sampled_from(["int8", "uint8"]))
    def test_activation_range(self, act, scale, zp, dtype):
        if dtype == "uint8":
            zp += 128
        assert P.activation_range(act, scale, zp, dtype) == ref_activation_range(
            act, scale, zp, dtype)

    def test_activation_range_half_way(self):
        # 6 / 0.25 = 24 exactly, 6 / 0.48 ~ 12.5 rounds in float32
        assert P.activation_range("RELU6", 0.25, -128, "int8") == (-128, -104)
        lo, hi = P.activation_range("RELU6", 0.48, -128, "int8")
        assert hi == -128 + c_round(float(np.float32(6.0) / np.float32(0.48)))

    @settings(deadline=None, max_examples=100)
    @given(st.floats(1e-3, 1.0), st.integers(-128, 127), st.floats(1e-3, 1.0),
           st.integers(-128, 127), st.floats(1e-3, 1.0), st.integers(-128, 127),
           st.sampled_from(["NONE", "RELU", "RELU6"]))
    def test_add(self, s1, z1, s2, z2, so, zo, act):
        try:
            p = P.add_params(s1, z1, s2, z2, so, zo, act, "int8")
        except ValueError:
            return
        a = np.arange(-128, 128)
        b = np.roll(a, 37)
        got = P.add_quantized(a, b, p)
        for x, y, g in zip(a.tolist(), b.tolist(), got.tolist()):
            v1 = ref_mbqm(wrap32((x + p.input1_offset) << 20), p.input1_multiplier,
                          p.input1_shift)
            v2 = ref_mbqm(wrap32((y + p.input2_offset) << 20), p.input2_multiplier,
                          p.input2_shift)
            raw = ref_mbqm(wrap32(v1 + v2), p.output_multiplier, p.output_shift)
            assert g == min(max(raw + zo, p.act_min), p.act_max)

    def test_add_multipliers(self):
        p = P.add_params(0.02, 0, 0.01, 0, 0.03, 0, "NONE", "int8")
        twice_max = 2 * float(np.float32(0.02))
        assert (p.input1_multiplier, p.input1_shift) == ref_quantize_multiplier(
            float(np.float32(0.02)) / twice_max)
        assert (p.output_multiplier, p.output_shift) == ref_quantize_multiplier(
            twice_max / float(np.float32(2**20) * np.float32(0.03)))
        with pytest.raises(ValueError):  # output multiplier >= 1: LiteRT aborts
            P.add_params(1.0, 0, 1.0, 0, 1e-7, 0, "NONE", "int8")

    @settings(deadline=None, max_examples=100)
    @given(st.floats(1e-3, 1.0), st.floats(1e-3, 1.0), st.integers(1, 400),
           st.integers(-128, 127), st.integers(-128, 127), st.sampled_from(["int8", "uint8"]))
    def test_mean(self, si, so, n, zi, zo, dtype):
        if dtype == "uint8":
            zi, zo = zi + 128, zo + 128
        lo, hi = QRANGE[dtype]
        p = P.mean_params(si, zi, so, zo, n, dtype)
        m, e = ref_quantize_multiplier(float(np.float32(si)) / float(np.float32(so)))
        k = min(63 - (64 - n.bit_length()), 32, 31 + e)
        mm, ee = c_div(m << k, n), e - k
        assert (p.multiplier, p.shift) == (mm, ee)
        sums = np.array([lo * n, hi * n, zi * n, zi * n + n // 2, zi * n - n // 2, 0, 17 * n])
        got = P.mean_from_sums(sums, p)
        for s, g in zip(sums.tolist(), got.tolist()):
            want = ref_mbqm(wrap32(s - zi * n), mm, ee) + zo
            assert g == min(max(want, lo), hi)

    @settings(deadline=None)
    @given(st.integers(-255 * 64, 255 * 64), st.integers(1, 64))
    def test_average_pool_divide(self, acc, count):
        half = count // 2
        want = c_div(acc + half, count) if acc > 0 else c_div(acc - half, count)
        assert int(P.average_pool_divide(acc, count)) == want

    @settings(deadline=None, max_examples=100)
    @given(st.floats(1e-4, 1.0), st.floats(1e-3, 1.0), st.floats(1e-3, 1.0),
           st.integers(-2_000_000, 2_000_000))
    def test_fc_output(self, si, sw, so, acc):
        p = P.fc_params(si, 0, sw, 0, so, 3, "NONE", "int8", 1)
        eff = float(np.float32(si)) * float(np.float32(sw)) / float(np.float32(so))
        want = min(max(c_round(float(acc) * eff) + 3, -128), 127)
        assert int(P.fc_output(np.array([acc]), p)[0]) == want

    def test_fc_half_way_rounds_away(self):
        # eff = 0.5: -3 * 0.5 = -1.5 -> -2 (round), where MBQM would give -1.
        p = P.fc_params(1.0, 0, 0.5, 0, 1.0, 0, "NONE", "int8", 2)
        assert P.fc_output(np.array([-3, 3]), p).tolist() == [-2, 2]

    def test_conv_params(self):
        scales = np.array([0.01, 0.02, 0.0031], dtype=np.float32)
        p = P.conv_params(0.05, -3, scales, 0, 0.1, 5, "RELU6", "int8", 3)
        for c in range(3):
            want = ref_quantize_multiplier(
                float(np.float32(0.05)) * float(scales[c]) / float(np.float32(0.1)))
            assert (p.multipliers[c], p.shifts[c]) == want
        assert (p.act_min, p.act_max) == ref_activation_range("RELU6", 0.1, 5, "int8")
        pu = P.conv_params(0.05, 128, 0.0031, 120, 0.1, 0, "NONE", "uint8", 2)
        want = ref_quantize_multiplier(
            float(np.float32(0.05) * np.float32(0.0031)) / float(np.float32(0.1)))
        assert (pu.multipliers[0], pu.shifts[0]) == want and pu.weights_offset == -120
        acc = np.array([[1000, -1000, 77]])
        got = P.conv_output(acc, p)
        assert got.tolist() == [[min(max(ref_mbqm(int(a), p.multipliers[c], p.shifts[c]) + 5,
                                         p.act_min), p.act_max)
                                 for c, a in enumerate(acc[0])]]

    def test_relu_params_float32_division(self):
        si, so = 0.0123, 0.0071
        p = P.relu_params("RELU6", si, 3, so, -7, "int8")
        assert (p.multiplier, p.shift) == ref_quantize_multiplier(
            float(np.float32(si) / np.float32(so)))
        x = np.arange(-128, 128)
        got = P.relu_quantized(x, p)
        for v, g in zip(x.tolist(), got.tolist()):
            assert g == min(max(ref_mbqm(v - 3, p.multiplier, p.shift) - 7, p.act_min),
                            p.act_max)

    def test_quantize_dequantize_requantize(self):
        x = np.array([0.5, -0.5, 1.5, -2.5, 1000.0, -1000.0, 0.1], dtype=np.float32)
        got = P.quantize_float(x, 1.0, 3, "int8")
        assert got.tolist() == [min(max(c_round(float(v)) + 3, -128), 127) for v in x]
        assert P.dequantize(np.array([-128, 0, 127]), 0.1, 2).tolist() == [
            float(np.float32(float(np.float32(0.1)) * (q - 2))) for q in (-128, 0, 127)]
        rp = P.requantize_params(0.02, 128, 0.02, 0, "int8")  # uint8 -> int8 same scale
        assert P.requantize(np.arange(256), rp).tolist() == list(range(-128, 128))

    def test_concat(self):
        x = np.arange(256)
        got = P.concat_rescale_uint8(x, 0.02, 10, 0.03, 5)
        inv = np.float32(1) / np.float32(0.03)
        scale = np.float32(0.02) * inv
        bias = np.float32(-10) * scale
        want = [min(max(c_round(float(np.float32(np.float32(v) * scale) + bias)) + 5, 0), 255)
                for v in x]
        assert got.tolist() == want
        # The float32 (scale, bias) the engine's ConcatParams carry, and the arithmetic on them.
        assert P.concat_rescale_params(0.02, 10, 0.03) == (scale, bias)
        assert P.concat_rescale_apply(x, scale, bias, 5).tolist() == want
        below_half = np.nextafter(np.float32(0.5), np.float32(0))  # floor(v + 0.5) would give 1
        assert P.concat_rescale_apply([1, 1, 1], [below_half, 2.5, -2.5], 0.0, 10).tolist() == [10, 13, 7]
        P.check_concat_int8([(0.5, 1)], 0.5, 1)
        with pytest.raises(ValueError):
            P.check_concat_int8([(0.5, 1), (0.25, 1)], 0.5, 1)


# =============================================================================================
# Experiments against LiteRT BUILTIN_REF
# =============================================================================================

_ACT_CODE = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}


def _one_op_model(schema, op, tensors, inputs, outputs, options_type=0, options=None):
    """A flatbuffer with one operator. tensors: dicts with shape, dtype, optional scale/zp
    (scalars or per-channel lists), data (constant buffer) and qdim."""
    flatbuffers = require("flatbuffers")
    types = {"float32": schema.TensorType.FLOAT32, "int8": schema.TensorType.INT8,
             "uint8": schema.TensorType.UINT8, "int32": schema.TensorType.INT32}
    model = schema.ModelT()
    model.version = 3
    code = schema.OperatorCodeT()
    code.builtinCode = op
    code.deprecatedBuiltinCode = min(op, 127)
    code.version = 1
    model.operatorCodes = [code]
    model.buffers = [schema.BufferT()]
    graph = schema.SubGraphT()
    graph.tensors = []
    for i, spec in enumerate(tensors):
        tensor = schema.TensorT()
        tensor.name = f"t{i}".encode()
        tensor.shape = list(spec["shape"])
        tensor.type = types[spec["dtype"]]
        buffer = schema.BufferT()
        if spec.get("data") is not None:
            raw = np.ascontiguousarray(np.asarray(spec["data"]).astype(spec["dtype"]))
            buffer.data = np.frombuffer(raw.tobytes(), dtype=np.uint8)
        model.buffers.append(buffer)
        tensor.buffer = len(model.buffers) - 1
        if spec.get("scale") is not None:
            q = schema.QuantizationParametersT()
            q.scale = [float(s) for s in np.atleast_1d(np.float32(spec["scale"]))]
            q.zeroPoint = [int(z) for z in np.atleast_1d(spec["zp"])]
            q.quantizedDimension = spec.get("qdim", 0)
            tensor.quantization = q
        graph.tensors.append(tensor)
    operator = schema.OperatorT()
    operator.opcodeIndex = 0
    operator.inputs = list(inputs)
    operator.outputs = list(outputs)
    operator.builtinOptionsType = options_type
    operator.builtinOptions = options
    graph.operators = [operator]
    graph.inputs = [i for i in inputs if tensors[i].get("data") is None]
    graph.outputs = list(outputs)
    model.subgraphs = [graph]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _run_reference(model: bytes, feeds):
    interp_mod = require("ai_edge_litert.interpreter")
    interpreter = interp_mod.Interpreter(
        model_content=model,
        experimental_op_resolver_type=interp_mod.OpResolverType.BUILTIN_REF,
        experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    for detail, value in zip(interpreter.get_input_details(), feeds):
        interpreter.set_tensor(detail["index"], np.asarray(value, dtype=detail["dtype"]))
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]


@pytest.fixture(scope="module")
def schema():
    require("ai_edge_litert")
    return require("ai_edge_litert.schema_py_generated")


def _softmax_model(schema, shape, dtype, scale, zp, beta):
    options = schema.SoftmaxOptionsT()
    options.beta = beta
    out_zp = -128 if dtype == "int8" else 0
    return _one_op_model(schema, schema.BuiltinOperator.SOFTMAX,
                         [dict(shape=shape, dtype=dtype, scale=scale, zp=zp),
                          dict(shape=shape, dtype=dtype, scale=1 / 256, zp=out_zp)],
                         [0], [1], schema.BuiltinOptions.SoftmaxOptions, options)


class TestAgainstLiteRT:
    @pytest.mark.parametrize("dtype", ["int8", "uint8"])
    def test_softmax_random_models(self, schema, dtype):
        rng = np.random.default_rng(1234 if dtype == "int8" else 4321)
        lo, hi = QRANGE[dtype]
        for trial in range(24):
            scale = float(np.float32(10 ** rng.uniform(-3, 0.5)))
            beta = float(np.float32([1.0, 0.5, 2.0, rng.uniform(0.1, 3)][trial % 4]))
            zp = int(rng.integers(lo, hi + 1))
            shape = [int(rng.integers(1, 4)), int(rng.integers(1, 200))]
            x = rng.integers(lo, hi + 1, size=shape)
            if trial % 3 == 0:
                x[:, ::2] = hi  # many ties at the maximum
            ref = _run_reference(_softmax_model(schema, shape, dtype, scale, zp, beta), [x])[0]
            got = softmax_quantized(x, scale, beta, dtype, dtype)
            assert np.array_equal(ref, got), (scale, beta, shape)

    def test_softmax_int8_converted_by_tensorflow(self):
        tf = require("tensorflow")
        interp_mod = require("ai_edge_litert.interpreter")
        tf.random.set_seed(0)
        rng = np.random.default_rng(0)
        keras_model = tf.keras.Sequential([tf.keras.Input(shape=(24,)),
                                           tf.keras.layers.Softmax()])

        def representative():
            for _ in range(16):
                yield [rng.normal(0, 3, size=(1, 24)).astype(np.float32)]

        converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        model = converter.convert()
        interpreter = interp_mod.Interpreter(
            model_content=model,
            experimental_op_resolver_type=interp_mod.OpResolverType.BUILTIN_REF,
            experimental_preserve_all_tensors=True)
        interpreter.allocate_tensors()
        detail_in = interpreter.get_input_details()[0]
        detail_out = interpreter.get_output_details()[0]
        scale, zp = detail_in["quantization"]
        assert detail_out["quantization"] == (1 / 256, -128)
        x = rng.integers(-128, 128, size=(1, 24)).astype(np.int8)
        interpreter.set_tensor(detail_in["index"], x)
        interpreter.invoke()
        ref = interpreter.get_tensor(detail_out["index"])
        assert np.array_equal(ref, softmax_quantized(x, scale, 1.0, "int8", "int8"))

    @pytest.mark.parametrize("case", ["tiny_scale", "ties"])
    def test_litert_aborts_where_we_raise(self, schema, tmp_path, case):
        if case == "tiny_scale":
            shape, scale, x = [1, 10], 2.0**-26, np.arange(10).reshape(1, 10)
        else:
            shape, scale, x = [1, 600], 0.1, np.full((1, 600), 5)
        with pytest.raises(ValueError):
            softmax_quantized(x, scale, 1.0, "int8", "int8")
        path = tmp_path / "m.tflite"
        path.write_bytes(_softmax_model(schema, shape, "int8", scale, 0, 1.0))
        np.save(tmp_path / "x.npy", x.astype(np.int8))
        script = (
            "import numpy as np, sys\n"
            "from ai_edge_litert.interpreter import Interpreter, OpResolverType\n"
            f"it = Interpreter(model_path={str(path)!r}, "
            "experimental_op_resolver_type=OpResolverType.BUILTIN_REF)\n"
            "it.allocate_tensors()\n"
            f"it.set_tensor(it.get_input_details()[0]['index'], np.load({str(tmp_path / 'x.npy')!r}))\n"
            "it.invoke()\n")
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
        assert proc.returncode == -signal.SIGABRT, proc.stderr[-2000:]

    def test_fully_connected(self, schema):
        rng = np.random.default_rng(11)
        for trial in range(24):
            dtype = ["int8", "uint8"][trial % 2]
            per_channel = dtype == "int8" and trial % 4 == 0
            lo, hi = QRANGE[dtype]
            batch, depth, units = 2, int(rng.integers(1, 30)), int(rng.integers(1, 8))
            si, so = (float(np.float32(10 ** rng.uniform(-2, 0))) for _ in range(2))
            sw = ([float(np.float32(10 ** rng.uniform(-3, -1))) for _ in range(units)]
                  if per_channel else float(np.float32(10 ** rng.uniform(-3, -1))))
            zi, zo = int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))
            zw = 0 if dtype == "int8" else int(rng.integers(0, 256))
            act = list(_ACT_CODE)[trial % 4]
            w = rng.integers(-127 if dtype == "int8" else 0, hi + 1, size=(units, depth))
            bias = rng.integers(-3000, 3000, size=units)
            x = rng.integers(lo, hi + 1, size=(batch, depth))
            n_q = units if per_channel else 1
            options = schema.FullyConnectedOptionsT()
            options.fusedActivationFunction = _ACT_CODE[act]
            model = _one_op_model(schema, schema.BuiltinOperator.FULLY_CONNECTED, [
                dict(shape=[batch, depth], dtype=dtype, scale=si, zp=zi),
                dict(shape=[units, depth], dtype=dtype, scale=sw, zp=[zw] * n_q, data=w),
                dict(shape=[units], dtype="int32", scale=np.float32(si) * np.float32(sw),
                     zp=[0] * n_q, data=bias),
                dict(shape=[batch, units], dtype=dtype, scale=so, zp=zo)],
                [0, 1, 2], [3], schema.BuiltinOptions.FullyConnectedOptions, options)
            ref = _run_reference(model, [x])[0]
            p = P.fc_params(si, zi, sw, zw, so, zo, act, dtype, units)
            acc = ((w[None] + p.weights_offset) * (x[:, None, :] + p.input_offset)).sum(-1)
            assert np.array_equal(ref, P.fc_output(acc + bias, p)), trial

    @pytest.mark.parametrize("dtype", ["int8", "uint8"])
    def test_fully_connected_half_way(self, schema, dtype):
        # eff = 0.5 and odd negative accumulators: round-away (-2) vs MBQM (-1) tells the
        # double path from the multiplier path.
        zi = zo = 0 if dtype == "int8" else 128
        zw = 0 if dtype == "int8" else 128
        model = _one_op_model(schema, schema.BuiltinOperator.FULLY_CONNECTED, [
            dict(shape=[1, 1], dtype=dtype, scale=1.0, zp=zi),
            dict(shape=[2, 1], dtype=dtype, scale=0.5, zp=zw, data=np.full((2, 1), zw + 1)),
            dict(shape=[2], dtype="int32", scale=0.5, zp=0, data=np.array([-4, -6])),
            dict(shape=[1, 2], dtype=dtype, scale=1.0, zp=zo)],
            [0, 1, 2], [3], schema.BuiltinOptions.FullyConnectedOptions,
            schema.FullyConnectedOptionsT())
        ref = _run_reference(model, [np.array([[zi + 1]])])[0].astype(np.int64) - zo
        assert ref.tolist() == [[-2, -3]]
        p = P.fc_params(1.0, zi, 0.5, zw, 1.0, zo, "NONE", dtype, 2)
        assert (P.fc_output(np.array([[-3, -5]]), p) - zo).tolist() == [[-2, -3]]

    def test_add(self, schema):
        rng = np.random.default_rng(12)
        for trial in range(24):
            dtype = ["int8", "uint8"][trial % 2]
            lo, hi = QRANGE[dtype]
            s1, s2, so = (float(np.float32(10 ** rng.uniform(-2, 0))) for _ in range(3))
            z1, z2, zo = (int(rng.integers(lo, hi + 1)) for _ in range(3))
            act = list(_ACT_CODE)[trial % 4]
            shape2 = [2, 3, 4] if trial % 3 else [1, 1, 4]
            a = rng.integers(lo, hi + 1, size=(2, 3, 4))
            b = rng.integers(lo, hi + 1, size=shape2)
            options = schema.AddOptionsT()
            options.fusedActivationFunction = _ACT_CODE[act]
            model = _one_op_model(schema, schema.BuiltinOperator.ADD, [
                dict(shape=[2, 3, 4], dtype=dtype, scale=s1, zp=z1),
                dict(shape=shape2, dtype=dtype, scale=s2, zp=z2),
                dict(shape=[2, 3, 4], dtype=dtype, scale=so, zp=zo)],
                [0, 1], [2], schema.BuiltinOptions.AddOptions, options)
            ref = _run_reference(model, [a, b])[0]
            p = P.add_params(s1, z1, s2, z2, so, zo, act, dtype)
            assert np.array_equal(ref, P.add_quantized(a, b, p)), trial

    def test_mean(self, schema):
        rng = np.random.default_rng(13)
        for trial in range(24):
            dtype = ["int8", "uint8"][trial % 2]
            lo, hi = QRANGE[dtype]
            h, w, c = int(rng.integers(1, 12)), int(rng.integers(1, 12)), 3
            si, zi = float(np.float32(10 ** rng.uniform(-2, 0))), int(rng.integers(lo, hi + 1))
            if trial % 4 < 2:  # equal input/output quantization takes the same path
                so, zo = si, zi
            else:
                so, zo = float(np.float32(10 ** rng.uniform(-2, 0))), int(rng.integers(lo, hi + 1))
            keep = trial % 3 == 0
            x = rng.integers(lo, hi + 1, size=(1, h, w, c))
            options = schema.ReducerOptionsT()
            options.keepDims = keep
            model = _one_op_model(schema, schema.BuiltinOperator.MEAN, [
                dict(shape=[1, h, w, c], dtype=dtype, scale=si, zp=zi),
                dict(shape=[2], dtype="int32", data=np.array([1, 2])),
                dict(shape=[1, 1, 1, c] if keep else [1, c], dtype=dtype, scale=so, zp=zo)],
                [0, 1], [2], schema.BuiltinOptions.ReducerOptions, options)
            ref = _run_reference(model, [x])[0].reshape(1, c)
            p = P.mean_params(si, zi, so, zo, h * w, dtype)
            assert np.array_equal(ref, P.mean_quantized(x, p)), trial

    def test_relu_family(self, schema):
        rng = np.random.default_rng(14)
        ops = [("RELU", schema.BuiltinOperator.RELU), ("RELU6", schema.BuiltinOperator.RELU6),
               ("RELU_N1_TO_1", schema.BuiltinOperator.RELU_N1_TO_1)]
        for trial in range(18):
            dtype = ["int8", "uint8"][trial % 2]
            kind, code = ops[trial % 3]
            lo, hi = QRANGE[dtype]
            si, so = (float(np.float32(10 ** rng.uniform(-2, 0))) for _ in range(2))
            zi, zo = int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))
            x = np.arange(lo, hi + 1).reshape(1, -1)
            model = _one_op_model(schema, code, [
                dict(shape=list(x.shape), dtype=dtype, scale=si, zp=zi),
                dict(shape=list(x.shape), dtype=dtype, scale=so, zp=zo)], [0], [1])
            ref = _run_reference(model, [x])[0]
            p = P.relu_params(kind, si, zi, so, zo, dtype)
            assert np.array_equal(ref, P.relu_quantized(x, p)), trial

    def test_quantize_requantize_dequantize(self, schema):
        rng = np.random.default_rng(15)
        for trial in range(16):
            dtype = ["int8", "uint8"][trial % 2]
            out_dtype = ["int8", "uint8"][trial // 2 % 2]
            lo, hi = QRANGE[dtype]
            s = float(np.float32(10 ** rng.uniform(-3, 0)))
            z = int(rng.integers(lo, hi + 1))
            xf = ((np.arange(300) - 150 + 0.5) * np.float32(s)).astype(np.float32)
            model = _one_op_model(schema, schema.BuiltinOperator.QUANTIZE, [
                dict(shape=[300], dtype="float32"),
                dict(shape=[300], dtype=dtype, scale=s, zp=z)], [0], [1])
            ref = _run_reference(model, [xf])[0]
            assert np.array_equal(ref, P.quantize_float(xf, s, z, dtype))
            xq = np.arange(lo, hi + 1)
            olo, ohi = QRANGE[out_dtype]
            s2, z2 = float(np.float32(10 ** rng.uniform(-3, 0))), int(rng.integers(olo, ohi + 1))
            model = _one_op_model(schema, schema.BuiltinOperator.QUANTIZE, [
                dict(shape=[256], dtype=dtype, scale=s, zp=z),
                dict(shape=[256], dtype=out_dtype, scale=s2, zp=z2)], [0], [1])
            ref = _run_reference(model, [xq])[0]
            rp = P.requantize_params(s, z, s2, z2, out_dtype)
            assert np.array_equal(ref, P.requantize(xq, rp))
            model = _one_op_model(schema, schema.BuiltinOperator.DEQUANTIZE, [
                dict(shape=[256], dtype=dtype, scale=s, zp=z),
                dict(shape=[256], dtype="float32")], [0], [1])
            ref = _run_reference(model, [xq])[0]
            assert np.array_equal(ref.view(np.int32), P.dequantize(xq, s, z).view(np.int32))

    def test_average_pool(self, schema):
        rng = np.random.default_rng(16)
        for trial in range(12):
            dtype = ["int8", "uint8"][trial % 2]
            lo, hi = QRANGE[dtype]
            h, w, c, k, stride = 7, 6, 2, 3, 2
            same = trial % 4 < 2
            s, z = float(np.float32(10 ** rng.uniform(-2, 0))), int(rng.integers(lo, hi + 1))
            act = list(_ACT_CODE)[trial % 4]
            x = rng.integers(lo, hi + 1, size=(1, h, w, c))
            oh, ow = ((-(-h // stride), -(-w // stride)) if same
                      else ((h - k) // stride + 1, (w - k) // stride + 1))
            options = schema.Pool2DOptionsT()
            options.padding = 0 if same else 1
            options.strideH = options.strideW = stride
            options.filterHeight = options.filterWidth = k
            options.fusedActivationFunction = _ACT_CODE[act]
            model = _one_op_model(schema, schema.BuiltinOperator.AVERAGE_POOL_2D, [
                dict(shape=[1, h, w, c], dtype=dtype, scale=s, zp=z),
                dict(shape=[1, oh, ow, c], dtype=dtype, scale=s, zp=z)], [0], [1],
                schema.BuiltinOptions.Pool2DOptions, options)
            ref = _run_reference(model, [x])[0]
            pad_h = max((oh - 1) * stride + k - h, 0) // 2 if same else 0
            pad_w = max((ow - 1) * stride + k - w, 0) // 2 if same else 0
            lo_a, hi_a = P.activation_range(act, s, z, dtype)
            got = np.zeros((1, oh, ow, c), dtype=np.int64)
            for oy in range(oh):
                for ox in range(ow):
                    y0, x0 = oy * stride - pad_h, ox * stride - pad_w
                    win = x[0, max(y0, 0):min(y0 + k, h), max(x0, 0):min(x0 + k, w)]
                    total = win.astype(np.int64).sum((0, 1))
                    got[0, oy, ox] = P.clamp(
                        P.average_pool_divide(total, win.shape[0] * win.shape[1]), lo_a, hi_a)
            assert np.array_equal(ref, got), trial

    def test_concatenation(self, schema):
        rng = np.random.default_rng(17)
        options = schema.ConcatenationOptionsT()
        options.axis = 1
        for trial in range(12):
            s1, s2, so = (float(np.float32(10 ** rng.uniform(-2, 0))) for _ in range(3))
            z1, z2, zo = (int(rng.integers(0, 256)) for _ in range(3))
            if trial % 4 == 0:
                s1, z1 = so, zo
            a = np.arange(256).reshape(1, 256)
            b = rng.integers(0, 256, size=(1, 64))
            model = _one_op_model(schema, schema.BuiltinOperator.CONCATENATION, [
                dict(shape=[1, 256], dtype="uint8", scale=s1, zp=z1),
                dict(shape=[1, 64], dtype="uint8", scale=s2, zp=z2),
                dict(shape=[1, 320], dtype="uint8", scale=so, zp=zo)],
                [0, 1], [2], schema.BuiltinOptions.ConcatenationOptions, options)
            ref = _run_reference(model, [a, b])[0]
            got = np.concatenate([P.concat_rescale_uint8(a, s1, z1, so, zo),
                                  P.concat_rescale_uint8(b, s2, z2, so, zo)], axis=1)
            assert np.array_equal(ref, got), trial
        # int8 with a differing input scale: LiteRT's Prepare fails, as check_concat_int8 does.
        model = _one_op_model(schema, schema.BuiltinOperator.CONCATENATION, [
            dict(shape=[1, 2], dtype="int8", scale=0.25, zp=3),
            dict(shape=[1, 2], dtype="int8", scale=0.5, zp=0),
            dict(shape=[1, 4], dtype="int8", scale=0.5, zp=0)],
            [0, 1], [2], schema.BuiltinOptions.ConcatenationOptions, options)
        with pytest.raises(RuntimeError):
            _run_reference(model, [np.array([[1, 2]]), np.array([[3, 4]])])
        with pytest.raises(ValueError):
            P.check_concat_int8([(0.25, 3), (0.5, 0)], 0.5, 0)

    def test_conv_uint8_product_in_float32(self, schema):
        # Scales where QM(float32(s_in * s_w) / s_out) and QM(s_in * s_w / s_out) differ and
        # the accumulator below lands on different outputs: LiteRT follows the float32 product.
        si, sw, so = 0.10716873, 0.0015219771, 0.046428896
        m32 = fp.quantize_multiplier(float(np.float32(si) * np.float32(sw)) / float(np.float32(so)))
        m64 = fp.quantize_multiplier(float(np.float32(si)) * float(np.float32(sw))
                                     / float(np.float32(so)))
        accs = np.arange(-300000, 300000)
        diff = np.nonzero((fp.mbqm(accs, *m32) != fp.mbqm(accs, *m64))
                          & (np.abs(fp.mbqm(accs, *m32)) < 100))[0]
        assert m32 != m64 and diff.size > 0  # these scales separate the two formulas
        found = int(accs[diff[0]])
        options = schema.Conv2DOptionsT()
        options.padding = 1
        options.strideH = options.strideW = 1
        options.dilationHFactor = options.dilationWFactor = 1
        model = _one_op_model(schema, schema.BuiltinOperator.CONV_2D, [
            dict(shape=[1, 1, 1, 1], dtype="uint8", scale=si, zp=100),
            dict(shape=[1, 1, 1, 1], dtype="uint8", scale=sw, zp=100,
                 data=np.array([[[[101]]]])),
            dict(shape=[1], dtype="int32", scale=float(np.float32(si) * np.float32(sw)), zp=0,
                 data=np.array([found - 1])),
            dict(shape=[1, 1, 1, 1], dtype="uint8", scale=so, zp=128)],
            [0, 1, 2], [3], schema.BuiltinOptions.Conv2DOptions, options)
        ref = int(_run_reference(model, [np.array([[[[101]]]])])[0].ravel()[0])
        p = P.conv_params(si, 100, sw, 100, so, 128, "NONE", "uint8", 1)
        assert ref == int(P.conv_output(np.array([found]), p)[0])
        assert ref - 128 == int(fp.mbqm(found, *m32)) != int(fp.mbqm(found, *m64))


def test_require_skips_locally_and_fails_under_ci(monkeypatch):
    missing = "mobilegen_no_such_module_for_require_test"
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        require(missing)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        require(missing)
