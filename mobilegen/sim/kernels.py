"""numpy kernels, one per plan kernel, executing the plan's resolved parameters.

Activations are [n][h][w][c] numpy arrays in the tensor's own dtype: n = 1 for Simulator.run, n
images at once for Simulator.run_batch (the graph's batch-1 axis carries the images). Every kernel
computes each image exactly as it does alone: integer arithmetic is exact whatever the batch, and
float reductions keep each image's own order (per-image BLAS calls, per-image sums).

Integer kernels accumulate exactly: convolutions run as matmuls on float32 operands split along
the reduction so that every partial sum stays below 2^24 (exact in float32 whatever order BLAS adds
in), then sum the partial results in int64. Everything after the accumulator is int64 numpy on the
numerics helpers (the output stage's MultiplyByQuantizedMultiplier fused: requantize_in_place).
"""

from __future__ import annotations

import numpy as np

from mobilegen.numerics import params as P
from mobilegen.numerics.fixedpoint import INT32_MAX, INT32_MIN, mbqm
from mobilegen.numerics.softmax import softmax_apply
from mobilegen.plan import (
    Activation,
    Add,
    Concat,
    ConstantKernel,
    Conv2D,
    DepthwiseConv2D,
    Dequantize,
    FullyConnected,
    Mean,
    OutputStage,
    Pad,
    Pool2D,
    Quantize,
    Reshape,
    Softmax,
    Window,
)

_F32_EXACT = 1 << 24  # integers up to this magnitude are exact in float32
_SRDHM_NUDGE = 1 << 30  # SaturatingRoundingDoublingHighMul's rounding: one half in Q31 after the doubling

# Offsets (x - zero point) of a quantized input never exceed the storage range width.
_MAX_OFFSET = {"int8": 255, "uint8": 255}


