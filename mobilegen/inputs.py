"""Model inputs from .npy files or images, and top-K readout of outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mobilegen.dump import load_npy
from mobilegen.errors import UserInputError
from mobilegen.ir.graph import Tensor
from mobilegen.numerics.fixedpoint import round_half_away

# MobileNet preprocessing: pixels in [0, 255] map to [-1, 1].
DEFAULT_MEAN = 127.5
DEFAULT_STD = 127.5
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff")


def load_input(path: Path, t: Tensor, mean: float = DEFAULT_MEAN, std: float = DEFAULT_STD) -> np.ndarray:
    """An array for input tensor `t` from a .npy file (exact shape and dtype, batch dim optional)
    or an image (decoded, resized, normalized, quantized per `t`)."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: no such file" + (" (it is a directory)" if path.is_dir() else ""))
    if path.suffix.lower() == ".npy":
        x = load_npy(path)
        if tuple(x.shape) == tuple(t.shape[1:]) and t.shape[:1] == (1,):
            x = x[None]
        if tuple(x.shape) != tuple(t.shape) or x.dtype != np.dtype(t.dtype):
            raise UserInputError(
                f"{path}: array is {x.dtype}{list(x.shape)}; the model's input {t.describe()} expects {t.dtype}{list(t.shape)}"
            )
        return x
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return image_to_input(path, t, mean, std)
    raise UserInputError(f"{path}: expected a .npy array or an image ({', '.join(IMAGE_SUFFIXES)})")


def image_to_input(path: Path, t: Tensor, mean: float, std: float) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if len(t.shape) != 4 or t.shape[0] != 1 or t.shape[3] not in (1, 3):
        raise UserInputError(f"an image needs a [1][h][w][1 or 3] model input; the input is {t.describe()}")
    _, h, w, c = t.shape
    try:
        with Image.open(path) as im:
            im = im.convert("RGB" if c == 3 else "L").resize((w, h), Image.Resampling.BILINEAR)
            px = np.asarray(im, dtype=np.float32).reshape(1, h, w, c)
    # PIL reports malformed files as OSError, SyntaxError (broken PNG chunks), ValueError or EOFError.
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        raise UserInputError(f"{path}: cannot decode image ({e})") from None
    x = (px - np.float32(mean)) / np.float32(std)
    if t.dtype == "float32":
        return x
    if t.dtype in ("int8", "uint8") and t.quant is not None:
        info = np.iinfo(t.dtype)
        q = round_half_away(x / np.float32(t.quant.s)) + t.quant.zp
        return np.clip(q, info.min, info.max).astype(t.dtype)
    raise UserInputError(f"cannot feed an image to input {t.describe()}")


def dequantize(x: np.ndarray, t: Tensor) -> np.ndarray:
    if t.quant is None or x.dtype.kind == "f":
        return x.astype(np.float64)
    return t.quant.s * (x.astype(np.float64) - t.quant.zp)


def read_labels(path: Path) -> list[str]:
    """Class names, one per line (UTF-8). Blank lines at the end of the file are ignored; a blank
    line between labels is an error naming the line, since it would shift every later class."""
    try:
        labels = Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise UserInputError(f"{path}: labels must be UTF-8 text, one per line") from None
    except OSError as e:
        raise UserInputError(f"{path}: cannot read labels ({e.strerror or e})") from None
    empty = first_empty_label(labels)
    if empty is not None:
        raise UserInputError(f"{path}:{empty}: empty label; expected one class name per line")
    return labels


def first_empty_label(labels: list[str]) -> int | None:
    """Drop blank lines at the end of `labels` (in place); the 1-based line number of the first
    blank line left between labels, else None. One rule for labels files and metadata labels."""
    while labels and not labels[-1].strip():
        labels.pop()
    return next((n for n, label in enumerate(labels, 1) if not label.strip()), None)


def load_labels(path: Path | None, n: int) -> list[str]:
    """`n` class names from `path` (read_labels), or "0".."n-1" without a file."""
    if path is None:
        return [str(i) for i in range(n)]
    labels = read_labels(path)
    if len(labels) < n:
        raise UserInputError(f"{path}: {len(labels)} labels for {n} classes")
    return labels[:n]


def top_k(scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    flat = scores.reshape(-1)
    order = np.argsort(-flat, kind="stable")[: max(k, 0)]
    return [(int(i), float(flat[i])) for i in order]
