"""The built-in dataset: procedurally rendered shapes, so `train` and `make demo` work offline.

Six classes of plane figures: circle, cross, ring, square, star and triangle, each rendered as
PNG at 128 x 128 px (the smallest training resolution, so nothing is resized), 250 images per
class by default (1500 images, about 35 MB; rendered with numpy and Pillow in 10-30 s on two
cores, no download). Every image is drawn from its own random stream, seeded by (seed, class,
index), so the dataset is identical on every machine for a seed and a larger per_class keeps the
first images. What varies, so that a network has to learn the shape and not a shortcut:

- the figure: position (it may touch the border), size (radius 26-44% of the image), rotation
  (any angle), aspect ratio (0.75-1.33 stretch), colour (any hue, kept apart from the background
  in colour and brightness), flat or gradient fill, sometimes a darker outline; within a class,
  the star's depth, the ring's hole and the cross's arm width vary too;
- the background: a two-colour gradient in a random direction, low-frequency blotches, sometimes
  stripes;
- clutter: up to three thin lines, arcs or small blobs behind the figure, sometimes one in front;
- occlusion: about one image in seven has a patch over part of the figure's edge;
- the camera: sometimes blur, pixel noise, and JPEG artefacts (quality 50-90) before saving.

The figure is always the one large object, so a person never doubts the label, while a linear
classifier on raw pixels and one on colour statistics stay near chance (tests/test_data.py).
The strength of every nuisance is a named constant below.

Written to dest/<class>/<nnnn>.png with a stamp file dest/.builtin.json holding the parameters;
a second call with the same parameters finds the stamp and renders nothing (a render goes to a
temporary folder moved into place at the end, so an interrupted one leaves nothing behind). The
default dest is $MOBILEGEN_CACHE/builtin-v1-<per_class>x<size>-s<seed> (MOBILEGEN_CACHE
defaults to ~/.cache/mobilegen).
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mobilegen.data.folder import BUILTIN_NAME  # noqa: F401  (re-exported: the DATA name "builtin")
from mobilegen.errors import UserInputError

# Bumped whenever the rendering changes, so caches of the old pictures are not reused.
RENDER_VERSION = 1
# Sorted, so that the labels a folder scan gives (sorted names) are these indices.
CLASSES = ("circle", "cross", "ring", "square", "star", "triangle")
assert list(CLASSES) == sorted(CLASSES)
DEFAULT_PER_CLASS = 250
DEFAULT_SIZE = 128
STAMP = ".builtin.json"
# Drawn at this multiple of the output size and box-filtered down: antialiased edges.
SUPERSAMPLE = 2
# How much each nuisance varies (ranges are uniform; P_ are probabilities per image). Tuned so
# that MobileNet V1 0.25/128 learns the set from scratch in minutes on two cores, while raw
# pixels and colour statistics stay near chance (tests/test_data.py).
RADIUS = (0.26, 0.44)  # the figure's radius, a fraction of the image size
ASPECT = (0.75, 1.33)  # width / height stretch before the rotation
ROTATION = 180.0  # degrees either way
MIN_CONTRAST = 120.0  # RGB distance (0-255) between the figure's colour and the background under it
MIN_LUMA = 60.0  # and the difference of their brightness (Rec. 601 luma, 0-255)
BG_GRADIENT = 60.0  # std of the gradient's second colour around the first (per channel)
BG_BLOTCH = (4.0, 20.0)  # amplitude of the low-frequency blotches
P_STRIPES, STRIPES = 0.2, (5.0, 14.0)
CLUTTER = (0, 3)  # lines, arcs and blobs behind the figure
CLUTTER_WIDTH = 2  # px, at most
P_FRONT_CLUTTER = 0.2  # one more in front of it
P_OCCLUSION, OCCLUSION = 0.15, (0.15, 0.35)  # a patch over the figure's edge; half-sides as a fraction of the radius
P_BLUR, BLUR = 0.2, (0.3, 0.8)
P_NOISE, NOISE = 0.5, (2.0, 6.0)
P_JPEG, JPEG_QUALITY = 0.2, (50, 90)
# zlib level 1: 2x faster than the default 6 for 10% larger files (pixel noise barely compresses).
PNG_LEVEL = 1
RENDER_THREADS = min(4, os.cpu_count() or 1)


@dataclass(frozen=True)
class Figure:
    """Where the figure of an image is, in output pixels."""

    cx: float
    cy: float
    radius: float
    rotation: float  # radians
    aspect: float  # width / height stretch before the rotation


def builtin_classes() -> list[str]:
    return list(CLASSES)


def cache_root() -> Path:
    """$MOBILEGEN_CACHE, or ~/.cache/mobilegen."""
    env = os.environ.get("MOBILEGEN_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mobilegen"


def default_dest(per_class: int = DEFAULT_PER_CLASS, size: int = DEFAULT_SIZE, seed: int = 0) -> Path:
    return cache_root() / f"builtin-v{RENDER_VERSION}-{per_class}x{size}-s{seed}"


def _params(per_class: int, size: int, seed: int) -> dict:
    return {"version": RENDER_VERSION, "classes": list(CLASSES), "per_class": per_class, "size": size, "seed": seed}


def _is_rendered(dest: Path, params: dict) -> bool:
    """The stamp matches and every file is there (a stamp is written only after the last file)."""
    try:
        stamp = json.loads((dest / STAMP).read_text())
    except (OSError, ValueError):
        return False
    if stamp != params:
        return False
    return all(len(list((dest / c).glob("*.png"))) == params["per_class"] for c in CLASSES)


def render_builtin(
    dest: Path | None = None,
    *,
    per_class: int = DEFAULT_PER_CLASS,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    progress=None,
) -> Path:
    """The folder of the built-in dataset with these parameters, rendered unless already there.
    progress(str), when given, hears one line before and one after a render."""
    if per_class < 2:
        raise UserInputError(f"built-in dataset: per_class {per_class}; expected at least 2")
    if size < 16:
        raise UserInputError(f"built-in dataset: size {size}; expected at least 16 px")
    dest = Path(dest).expanduser() if dest is not None else default_dest(per_class, size, seed)
    params = _params(per_class, size, seed)
    if _is_rendered(dest, params):
        return dest
    if dest.exists() and not (dest / STAMP).exists() and any(dest.iterdir()):
        raise UserInputError(f"{dest}: exists and is not a built-in dataset; choose an empty or new folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Render beside dest and move it in at the end: an interrupted render leaves no half dataset
    # that a later call would take for a finished one.
    if progress:
        progress(f"rendering the built-in dataset ({len(CLASSES)} classes x {per_class}, {size} px) into {dest}")
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        for cls in CLASSES:
            (tmp / cls).mkdir()

        def one(job: tuple[int, int]) -> None:
            label, i = job
            img = render_image(CLASSES[label], size, _rng(seed, label, i))
            img.save(tmp / CLASSES[label] / f"{i:04d}.png", compress_level=PNG_LEVEL)

        # Each image has its own random stream, so threads (Pillow and numpy release the GIL)
        # give the same files in any order.
        with ThreadPoolExecutor(RENDER_THREADS) as pool:
            list(pool.map(one, [(label, i) for label in range(len(CLASSES)) for i in range(per_class)]))
        (tmp / STAMP).write_text(json.dumps(params, indent=1) + "\n")
        if dest.exists():
            shutil.rmtree(dest)  # a stale render with other parameters, or an empty folder
        try:
            os.replace(tmp, dest)
        except OSError:
            # Another process finished the same render first: keep theirs.
            if not _is_rendered(dest, params):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if progress:
        progress(f"rendered {len(CLASSES) * per_class} images in {time.perf_counter() - start:.1f} s")
    return dest


def _rng(seed: int, label: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([RENDER_VERSION, seed, label, index]))


# -- drawing ------------------------------------------------------------------------------------------
def _outline(cls: str, rng: np.random.Generator) -> list[np.ndarray]:
    """The class's figure as polygons in unit coordinates (radius about 1, centred at 0): the
    first is filled, the following ones are holes."""
    def circle(r, n=96):
        t = np.linspace(0, 2 * math.pi, n, endpoint=False)
        return np.stack([r * np.cos(t), r * np.sin(t)], 1)

    def regular(k, start):
        t = start + 2 * math.pi * np.arange(k) / k
        return np.stack([np.cos(t), np.sin(t)], 1)

    if cls == "circle":
        return [circle(1.0)]
    if cls == "ring":
        return [circle(1.0), circle(rng.uniform(0.45, 0.68))]
    if cls == "triangle":
        return [regular(3, -math.pi / 2) * 1.1]
    if cls == "square":
        return [regular(4, math.pi / 4)]
    if cls == "star":
        inner = rng.uniform(0.36, 0.52)
        t = -math.pi / 2 + math.pi * np.arange(10) / 5
        r = np.where(np.arange(10) % 2 == 0, 1.1, 1.1 * inner)
        return [np.stack([r * np.cos(t), r * np.sin(t)], 1)]
    if cls == "cross":
        w = rng.uniform(0.26, 0.40)
        pts = [(w, 1), (w, w), (1, w), (1, -w), (w, -w), (w, -1), (-w, -1), (-w, -w), (-1, -w), (-1, w), (-w, w), (-w, 1)]
        return [np.array(pts, dtype=np.float64)]
    raise ValueError(cls)


# The background's smooth parts are computed on a coarse grid and upsampled: a fraction of the cost.
COARSE = 32


@functools.cache
def _grid(s: int) -> tuple[np.ndarray, np.ndarray]:
    """[s][s] y and x coordinates in [-0.5, 0.5] (float32)."""
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / np.float32(s - 1) - np.float32(0.5)
    return yy, xx


def _background(s: int, rng: np.random.Generator) -> np.ndarray:
    """[s][s][3] uint8: gradient + low-frequency blotches (+ stripes)."""
    from PIL import Image

    c1 = rng.uniform(0, 255, 3)
    c2 = np.clip(c1 + rng.normal(0, BG_GRADIENT, 3), 0, 255)
    a = rng.uniform(0, 2 * math.pi)
    yy, xx = _grid(COARSE)
    t = np.clip((xx * math.cos(a) + yy * math.sin(a)) + 0.5, 0, 1)[..., None]
    grid = int(rng.integers(3, 9))
    blot = rng.normal(0, 1, (grid, grid, 3)).astype(np.float32)
    blot = np.stack([np.asarray(Image.fromarray(blot[..., k], "F").resize((COARSE, COARSE), Image.Resampling.BICUBIC)) for k in range(3)], -1)
    coarse = c1 * (1 - t) + c2 * t + blot * rng.uniform(*BG_BLOTCH)
    img = Image.fromarray(np.clip(coarse, 0, 255).astype(np.uint8), "RGB").resize((s, s), Image.Resampling.BICUBIC)
    if rng.random() < P_STRIPES:
        f = rng.uniform(4, 16)
        b = rng.uniform(0, 2 * math.pi)
        yy, xx = _grid(s)
        stripes = np.float32(rng.uniform(*STRIPES)) * np.sin(np.float32(2 * math.pi * f) * (xx * np.float32(math.cos(b)) + yy * np.float32(math.sin(b))))
        return np.clip(np.asarray(img, dtype=np.float32) + stripes[..., None], 0, 255).astype(np.uint8)
    return np.asarray(img)


def _luma(c: np.ndarray) -> float:
    return float(np.dot(c, (0.299, 0.587, 0.114)))


def _colour_apart(under: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random colour at least MIN_CONTRAST from `under` (RGB) and MIN_LUMA apart in brightness,
    so the figure's edges show in every channel; black or white if none is found."""
    for _ in range(50):
        c = rng.uniform(0, 255, 3)
        if np.linalg.norm(c - under) >= MIN_CONTRAST and abs(_luma(c) - _luma(under)) >= MIN_LUMA:
            return c
    return np.zeros(3) if _luma(under) > 127 else np.full(3, 255.0)