def _axis_taps(k: int, dil: int, stride: int, pad: int, n_in: int, n_out: int):
    """For each filter offset along one axis that reads the input at all, yield
    (offset, output slice, input slice): the outputs whose tap lands inside the input and the
    input positions they read. Taps in the padding are skipped, as the reference kernels do, so a
    huge window over a small input costs only its in-bounds taps."""
    first = max(0, -(-(pad - (n_out - 1) * stride) // dil))  # first tap any output sees in range
    last = min(k - 1, (n_in - 1 + pad) // dil)
    for t in range(first, last + 1):
        off = t * dil - pad  # input coordinate read by output 0
        lo = max(0, -(off // stride))  # ceil(-off / stride)
        hi = min(n_out - 1, (n_in - 1 - off) // stride)
        if hi >= lo:
            yield t, slice(lo, hi + 1), slice(lo * stride + off, hi * stride + off + 1, stride)


def _taps(x: np.ndarray, win: Window):
    """Yield (ky, kx, output index (all images, rows, cols), input view [n][rows][cols][c]) for
    every in-bounds tap of x [n][h][w][c]."""
    rows = list(_axis_taps(win.k_h, win.dil_h, win.stride_h, win.pad_top, win.in_h, win.out_h))
    cols = list(_axis_taps(win.k_w, win.dil_w, win.stride_w, win.pad_left, win.in_w, win.out_w))
    for ky, oy, iy in rows:
        for kx, ox, ix in cols:
            yield ky, kx, (slice(None), oy, ox), x[:, iy, ix, :]


def _im2col(x: np.ndarray, win: Window) -> np.ndarray:
    """[n][oh*ow][kh*kw*c] from x [n][h][w][c], matching filters flattened from [out][kh][kw][in];
    taps in the padding read 0 (callers pass zero-point-free offsets, so 0 contributes nothing)."""
    n = x.shape[0]
    if win.k_h == win.k_w == win.stride_h == win.stride_w == 1 and win.pad_top == win.pad_left == 0:
        return x.reshape(n, -1, x.shape[-1])
    cols = np.zeros((n, win.out_h, win.out_w, win.k_h * win.k_w, x.shape[-1]), x.dtype)
    for ky, kx, out, v in _taps(x, win):
        cols[out + (ky * win.k_w + kx,)] = v
    return cols.reshape(n, win.out_h * win.out_w, -1)


def requantize_in_place(acc: np.ndarray, multiplier, shift, zero_point=0) -> np.ndarray:
    """mbqm(acc, multiplier, shift) + zero_point (numerics.fixedpoint), bit for bit, in fewer
    numpy passes; reuses `acc` when it is int64. The output stage runs over every activation, so this is the
    simulator's hottest integer code. The fused form holds when no left shift applies (shift <= 0)
    and acc lies in int32 (mbqm's wrap is then the identity), and no multiplier is INT32_MIN (the
    one SRDHM overflow; QuantizeMultiplier gives M in [2^30, 2^31) or 0). Otherwise: mbqm itself.
      SRDHM:  (acc * M + 2^30) >> 31
      RDBPOT: (x + half - (x < 0 and e > 0)) >> e, half = 2^e / 2: nearest, halves away from 0
    and the zero point rides in RDBPOT's nudge as zp * 2^e (an arithmetic shift is a floor division,
    so adding a multiple of 2^e before it adds zp after it).
    """
    m = np.asarray(multiplier, dtype=np.int64)
    e = -np.asarray(shift, dtype=np.int64)
    if (e < 0).any() or (e > 31).any() or (m == INT32_MIN).any() or acc.dtype.kind not in "iu":
        return mbqm(acc, multiplier, shift) + zero_point
    if acc.size and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
        return mbqm(acc, multiplier, shift) + zero_point
    x = acc if acc.dtype == np.int64 else acc.astype(np.int64)
    x *= m
    x += _SRDHM_NUDGE
    x >>= 31
    neg = x < 0
    if (e == 0).any():
        neg &= e > 0
    x += ((np.int64(1) << e) >> 1) + (np.asarray(zero_point, dtype=np.int64) << e)
    x -= neg
    x >>= e
    return x


def _output(acc: np.ndarray, stage: OutputStage, dtype: str) -> np.ndarray:
    """The stored value from an accumulator; consumes `acc` (callers pass a temporary)."""
    if stage.quantized:
        out = requantize_in_place(acc, stage.multiplier, stage.shift, stage.zero_point)
        return np.clip(out, stage.lo, stage.hi, out=out).astype(dtype)
    return np.clip(acc.astype(np.float32), np.float32(stage.lo), np.float32(stage.hi)).astype(dtype)


class ExactGemm:
    """int matmul [m][k] x [k][n] -> int64, exact, via float32 BLAS in reduction chunks."""

    def __init__(self, w: np.ndarray, max_offset: int):
        self.w = w.astype(np.float32)
        wmax = max(int(np.abs(w).max(initial=0)), 1)
        self.chunk = max(_F32_EXACT // (wmax * max_offset), 1)

    def __call__(self, cols: np.ndarray, bias: np.ndarray) -> np.ndarray:
        """cols @ w + bias (bias broadcasts along the rows), in int64."""
        acc = (cols[:, : self.chunk] @ self.w[: self.chunk]).astype(np.int64)
        for s in range(self.chunk, self.w.shape[0], self.chunk):
            acc += (cols[:, s : s + self.chunk] @ self.w[s : s + self.chunk]).astype(np.int64)
        acc += bias
        return acc


class ConvRunner:
    def __init__(self, k: Conv2D, in_dtype: str):
        self.k = k
        wmat = k.weights.reshape(k.weights.shape[0], -1).T  # [kh*kw*in][out]
        self.quantized = k.stage.quantized
        if self.quantized:
            self.gemm = ExactGemm(wmat, _MAX_OFFSET[in_dtype])
        else:
            self.wmat = wmat.astype(np.float64)

    def __call__(self, x: np.ndarray, out_dtype: str) -> np.ndarray:
        """x [n][h][w][c] -> [n][oh][ow][oc]."""
        k, win = self.k, self.k.win
        n = x.shape[0]
        if self.quantized:
            # Work on offsets so that padding is 0: out-of-bounds taps contribute nothing, as the
            # reference kernels skip them. Exact, so all images share one [n*oh*ow][K] matmul.
            xs = np.subtract(x, np.float32(k.in_zp), dtype=np.float32)
            cols = _im2col(xs, win)
            acc = self.gemm(cols.reshape(n * cols.shape[1], -1), k.bias)
        else:
            # [n][oh*ow][K] @ [K][oc]: numpy's matmul calls BLAS once per image on that image's
            # [oh*ow][K] matrix, so each image's float sums are those it gets alone.
            cols = _im2col(x.astype(np.float64), win)
            acc = (cols[0] if n == 1 else cols) @ self.wmat + k.bias
        return _output(acc, k.stage, out_dtype).reshape(n, win.out_h, win.out_w, win.out_c)


def depthwise(k: DepthwiseConv2D, x: np.ndarray, out_dtype: str) -> np.ndarray:
    win = k.win
    q = k.stage.quantized
    # Exact in int32: |offset * weight| <= 255 * 127 per tap.
    xs = np.subtract(x, k.in_zp, dtype=np.int32) if q else x.astype(np.float64)
    if k.depth_multiplier > 1:  # output channel ic*dm + m reads input channel ic
        xs = np.repeat(xs, k.depth_multiplier, axis=-1)
    acc = np.zeros((x.shape[0], win.out_h, win.out_w, win.out_c), xs.dtype)
    prod = np.empty_like(acc)  # one buffer for every tap's products
    for ky, kx, out, v in _taps(xs, win):
        p = prod[out]
        acc[out] += np.multiply(v, k.weights[ky, kx], out=p)
    acc += k.bias
    return _output(acc, k.stage, out_dtype)


def fully_connected(k: FullyConnected, x: np.ndarray, out_dtype: str, n: int = 1) -> np.ndarray:
    """x holding n images -> [n][units] (n = 1: [units], as the batch-1 graph flattens it)."""
    if k.stage.quantized:
        xs = x.reshape(n, -1) if n > 1 else x.reshape(-1)
        acc = (xs.astype(np.int64) - k.in_zp) @ k.weights.T.astype(np.int64) + k.bias  # exact
        return P.fc_output(acc, k.fc).astype(out_dtype)
    w = k.weights.T.astype(np.float64)
    if n == 1:
        acc = x.reshape(-1).astype(np.float64) @ w + k.bias
    else:
        # [n][1][in] @ [in][units]: one vector-matrix BLAS call per image, as for a single image.
        acc = (x.reshape(n, 1, -1).astype(np.float64) @ w).reshape(n, -1) + k.bias
    return _output(acc, k.stage, out_dtype)


def pool(k: Pool2D, x: np.ndarray, out_dtype: str) -> np.ndarray:
    win = k.win
    quantized = np.dtype(out_dtype).kind in "iu"
    shape = (x.shape[0], win.out_h, win.out_w, win.out_c)
    if k.kind == "max":
        dtype = np.int32 if quantized else np.float32
        out = np.full(shape, np.iinfo(np.int32).min if quantized else -np.inf, dtype)
        for _, _, o, v in _taps(x.astype(dtype), win):
            np.maximum(out[o], v, out=out[o])
        return np.clip(out, k.lo, k.hi).astype(out_dtype)
    total = np.zeros(shape, np.int64 if quantized else np.float64)
    count = np.zeros((1, win.out_h, win.out_w, 1), np.int64)  # in-bounds taps per output position
    for _, _, o, v in _taps(x.astype(total.dtype), win):
        total[o] += v
        count[o] += 1
    if quantized:
        out = P.average_pool_divide(total, count)
    else:
        out = (total / count).astype(np.float32)
    return np.clip(out, k.lo, k.hi).astype(out_dtype)


def mean(k: Mean, x: np.ndarray, out_dtype: str, out_shape, n: int = 1) -> np.ndarray:
    if k.q is not None:
        total = x.astype(np.int64).sum(axis=(1, 2)).reshape(n, -1)  # exact in any order
        return P.mean_from_sums(total, k.q).astype(out_dtype).reshape(out_shape)
    # Float sums image by image: numpy's summation order over (h, w) follows the array's shape.
    out = np.concatenate([x[i : i + 1].astype(np.float64).sum(axis=(1, 2)) for i in range(x.shape[0])])
    return (out / (k.h * k.w)).astype(out_dtype).reshape(out_shape)


def add(k: Add, a: np.ndarray, b: np.ndarray, out_dtype: str) -> np.ndarray:
    if k.q is not None:
        return P.add_quantized(a, b, k.q).astype(out_dtype)
    s = a.astype(np.float32) + b.astype(np.float32)
    return np.clip(s, np.float32(k.lo), np.float32(k.hi)).astype(out_dtype)


def softmax(k: Softmax, x: np.ndarray, out_dtype: str) -> np.ndarray:
    if k.q is not None:
        return softmax_apply(x, k.q).astype(out_dtype)
    xs = x.astype(np.float64)
    e = np.exp((xs - xs.max(axis=-1, keepdims=True)) * k.beta)
    return (e / e.sum(axis=-1, keepdims=True)).astype(out_dtype)


def run_kernel(k, args: list[np.ndarray], out_dtype: str, out_shape, cache: dict, n: int = 1) -> np.ndarray:
    """Execute kernel `k` on its input arrays, holding `n` images along axis 0 (out_shape is the
    batched shape: the tensor's shape with its batch 1 replaced by n)."""
    if isinstance(k, Conv2D):
        runner = cache.get(id(k))
        if runner is None:
            runner = cache[id(k)] = ConvRunner(k, args[0].dtype.name)
        return runner(args[0], out_dtype)
    if isinstance(k, DepthwiseConv2D):
        return depthwise(k, args[0], out_dtype)
    if isinstance(k, FullyConnected):
        return fully_connected(k, args[0], out_dtype, n).reshape(out_shape)
    if isinstance(k, Pool2D):
        return pool(k, args[0], out_dtype)
    if isinstance(k, Mean):
        return mean(k, args[0], out_dtype, out_shape, n)
    if isinstance(k, Add):
        return add(k, args[0], args[1], out_dtype)
    if isinstance(k, Pad):
        return np.pad(args[0], k.paddings, constant_values=k.value).astype(out_dtype)
    if isinstance(k, Concat):
        parts = [a if q is None else P.concat_rescale_uint8(a, *q) for a, q in zip(args, k.requant)]
        return np.concatenate(parts, axis=k.axis).astype(out_dtype)
    if isinstance(k, Softmax):
        return softmax(k, args[0], out_dtype)
    if isinstance(k, Quantize):
        if k.requant is not None:
            return P.requantize(args[0], k.requant).astype(out_dtype)
        return P.quantize_float(args[0], k.scale, k.zero_point, out_dtype).astype(out_dtype)
    if isinstance(k, Dequantize):
        return (k.scale * (args[0].astype(np.float64) - k.zero_point)).astype(out_dtype)
    if isinstance(k, Reshape):
        return args[0].reshape(out_shape)
    if isinstance(k, Activation):
        if k.q is not None:
            return P.relu_quantized(args[0], k.q).astype(out_dtype)
        return np.clip(args[0], np.float32(k.lo), np.float32(k.hi)).astype(out_dtype)
    if isinstance(k, ConstantKernel):
        return k.value
    raise TypeError(f"no simulator kernel for {k.name}")
