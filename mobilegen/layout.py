"""Every transpose and channel packing, in one place, with the layouts in bracket notation.

TFLite stores:
  activations            [n][h][w][c]
  CONV_2D filter         [out][kh][kw][in]
  DEPTHWISE_CONV_2D      [1][kh][kw][in*dm]          (out channel oc = ic*dm + m)
  FULLY_CONNECTED        [out][in]

The GPU kernels read activations as PHWC4 ([ceil(c/4)][h][w][4], zero padded) and weights packed to
match; the simulator reads the TFLite layouts directly (numpy does not care about vector width).
"""

from __future__ import annotations

import numpy as np

C4 = 4  # channels per GPU vector


def ceil4(c: int) -> int:
    return (c + C4 - 1) // C4


def conv_filter_to_gemm(w: np.ndarray) -> np.ndarray:
    """[out][kh][kw][in] -> [kh*kw*in][out]: the right operand of an im2col matmul."""
    out_c = w.shape[0]
    return w.reshape(out_c, -1).T


def depthwise_filter_to_hwc(w: np.ndarray) -> np.ndarray:
    """[1][kh][kw][oc] -> [kh][kw][oc]."""
    return w.reshape(w.shape[1:])


def hwc_to_phwc4(x: np.ndarray) -> np.ndarray:
    """[h][w][c] -> [ceil(c/4)][h][w][4], zero padded."""
    h, w, c = x.shape
    s = ceil4(c)
    out = np.zeros((h, w, s * C4), dtype=x.dtype)
    out[:, :, :c] = x
    return out.reshape(h, w, s, C4).transpose(2, 0, 1, 3).copy()


def phwc4_to_hwc(x: np.ndarray, c: int) -> np.ndarray:
    """[ceil(c/4)][h][w][4] -> [h][w][c]."""
    s, h, w, _ = x.shape
    return x.transpose(1, 2, 0, 3).reshape(h, w, s * C4)[:, :, :c].copy()


def conv_filter_to_o4hwi4(w: np.ndarray) -> np.ndarray:
    """[out][kh][kw][in] -> [ceil(out/4)][kh][kw][ceil(in/4)][o4][i4], zero padded (the GPU layout)."""
    o, kh, kw, i = w.shape
    so, si = ceil4(o), ceil4(i)
    p = np.zeros((so * C4, kh, kw, si * C4), dtype=w.dtype)
    p[:o, :, :, :i] = w
    return p.reshape(so, C4, kh, kw, si, C4).transpose(0, 2, 3, 4, 1, 5).copy()


def depthwise_filter_to_c4hw4(w: np.ndarray) -> np.ndarray:
    """[1][kh][kw][oc] -> [ceil(oc/4)][kh][kw][4], zero padded (the GPU layout)."""
    _, kh, kw, oc = w.shape
    s = ceil4(oc)
    p = np.zeros((kh, kw, s * C4), dtype=w.dtype)
    p[:, :, :oc] = w[0]
    return p.reshape(kh, kw, s, C4).transpose(2, 0, 1, 3).copy()


def fc_weights_to_o4i4(w: np.ndarray) -> np.ndarray:
    """[out][in] -> [ceil(out/4)][ceil(in/4)][o4][i4], zero padded (the GPU layout)."""
    o, i = w.shape
    so, si = ceil4(o), ceil4(i)
    p = np.zeros((so * C4, si * C4), dtype=w.dtype)
    p[:o, :i] = w
    return p.reshape(so, C4, si, C4).transpose(0, 2, 1, 3).copy()


def pad_vector(v: np.ndarray) -> np.ndarray:
    """[c] -> [ceil(c/4)*4], zero padded (biases, per-channel multipliers)."""
    out = np.zeros(ceil4(v.shape[0]) * C4, dtype=v.dtype)
    out[: v.shape[0]] = v
    return out


# Which packing `extract --layout gpu` applies to a constant, by the role it plays in its op.
GPU_LAYOUTS = {
    "conv_filter": ("[ceil(out/4)][kh][kw][ceil(in/4)][o4][i4]", conv_filter_to_o4hwi4),
    "depthwise_filter": ("[ceil(c/4)][kh][kw][c4]", depthwise_filter_to_c4hw4),
    "fc_weights": ("[ceil(out/4)][ceil(in/4)][o4][i4]", fc_weights_to_o4i4),
    "bias": ("[ceil(out/4)*4]", pad_vector),
}
TFLITE_LAYOUTS = {
    "conv_filter": "[out][kh][kw][in]",
    "depthwise_filter": "[1][kh][kw][in*dm]",
    "fc_weights": "[out][in]",
    "bias": "[out]",
}
