"""Per-op parameter derivations (what each LiteRT kernel's Prepare computes) and the small
vectorized output stages that use them, for int8 / uint8 models on the reference kernels
(OpResolverType.BUILTIN_REF of ai-edge-litert 2.3.0).

Every `*_params` function returns a frozen dataclass of resolved Python ints (per-channel values
as tuples) that can be handed to shader templates as-is. The few kernels that really compute in
floating point (FULLY_CONNECTED's double rescale, uint8 CONCATENATION's float rescale, QUANTIZE,
DEQUANTIZE) keep that float, rounded exactly as the kernel rounds it, and say so.

Scales arrive as Python floats read from the model's float32 fields; they are rounded to float32
first (`_f32`) so that passing a double that is not a float32 value still reproduces what the
kernel sees. Errors that LiteRT reports at Prepare (or aborts on) raise ValueError.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mobilegen.numerics.fixedpoint import (
    mbqm,
    quantize_multiplier,
    round_half_away,
    wrap_int32,
)

_QRANGE = {"int8": (-128, 127), "uint8": (0, 255)}
_ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT")

# ADD / SUB rescale both 8-bit inputs to a common scale with 20 fractional bits of headroom.
ADD_LEFT_SHIFT = 20
# FULLY_CONNECTED/conv uint8 Prepare rejects a bias scale off by more than this (relative to the
# output scale) from input_scale * filter_scale.
_BIAS_SCALE_TOLERANCE = 0.02


def _f32(x) -> np.float32:
    return np.float32(x)


def _d(x) -> float:
    """A float32 model field widened to a C double."""
    return float(np.float32(x))


def _qrange(dtype) -> tuple[int, int]:
    name = np.dtype(dtype).name
    if name not in _QRANGE:
        raise ValueError(f"expected int8 or uint8, got {name}")
    return _QRANGE[name]


def _check_scale(name: str, scale) -> None:
    s = np.asarray(scale, dtype=np.float32)
    if not (np.all(np.isfinite(s)) and np.all(s > 0)):
        raise ValueError(f"{name} must be positive and finite, got {scale!r}")


def _qm_smaller_than_one_exp(real: float) -> tuple[int, int]:
    """QuantizeMultiplierSmallerThanOneExp: aborts unless 0 <= real < 1 and the shift is <= 0."""
    if not 0.0 <= real < 1.0:
        raise ValueError(f"multiplier {real!r} must be in [0, 1) (LiteRT aborts)")
    m, e = quantize_multiplier(real)
    if e > 0:
        raise ValueError(f"multiplier {real!r} rounds up to 1.0 (LiteRT aborts)")
    return m, e


# --------------------------------------------------------------------------------------------
# Fused activations
# --------------------------------------------------------------------------------------------

def activation_range(act: str, scale: float, zp: int, dtype) -> tuple[int, int]:
    """CalculateActivationRangeQuantized (tflite/kernels/kernel_util.cc).

    Bounds are quantized in float32 as the C++ does: q = zp + int(roundf(f / scale)) with f and
    scale floats, then intersected with the type range. NONE (and TANH / SIGN_BIT, which the
    function does not handle) give the full type range; RELU keeps qmax.
    """
    qmin, qmax = _qrange(dtype)
    act = act.upper()
    if act not in _ACTIVATIONS:
        raise ValueError(f"unknown fused activation {act!r}")
    _check_scale("output scale", scale)

    def quantize_bound(f: float) -> int:
        q = _f32(f) / _f32(scale)  # float32 division
        r = float(round_half_away(np.float32(q)))
        # Quantize() in kernel_util.cc checks the rounded value fits int32.
        if not float(np.iinfo(np.int32).min) <= r <= float(np.iinfo(np.int32).max):
            raise ValueError(f"activation bound {f} / {scale} overflows int32")
        return int(zp) + int(r)

    if act == "RELU":
        return max(qmin, quantize_bound(0.0)), qmax
    if act == "RELU6":
        return max(qmin, quantize_bound(0.0)), min(qmax, quantize_bound(6.0))
    if act == "RELU_N1_TO_1":
        return max(qmin, quantize_bound(-1.0)), min(qmax, quantize_bound(1.0))
    return qmin, qmax


def clamp(x, lo: int, hi: int):
    """min(max(x, lo), hi) on int64 values."""
    return np.minimum(np.maximum(np.asarray(x, dtype=np.int64), lo), hi)


# --------------------------------------------------------------------------------------------
# CONV_2D / DEPTHWISE_CONV_2D
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConvQuantParams:
    """Requantization of a conv / depthwise accumulator, per output channel.

    out[c] = clamp(MBQM(acc[c] + bias[c], multipliers[c], shifts[c]) + output_offset, act_min,
    act_max) with acc = sum (w + weights_offset) * (x + input_offset).
    `shifts` use MultiplyByQuantizedMultiplier's sign convention (positive = left shift).
    """

    input_offset: int  # -input_zero_point
    weights_offset: int  # -filter_zero_point (always 0 for int8, which is symmetric)
    output_offset: int  # output_zero_point
    multipliers: tuple[int, ...]
    shifts: tuple[int, ...]
    act_min: int
    act_max: int


def conv_params(input_scale: float, input_zp: int, filter_scales, filter_zp: int,
                output_scale: float, output_zp: int, act: str, dtype, num_channels: int,
                bias_scale: float | None = None) -> ConvQuantParams:
    """PopulateConvolutionQuantizationParams (tflite/kernels/kernel_util.cc), as used by
    conv.cc and depthwise_conv.cc.

    int8 (per-channel or per-tensor filter scales):
        real[c] = double(s_in) * double(s_w[c]) / double(s_out); (M[c], e[c]) = QM(real[c]).
        The filter zero point is ignored (symmetric weights).
    uint8 (legacy per-tensor, GetQuantizedConvolutionMultipler):
        real = double(float(s_in * s_w)) / double(s_out)    -- the product is taken in float32
        and the bias scale must match s_in * s_w within 0.02 * s_out (else Prepare fails).
    """
    qmin, qmax = _qrange(dtype)
    _check_scale("input scale", input_scale)
    _check_scale("output scale", output_scale)
    _check_scale("filter scales", filter_scales)
    scales = np.atleast_1d(np.asarray(filter_scales, dtype=np.float32))
    per_channel = scales.size > 1
    if per_channel and scales.size != num_channels:
        raise ValueError(f"{scales.size} filter scales for {num_channels} channels")
    name = np.dtype(dtype).name
    if name == "uint8":
        if per_channel:
            raise ValueError("per-channel quantization needs int8 (LiteRT rejects uint8)")
        product32 = _f32(input_scale) * scales[0]  # float32 product
        if bias_scale is not None:
            diff = abs(_d(input_scale) * float(scales[0]) - _d(bias_scale))
            if not diff / _d(output_scale) <= _BIAS_SCALE_TOLERANCE:
                raise ValueError("bias scale does not match input_scale * filter_scale")
        m, e = quantize_multiplier(float(product32) / _d(output_scale))
        multipliers, shifts = (m,) * num_channels, (e,) * num_channels
        weights_offset = -int(filter_zp)
    else:
        full = np.broadcast_to(scales, (num_channels,)) if not per_channel else scales
        real = _d(input_scale) * full.astype(np.float64) / _d(output_scale)
        m, e = quantize_multiplier(real)
        multipliers, shifts = tuple(int(v) for v in m), tuple(int(v) for v in e)
        weights_offset = 0
    lo, hi = activation_range(act, output_scale, output_zp, dtype)
    assert qmin <= lo and hi <= qmax
    return ConvQuantParams(input_offset=-int(input_zp), weights_offset=weights_offset,
                           output_offset=int(output_zp), multipliers=multipliers,
                           shifts=shifts, act_min=lo, act_max=hi)


def conv_output(acc_with_bias, params: ConvQuantParams):
    """Requantize int32 accumulators (bias included) laid out [..., C]; returns int64 values."""
    out = mbqm(wrap_int32(acc_with_bias), np.asarray(params.multipliers, dtype=np.int64),
               np.asarray(params.shifts, dtype=np.int64))
    return clamp(out + params.output_offset, params.act_min, params.act_max)


# --------------------------------------------------------------------------------------------
# FULLY_CONNECTED
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FcParams:
    """FULLY_CONNECTED on the reference kernel (int8 per-tensor / per-channel, uint8).

    The reference kernel does not use a quantized multiplier: it computes
        out = clamp(int32(round(double(acc) * effective_scales[c])) + output_offset)
    with round = C `round` (half away from zero) and
        effective_scales[c] = double(s_in) * double(s_w[c]) / double(s_out)
    so `effective_scales` are exact doubles (Python floats), not approximations.
    """

    input_offset: int
    weights_offset: int  # -filter zero point; the per-channel kernel never applies it
    output_offset: int
    effective_scales: tuple[float, ...]  # one per output unit
    act_min: int
    act_max: int
    per_channel: bool


def fc_params(input_scale: float, input_zp: int, filter_scales, filter_zp: int,
              output_scale: float, output_zp: int, act: str, dtype,
              num_units: int) -> FcParams:
    """FullyConnected Prepare + the reference Eval paths (tflite/kernels/fully_connected.cc,
    reference/integer_ops/fully_connected.h FullyConnected / FullyConnectedPerChannel with
    scales, reference/fully_connected.h uint8 FullyConnected with scales).

    Per-channel filter scales (int8 only) select FullyConnectedPerChannel, which assumes
    symmetric weights; per-tensor int8 and uint8 subtract the filter zero point.
    """
    _qrange(dtype)
    _check_scale("input scale", input_scale)
    _check_scale("output scale", output_scale)
    _check_scale("filter scales", filter_scales)
    scales = np.atleast_1d(np.asarray(filter_scales, dtype=np.float32))
    per_channel = scales.size > 1
    if per_channel and np.dtype(dtype).name != "int8":
        raise ValueError("per-channel FULLY_CONNECTED needs int8")
    if per_channel and scales.size != num_units:
        raise ValueError(f"{scales.size} filter scales for {num_units} units")
    full = scales if per_channel else np.broadcast_to(scales, (num_units,))
    # (double(s_in) * double(s_w)) / double(s_out), left to right as written in the kernel.
    eff = tuple(float((_d(input_scale) * float(s)) / _d(output_scale)) for s in full)
    lo, hi = activation_range(act, output_scale, output_zp, dtype)
    return FcParams(input_offset=-int(input_zp),
                    weights_offset=0 if per_channel else -int(filter_zp),
                    output_offset=int(output_zp), effective_scales=eff, act_min=lo,
                    act_max=hi, per_channel=per_channel)


def fc_output(acc_with_bias, params: FcParams):
    """Reference FULLY_CONNECTED output stage on int32 accumulators [..., units] (bias added).

    numpy float64 multiplication is IEEE round-to-nearest like the C++ double product, and
    round_half_away is C `round`; the int32 cast of an out-of-range product is undefined in C++,
    here it saturates before the clamp (only reachable with absurd scales).
    """
    acc = wrap_int32(acc_with_bias).astype(np.float64)
    scaled = acc * np.asarray(params.effective_scales, dtype=np.float64)
    scaled = np.clip(scaled, -2.0**31, 2.0**31 - 1)
    out = round_half_away(scaled) + params.output_offset
    return clamp(out, params.act_min, params.act_max)


# --------------------------------------------------------------------------------------------
# ADD
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AddParams:
    """8-bit ADD (tflite/kernels/add.cc Prepare, reference/integer_ops/add.h AddFunc and
    reference/add.h for uint8). Shifts are MBQM shifts (<= 0 here)."""

    left_shift: int
    input1_offset: int
    input1_multiplier: int
    input1_shift: int
    input2_offset: int
    input2_multiplier: int
    input2_shift: int
    output_offset: int
    output_multiplier: int
    output_shift: int
    act_min: int
    act_max: int


def add_params(input1_scale: float, input1_zp: int, input2_scale: float, input2_zp: int,
               output_scale: float, output_zp: int, act: str, dtype) -> AddParams:
    """add.cc Prepare for int8/uint8:
        twice_max = 2 * max(s1, s2)                         (float32, exact)
        real_i = double(s_i) / twice_max                    (<= 1/2)
        real_out = twice_max / double(float(2^20 * s_out))  (the product is float32, exact)
    each through QuantizeMultiplierSmallerThanOneExp (aborts unless < 1)."""
    _qrange(dtype)
    for name, s in (("input1 scale", input1_scale), ("input2 scale", input2_scale),
                    ("output scale", output_scale)):
        _check_scale(name, s)
    # float32 products as in the C++; a huge scale overflows to inf there too and is then
    # rejected by the multiplier checks (quietly: the message is the error, not a numpy warning).
    with np.errstate(over="ignore"):
        twice_max = float(np.float32(2) * max(_f32(input1_scale), _f32(input2_scale)))
        out_denominator = float(np.float32(1 << ADD_LEFT_SHIFT) * _f32(output_scale))
    m1, e1 = _qm_smaller_than_one_exp(_d(input1_scale) / twice_max)
    m2, e2 = _qm_smaller_than_one_exp(_d(input2_scale) / twice_max)
    mo, eo = _qm_smaller_than_one_exp(twice_max / out_denominator)
    lo, hi = activation_range(act, output_scale, output_zp, dtype)
    return AddParams(left_shift=ADD_LEFT_SHIFT, input1_offset=-int(input1_zp),
                     input1_multiplier=m1, input1_shift=e1, input2_offset=-int(input2_zp),
                     input2_multiplier=m2, input2_shift=e2, output_offset=int(output_zp),
                     output_multiplier=mo, output_shift=eo, act_min=lo, act_max=hi)


def add_quantized(a, b, params: AddParams):
    """Elementwise quantized ADD with numpy broadcasting (the reference broadcast loop gives
    the same per-element result). Returns int64 values in [act_min, act_max]."""
    x1 = wrap_int32((np.asarray(a, dtype=np.int64) + params.input1_offset) << params.left_shift)
    x2 = wrap_int32((np.asarray(b, dtype=np.int64) + params.input2_offset) << params.left_shift)
    s1 = mbqm(x1, params.input1_multiplier, params.input1_shift)
    s2 = mbqm(x2, params.input2_multiplier, params.input2_shift)
    raw = mbqm(wrap_int32(s1 + s2), params.output_multiplier, params.output_shift)
    return clamp(raw + params.output_offset, params.act_min, params.act_max)


# --------------------------------------------------------------------------------------------
# MEAN
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MeanParams:
    """Reference QuantizedMeanOrSum for MEAN (tflite/kernels/reduce.cc PrepareMeanOrSum /
    EvalQuantizedMean, reference/reduce.h QuantizedMeanOrSum):
        out = clamp(MBQM(int32(sum - input_zp * N), multiplier, shift) + output_zp)
    where (multiplier, shift) already fold in the 1/N (see mean_params)."""

    input_zero_point: int
    output_zero_point: int
    num_elements: int
    multiplier: int
    shift: int
    base_multiplier: int  # QM(double(s_in) / double(s_out)) before folding 1/N
    base_shift: int
    qmin: int
    qmax: int


_MAX_MEAN_FOLD_SHIFT = 32


def mean_params(input_scale: float, input_zp: int, output_scale: float, output_zp: int,
                num_elements: int, dtype) -> MeanParams:
    """(M, e) = QM(double(s_in) / double(s_out)); k = floor(log2 N), k = min(k, 32, 31 + e);
    M' = int32((int64(M) << k) / N) (truncating); e' = e - k.
    BUILTIN_REF takes this path for int8 and uint8 alike, also when input and output scale and
    zero point are equal (no float or plain-division special case)."""
    qmin, qmax = _qrange(dtype)
    _check_scale("input scale", input_scale)
    _check_scale("output scale", output_scale)
    if num_elements <= 0:
        raise ValueError("MEAN over an empty axis")
    m, e = quantize_multiplier(_d(input_scale) / _d(output_scale))
    k = int(num_elements).bit_length() - 1  # 63 - clz64(N)
    k = min(k, _MAX_MEAN_FOLD_SHIFT, 31 + e)
    folded = (m << k) // int(num_elements)
    return MeanParams(input_zero_point=int(input_zp), output_zero_point=int(output_zp),
                      num_elements=int(num_elements), multiplier=int(folded), shift=e - k,
                      base_multiplier=m, base_shift=e, qmin=qmin, qmax=qmax)


def mean_from_sums(sums, params: MeanParams):
    """Output stage of MEAN given the raw sums of the reduced values (any integer array)."""
    # The kernel accumulates in int32 (wrapping) and subtracts zp * N in int64 before the cast
    # back to int32.
    total = wrap_int32(np.asarray(sums, dtype=np.int64))
    shifted = wrap_int32(total - params.input_zero_point * params.num_elements)
    out = mbqm(shifted, params.multiplier, params.shift) + params.output_zero_point
    return clamp(out, params.qmin, params.qmax)


def mean_quantized(values, params: MeanParams, axis=(1, 2)):
    """MEAN of raw int8/uint8 `values` over `axis` (default H, W of NHWC), keep_dims=False.
    The number of reduced elements must equal params.num_elements."""
    values = np.asarray(values)
    axes = tuple(np.atleast_1d(axis).tolist())
    count = int(np.prod([values.shape[a] for a in axes]))
    if count != params.num_elements:
        raise ValueError(f"reducing {count} elements, params are for {params.num_elements}")
    return mean_from_sums(values.astype(np.int64).sum(axis=axes), params)


# --------------------------------------------------------------------------------------------
# AVERAGE_POOL_2D
# --------------------------------------------------------------------------------------------

def average_pool_divide(acc, count):
    """Rounded division of the pooled sum by the number of valid taps
    (reference/integer_ops/pooling.h and reference/pooling.h):
        acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count   (C truncation)
    i.e. halves rounded away from zero. No zero point is involved: the kernel averages raw
    values, so input and output must share scale and zero point."""
    acc = np.asarray(acc, dtype=np.int64)
    count = np.asarray(count, dtype=np.int64)
    if np.any(count <= 0):
        raise ValueError("average pool window without valid taps (LiteRT fails)")
    half = count // 2
    magnitude = (np.abs(acc) + half) // count
    return np.where(acc > 0, magnitude, -magnitude)


# --------------------------------------------------------------------------------------------
# Standalone RELU / RELU6 / RELU_N1_TO_1
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReluParams:
    """activations.cc ReluPrepare + QuantizedReluX:
        out = clamp(output_offset + MBQM(x - input_zp, multiplier, shift), act_min, act_max)"""

    input_zero_point: int
    output_offset: int
    multiplier: int
    shift: int
    act_min: int
    act_max: int


_RELU_BOUNDS = {"RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0),
                "RELU_0_TO_1": (0.0, 1.0)}


def relu_params(kind: str, input_scale: float, input_zp: int, output_scale: float,
                output_zp: int, dtype) -> ReluParams:
    """real = double(float(s_in / s_out)) -- the division is float32; (M, e) = QM(real).
    Bounds: max(qmin, zp + int(roundf(lo / s_out))), and for a finite upper bound
    min(qmax, zp + int(roundf(hi / s_out))), in float32; RELU keeps qmax."""
    qmin, qmax = _qrange(dtype)
    kind = kind.upper()
    if kind not in _RELU_BOUNDS:
        raise ValueError(f"unknown relu kind {kind!r}")
    _check_scale("input scale", input_scale)
    _check_scale("output scale", output_scale)
    m, e = quantize_multiplier(float(_f32(input_scale) / _f32(output_scale)))
    lo_f, hi_f = _RELU_BOUNDS[kind]

    def bound(f: float) -> int:
        return int(output_zp) + int(round_half_away(np.float32(_f32(f) / _f32(output_scale))))

    act_min = max(qmin, bound(lo_f))
    act_max = qmax if hi_f is None else min(qmax, bound(hi_f))
    return ReluParams(input_zero_point=int(input_zp), output_offset=int(output_zp),
                      multiplier=m, shift=e, act_min=act_min, act_max=act_max)


def relu_quantized(x, params: ReluParams):
    out = mbqm(np.asarray(x, dtype=np.int64) - params.input_zero_point, params.multiplier,
               params.shift)
    return clamp(out + params.output_offset, params.act_min, params.act_max)


# --------------------------------------------------------------------------------------------
# QUANTIZE / DEQUANTIZE
# --------------------------------------------------------------------------------------------

def quantize_float(x, scale: float, zp: int, dtype):
    """QUANTIZE float32 -> int8/uint8 (reference/quantize.h AffineQuantize):
    clamp(int(roundf(x / float(scale))) + zp), the division in float32."""
    qmin, qmax = _qrange(dtype)
    _check_scale("scale", scale)
    q = np.asarray(x, dtype=np.float32) / _f32(scale)
    return clamp(round_half_away(q) + int(zp), qmin, qmax)


@dataclass(frozen=True)
class RequantizeParams:
    """QUANTIZE between 8-bit types (quantize.cc Prepare, reference/requantize.h):
        out = clamp(MBQM(x - input_zp, multiplier, shift) + output_zp)"""

    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int
    qmin: int
    qmax: int


def requantize_params(input_scale: float, input_zp: int, output_scale: float,
                      output_zp: int, out_dtype) -> RequantizeParams:
    """(M, e) = QM(double(s_in) / double(s_out)). The kernel's int8<->uint8 same-scale XOR
    shortcut gives identical values (M = 2^30, e = 1 is an exact identity)."""
    qmin, qmax = _qrange(out_dtype)
    _check_scale("input scale", input_scale)
    _check_scale("output scale", output_scale)
    m, e = quantize_multiplier(_d(input_scale) / _d(output_scale))
    return RequantizeParams(input_zero_point=int(input_zp), output_zero_point=int(output_zp),
                            multiplier=m, shift=e, qmin=qmin, qmax=qmax)


def requantize(x, params: RequantizeParams):
    out = mbqm(np.asarray(x, dtype=np.int64) - params.input_zero_point, params.multiplier,
               params.shift)
    return clamp(out + params.output_zero_point, params.qmin, params.qmax)


def dequantize(q, scale: float, zp: int):
    """DEQUANTIZE (reference/dequantize.h): float(double(scale) * (q - zp)), as float32."""
    diff = np.asarray(q, dtype=np.int64) - int(zp)
    return (_d(scale) * diff.astype(np.float64)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# CONCATENATION
# --------------------------------------------------------------------------------------------

def concat_rescale_params(input_scale: float, input_zp: int, output_scale: float):
    """The float32 (scale, bias) of ConcatenationWithScaling for one uint8 input:
        inv = 1.f / s_out; scale = s_in * inv; bias = -zp_in * scale
    (the engine's kernels compute roundf(x * scale + bias) + zp_out with exactly these values)."""
    _check_scale("input scale", input_scale)
    _check_scale("output scale", output_scale)
    inverse_output_scale = np.float32(1.0) / _f32(output_scale)
    scale = _f32(input_scale) * inverse_output_scale
    bias = np.float32(-int(input_zp)) * scale
    return np.float32(scale), np.float32(bias)


def concat_rescale_uint8(x, input_scale: float, input_zp: int, output_scale: float,
                         output_zp: int):
    """One uint8 CONCATENATION input whose (scale, zp) differ from the output's
    (reference/concatenation.h ConcatenationWithScaling), all in float32:
        inv = 1.f / s_out; scale = s_in * inv; bias = -zp_in * scale
        out = clamp(int(roundf(x * scale + bias)) + zp_out, 0, 255)
    Inputs whose scale and zero point equal the output's are copied unchanged."""
    _check_scale("input scale", input_scale)
    _check_scale("output scale", output_scale)
    x = np.asarray(x, dtype=np.int64)
    if _f32(input_scale) == _f32(output_scale) and int(input_zp) == int(output_zp):
        return x
    scale, bias = concat_rescale_params(input_scale, input_zp, output_scale)
    return concat_rescale_apply(x, scale, bias, output_zp)


def concat_rescale_apply(x, scale, bias, output_zp: int):
    """clamp(int(roundf(x * scale + bias)) + zp_out, 0, 255) for uint8 `x` and the float32
    (scale, bias) of concat_rescale_params: two float32 roundings (no fused multiply-add)."""
    x = np.asarray(x, dtype=np.int64)
    value = x.astype(np.float32) * np.float32(scale) + np.float32(bias)
    return clamp(round_half_away(value) + int(output_zp), 0, 255)


def check_concat_int8(input_params, output_scale: float, output_zp: int) -> None:
    """int8 CONCATENATION on LiteRT requires every input to share the output's scale and zero
    point (concatenation.cc Prepare); raises ValueError otherwise. `input_params` is a list of
    (scale, zero_point)."""
    for scale, zp in input_params:
        if _f32(scale) != _f32(output_scale) or int(zp) != int(output_zp):
            raise ValueError("int8 CONCATENATION inputs must share the output scale and zero "
                             "point")