def _clutter(draw, s: int, rng: np.random.Generator, n: int) -> None:
    """Thin lines, arcs and small blobs: structure that is not a figure."""
    for _ in range(n):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        kind = rng.integers(3)
        if kind == 0:
            x0, y0, x1, y1 = (float(v) for v in rng.uniform(0, s, 4))
            draw.line([(x0, y0), (x1, y1)], fill=colour, width=int(rng.integers(1, CLUTTER_WIDTH * SUPERSAMPLE + 1)))
        elif kind == 1:
            cx, cy = rng.uniform(0, s, 2)
            r = rng.uniform(0.1, 0.35) * s
            start = float(rng.uniform(0, 360))
            draw.arc([cx - r, cy - r, cx + r, cy + r], start, start + float(rng.uniform(40, 160)), fill=colour, width=int(rng.integers(1, CLUTTER_WIDTH * SUPERSAMPLE + 1)))
        else:
            cx, cy = rng.uniform(0, s, 2)
            rx, ry = rng.uniform(0.015, 0.06, 2) * s
            draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=colour)


def render_image(cls: str, size: int, rng: np.random.Generator):
    """One PIL RGB image of class `cls`, size x size, drawn from `rng`."""
    return draw_figure(cls, size, rng)[0]


def draw_figure(cls: str, size: int, rng: np.random.Generator):
    """(PIL RGB image, Figure): the image and where its figure is (the tests check the spread)."""
    from PIL import Image, ImageDraw, ImageFilter

    s = size * SUPERSAMPLE
    bg = _background(s, rng)
    canvas = Image.fromarray(bg, "RGB")
    _clutter(ImageDraw.Draw(canvas), s, rng, int(rng.integers(CLUTTER[0], CLUTTER[1] + 1)))

    # The figure: a mask from the class's polygons, rotated, stretched, scaled and placed.
    r = rng.uniform(*RADIUS) * s
    aspect = math.sqrt(rng.uniform(*ASPECT))
    rot = math.radians(rng.uniform(-ROTATION, ROTATION))
    margin = 0.75 * r
    cx, cy = rng.uniform(margin, s - margin, 2)
    m = np.array([[math.cos(rot), -math.sin(rot)], [math.sin(rot), math.cos(rot)]]) @ np.diag([aspect, 1 / aspect])
    mask = Image.new("L", (s, s), 0)
    md = ImageDraw.Draw(mask)
    polys = [[tuple(p) for p in poly @ m.T * r + (cx, cy)] for poly in _outline(cls, rng)]
    for k, pts in enumerate(polys):
        md.polygon(pts, fill=0 if k else 255)

    x0, x1 = int(max(cx - r, 0)), int(min(cx + r, s))
    y0, y1 = int(max(cy - r, 0)), int(min(cy + r, s))
    under = bg[y0:y1, x0:x1].reshape(-1, 3).mean(0)
    c1 = _colour_apart(under, rng)
    if rng.random() < 0.35:  # gradient fill: a second, nearby colour across the figure
        c2 = np.clip(c1 + rng.normal(0, 40, 3), 0, 255)
        a = rng.uniform(0, 2 * math.pi)
        yy, xx = _grid(COARSE)
        t = np.clip(((xx - (cx / (s - 1) - 0.5)) * math.cos(a) + (yy - (cy / (s - 1) - 0.5)) * math.sin(a)) * (s / (2 * r)) + 0.5, 0, 1)[..., None]
        coarse = Image.fromarray((c1 * (1 - t) + c2 * t).astype(np.uint8), "RGB")
        fill = coarse.resize((s, s), Image.Resampling.BILINEAR)
    else:
        fill = Image.new("RGB", (s, s), tuple(int(v) for v in c1))
    canvas.paste(fill, (0, 0), mask)
    draw = ImageDraw.Draw(canvas)
    if rng.random() < 0.3:  # a darker outline along every edge of the figure (holes too)
        dark = tuple(int(v) for v in c1 * rng.uniform(0.2, 0.6))
        for pts in polys:
            draw.polygon(pts, outline=dark, width=2 * SUPERSAMPLE)

    if rng.random() < P_OCCLUSION:  # occlusion: a patch over part of the figure's edge
        d = rng.uniform(0, 2 * math.pi)
        px, py = cx + math.cos(d) * r * rng.uniform(0.7, 1.1), cy + math.sin(d) * r * rng.uniform(0.7, 1.1)
        hw, hh = rng.uniform(*OCCLUSION, 2) * r
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.rectangle([px - hw, py - hh, px + hw, py + hh], fill=colour)
        else:
            draw.ellipse([px - hw, py - hh, px + hw, py + hh], fill=colour)
    if rng.random() < P_FRONT_CLUTTER:
        _clutter(draw, s, rng, 1)

    img = canvas.resize((size, size), Image.Resampling.BOX)
    if rng.random() < P_BLUR:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(*BLUR))))
    if rng.random() < P_NOISE:
        px = np.asarray(img, dtype=np.float32) + rng.normal(0, rng.uniform(*NOISE), (size, size, 3)).astype(np.float32)
        img = Image.fromarray(np.clip(np.rint(px), 0, 255).astype(np.uint8), "RGB")
    if rng.random() < P_JPEG:
        import io

        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)))
        buf.seek(0)
        with Image.open(buf) as j:
            img = j.convert("RGB")
    return img, Figure(float(cx) / SUPERSAMPLE, float(cy) / SUPERSAMPLE, float(r) / SUPERSAMPLE, float(rot), float(aspect) ** 2)
