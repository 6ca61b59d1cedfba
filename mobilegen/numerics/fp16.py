"""fp16 storage, the one definition every fp16 path follows (plan, export, simulator, both engine
backends, the GLSL kernels).

At precision fp16 every float value the engine *stores* is an IEEE binary16 number: float weights
and biases in the weights blob, the graph's float input once uploaded, and every float tensor a
kernel writes. Kernels still compute in float32 (GLSL highp) and round their results once, when
they store them: to nearest, ties to even, binary16 subnormals kept, magnitudes from 65520 up
becoming infinity. That is numpy's float32 -> float16 cast, the engine's float_to_half (half.h)
and packHalf2x16 as Mesa implements it (a GPU driver that rounds otherwise is off by at most one
unit in the last place, within the tolerance of the fp16 tests).
Values stay float32 wherever they are seen (API, dumps, simulator): fp16 numbers widened exactly.

Storage is per tensor: a precision plan may keep chosen float tensors in float32
(plan.half_storage_plan's keep_fp32, Plan.stores_half). A kept tensor is stored unrounded; the
kernel writing it keeps its float weights and biases in float32 too (a kernel's constants are
stored at its output tensor's precision); kernels convert each input from its own storage, so an
ADD or CONCATENATION may read one float16 and one float32 tensor. A RESHAPE's output shares its
input's storage (plan.storage_groups).
"""

from __future__ import annotations

import numpy as np


def round_to_half(x) -> np.ndarray:
    """float32 array of `x` rounded to the nearest binary16 value (ties to even)."""
    return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float32)


def to_half(x: np.ndarray) -> np.ndarray:
    """`x` as a float16 array; its values must already be binary16 numbers (round_to_half)."""
    h = np.asarray(x, dtype=np.float32).astype(np.float16)
    if not np.array_equal(h.astype(np.float32), x, equal_nan=True):
        raise ValueError("value is not a binary16 number: round it with round_to_half first")
    return h
