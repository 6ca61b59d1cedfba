"""What counts as a usable image file, decided once for every dataset command.

An image is accepted when Pillow decodes it completely (a truncated JPEG fails here, not in the
middle of training), its format is one of `formats`, it is not over the byte or pixel limits
(a decompression bomb is an error, not a warning), and, where asked, not smaller than a minimum
side. The reasons are one line each, for reports.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

# Pillow format name -> the suffix a file of that format is written with. All decode through
# mobilegen.inputs / the training pipeline (their suffixes are in mobilegen.inputs.IMAGE_SUFFIXES).
FORMAT_SUFFIX = {
    "JPEG": ".jpg",
    "PNG": ".png",
    "WEBP": ".webp",
    "BMP": ".bmp",
    "GIF": ".gif",
    "PPM": ".ppm",
    "TIFF": ".tif",
}
# What `dataset fetch` accepts by default: the formats web servers actually serve photos in.
WEB_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF")
# Largest file accepted by default, in bytes.
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
# Largest image accepted, in pixels (width * height): 64 MP is a large phone photo; beyond that a
# file is far more likely a decompression bomb than a training image.
DEFAULT_MAX_PIXELS = 64 * 1024 * 1024


@dataclass(frozen=True)
class ImageFacts:
    format: str  # Pillow's name, e.g. "JPEG"
    width: int
    height: int
    mode: str  # Pillow's mode of the decoded file, e.g. "RGB", "L", "P"

    @property
    def suffix(self) -> str:
        return FORMAT_SUFFIX.get(self.format, "." + self.format.lower())


class ImageProblem(ValueError):
    """Why a file is not an acceptable image (one line)."""


def _sniff_text(head: bytes) -> str | None:
    """A friendlier reason for the most common non-image answers from web servers."""
    text = head.lstrip()[:64].lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "HTML, not an image"
    if text.startswith((b"<?xml", b"<svg")):
        return "XML/SVG, not a raster image"
    if text.startswith((b"{", b"[")):
        return "JSON, not an image"
    return None


def inspect_image(
    path: Path,
    *,
    formats: tuple[str, ...] | None = None,
    max_bytes: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int = 0,
) -> ImageFacts:
    """The facts of `path` when acceptable, else ImageProblem with the reason. formats=None accepts
    every format in FORMAT_SUFFIX; max_bytes=None does not limit the file size."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise ImageProblem("empty")
    if max_bytes is not None and size > max_bytes:
        raise ImageProblem(f"{size} bytes, over the limit of {max_bytes}")
    allowed = tuple(formats) if formats is not None else tuple(FORMAT_SUFFIX)
    try:
        with warnings.catch_warnings():
            # Pillow warns between MAX_IMAGE_PIXELS and twice that; our limit below decides instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                fmt = im.format or "unknown"
                if fmt not in allowed:
                    raise ImageProblem(f"{fmt} image; allowed: {', '.join(allowed)}")
                w, h = im.size
                if w * h > max_pixels:
                    raise ImageProblem(f"{w}x{h} pixels, over the limit of {max_pixels}")
                mode = im.mode
                im.load()
    except ImageProblem:
        raise
    except UnidentifiedImageError:  # its message repeats the whole path
        with open(path, "rb") as f:
            head = f.read(512)
        raise ImageProblem(_sniff_text(head) or "not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        raise ImageProblem(" ".join(str(e).split()) or type(e).__name__) from None
    if min(w, h) < min_side:
        raise ImageProblem(f"{w}x{h} pixels, smaller than {min_side} on a side")
    return ImageFacts(format=fmt, width=w, height=h, mode=mode)


def image_problem(path: Path, **limits) -> str | None:
    """None when `path` is acceptable under `limits` (see inspect_image), else the reason."""
    try:
        inspect_image(path, **limits)
    except ImageProblem as e:
        return str(e)
    return None
