"""Quantized SOFTMAX (int8 -> int8, uint8 -> uint8), bit-exact with LiteRT's reference kernel.

Prepare: tflite/kernels/activations.cc SoftmaxPrepare<kReference> with
         tflite/kernels/internal/quantization_util.cc PreprocessSoftmaxScaling and
         CalculateInputRadius.
Eval:    tflite/kernels/internal/reference/softmax.h Softmax<InputT, OutputT> (quantized), built on
         gemmlowp fixedpoint.h exp_on_negative_values and common.h GetReciprocal.

Output quantization is fixed by the kernel: scale 1/256 with zero point -128 (int8) or 0 (uint8);
the kernel adds numeric_limits<OutputT>::min() and never reads the output tensor's zero point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mobilegen.numerics.fixedpoint import (
    exp_on_negative_values,
    get_reciprocal,
    mbqm,
    quantize_multiplier,
    rdbpot,
    srdhm,
    wrap_int32,
)

# exp() input is FixedPoint<int32, 5> (Q5.26): input differences down to -32 after beta scaling.
SCALED_DIFF_INTEGER_BITS = 5
# The sum of exps is accumulated as FixedPoint<int32, 12> (Q12.19).
ACCUMULATION_INTEGER_BITS = 12
# CalculateInputRadius' default: a signed 32-bit raw value has 31 magnitude bits.
_TOTAL_SIGNED_BITS = 31
# PreprocessSoftmaxScaling caps the real multiplier so it still fits a Q0.31 multiplier.
_MAX_REAL_MULTIPLIER = float((1 << 31) - 1)

_OUTPUT_RANGES = {"int8": (-128, 127), "uint8": (0, 255)}
OUTPUT_SCALE = 1.0 / 256.0


def _dtype_name(dtype) -> str:
    name = np.dtype(dtype).name
    if name not in _OUTPUT_RANGES:
        raise ValueError(f"softmax: quantized type must be int8 or uint8, got {name}")
    return name


@dataclass(frozen=True)
class SoftmaxParams:
    """Resolved integers of SoftmaxPrepare (reference kernel)."""

    input_multiplier: int  # Q0.31 multiplier of beta * input_scale * 2^26
    input_left_shift: int  # >= 0
    diff_min: int  # x - max(x) below this contributes exp = 0 and outputs qmin
    output_min: int  # numeric_limits<OutputT>::min(): -128 (int8) / 0 (uint8); also the zero point
    output_max: int  # numeric_limits<OutputT>::max()
    output_bits: int  # 8 * sizeof(OutputT)


def softmax_params(input_scale: float, beta: float, in_dtype, out_dtype) -> SoftmaxParams:
    """SoftmaxPrepare for int8/uint8 input on the reference kernel.

    beta and input_scale are float32 fields of the model; they are rounded to float32 here, then
    widened to double as the C++ does:
      real = min(double(beta) * double(input_scale) * 2^(31 - 5), 2^31 - 1)
      (M, left_shift) = QuantizeMultiplierGreaterThanOne(real)   -- aborts unless real > 1
      diff_min = -floor((2^5 - 1) * 2^(31 - 5) / 2^left_shift)
    Raises ValueError where LiteRT aborts (real <= 1, i.e. beta * input_scale <= 2^-26, or a
    non-finite / non-positive scale or beta) and for unsupported type combinations.
    """
    in_name = _dtype_name(in_dtype)
    out_name = _dtype_name(out_dtype)
    if in_name != out_name:
        raise ValueError(f"softmax: {in_name} input needs {in_name} output, got {out_name}")
    beta64 = float(np.float32(beta))
    scale64 = float(np.float32(input_scale))
    if not (np.isfinite(beta64) and np.isfinite(scale64)):
        raise ValueError("softmax: non-finite beta or input scale")
    real = min(beta64 * scale64 * float(1 << (31 - SCALED_DIFF_INTEGER_BITS)),
               _MAX_REAL_MULTIPLIER)
    if not real > 1.0:
        # QuantizeMultiplierGreaterThanOne: TFLITE_CHECK_GT(double_multiplier, 1.) -> abort.
        raise ValueError(
            f"softmax: beta * input_scale = {beta64 * scale64!r} is too small (<= 2^-26); "
            "LiteRT aborts on this model (degenerate input scale)")
    multiplier, left_shift = quantize_multiplier(real)
    # CalculateInputRadius, in double as the non-emulated build computes it.
    max_input_rescaled = (1.0 * ((1 << SCALED_DIFF_INTEGER_BITS) - 1)
                          * float(1 << (_TOTAL_SIGNED_BITS - SCALED_DIFF_INTEGER_BITS))
                          / float(1 << left_shift))
    diff_min = -int(np.floor(max_input_rescaled))
    lo, hi = _OUTPUT_RANGES[out_name]
    return SoftmaxParams(input_multiplier=multiplier, input_left_shift=left_shift,
                         diff_min=diff_min, output_min=lo, output_max=hi, output_bits=8)


def softmax_apply(x: np.ndarray, params: SoftmaxParams) -> np.ndarray:
    """Reference quantized Softmax over the last axis of x (raw int8/uint8 values).

    Returns an array of x's shape in the output type (int8 or uint8, chosen by params).
    Raises ValueError where the kernel's TFLITE_CHECK(0 <= exponent <= 31) would abort: a row
    whose sum of exps reaches 512 (hundreds of values tied at the row maximum).
    """
    x = np.asarray(x)
    if x.ndim < 1:
        raise ValueError("softmax: input needs at least one dimension")
    out_dtype = np.int8 if params.output_min < 0 else np.uint8
    if x.shape[-1] == 0:
        return np.zeros(x.shape, dtype=out_dtype)
    values = x.astype(np.int64)
    max_in_row = values.max(axis=-1, keepdims=True)
    input_diff = values - max_in_row
    in_range = input_diff >= params.diff_min

    # Q5.26 scaled difference; out-of-range lanes are computed but masked out below (their
    # left shift may wrap, which the C++ never executes).
    scaled_diff = mbqm(np.where(in_range, input_diff, 0), params.input_multiplier,
                       params.input_left_shift)
    exp_q31 = exp_on_negative_values(scaled_diff, SCALED_DIFF_INTEGER_BITS)

    # Rescale<12>(Q0.31) is a rounding right shift by 12; int32 accumulation wraps.
    exp_accum = np.where(in_range, rdbpot(exp_q31, ACCUMULATION_INTEGER_BITS), 0)
    sum_of_exps = wrap_int32(exp_accum.sum(axis=-1, keepdims=True))

    shifted_scale, num_bits_over_unit = get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS)
    exponent = num_bits_over_unit + 31 - params.output_bits
    if np.any(exponent < 0) or np.any(exponent > 31):
        raise ValueError("softmax: sum of exps out of range (LiteRT's reference kernel aborts: "
                         "TFLITE_CHECK(0 <= exponent && exponent <= 31))")

    unsat = rdbpot(srdhm(shifted_scale, exp_q31), exponent)
    out = np.clip(unsat + params.output_min, params.output_min, params.output_max)
    out = np.where(in_range, out, params.output_min)
    return out.astype(out_dtype)


def softmax_quantized(x: np.ndarray, input_scale: float, beta: float, in_dtype,
                      out_dtype) -> np.ndarray:
    """softmax_params + softmax_apply: quantized softmax over the last axis of x."""
    return softmax_apply(x, softmax_params(input_scale, beta, in_dtype, out_dtype))
