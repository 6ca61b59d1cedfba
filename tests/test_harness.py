"""The tests' own comparison (harness.tensor_mismatches) can fail where it must."""

from __future__ import annotations

import numpy as np

from tests.harness import tensor_mismatches


def _problems(a, b, rtol=1e-5):
    return tensor_mismatches({0: np.asarray(a)}, {0: np.asarray(b)}, {0: "t"}, ("got", "want"), rtol)


def test_floats_within_and_beyond_tolerance():
    assert _problems(np.float32([1.0, 2.0]), np.float32([1.0, 2.0 + 1e-5])) == []
    assert _problems(np.float32([1.0, 2.0]), np.float32([1.0, 2.1])) == ["t: relative error 0.0476 > 1e-05"]


def test_non_finite_values_never_pass_silently():
    # NaN > rtol is False: a plain relative error would let these through.
    assert _problems(np.float32([1.0, np.nan]), np.float32([1.0, 2.0])) == ["t: non-finite values differ (1 vs 0)"]
    assert _problems(np.float32([1.0, 2.0]), np.float32([np.nan, 2.0])) == ["t: non-finite values differ (0 vs 1)"]
    assert _problems(np.float32([np.inf, 2.0]), np.float32([-np.inf, 2.0])) == ["t: non-finite values differ (1 vs 1)"]
    assert _problems(np.float32([np.nan, 2.0]), np.float32([np.nan, 2.0])) == []
    assert _problems(np.float32([np.inf, 2.0]), np.float32([np.inf, 3.0])) == ["t: relative error 0.333 > 1e-05"]


def test_integers_exact():
    assert _problems(np.int8([1, -128]), np.int8([1, -128])) == []
    assert _problems(np.int8([1, -128]), np.int8([1, -127])) == ["t: max 1 LSB, 1/2 differ"]
    assert _problems(np.int8([1]), np.uint8([1])) == ["t: got int8[1] vs want uint8[1]"]
