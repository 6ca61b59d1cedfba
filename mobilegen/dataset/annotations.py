"""`dataset import`: Labelme JSON and labelImg Pascal VOC XML annotations -> one crop per box.

Each labelled region becomes a PNG in `OUT/<class folder>/`, and each image-level Labelme flag set
true puts the whole image in that flag's folder. Everything a file says is untrusted: labels go
through labels.LabelSet (refused ones are reported), every written path through labels.inside,
XML through defusedxml (entity declarations, the billion-laughs and external-entity attacks, are
refused), and a malformed file, field or box is reported and skipped, never a traceback.

Coordinates, as the tools that write them mean them:
- Labelme points are positions on a continuous plane where pixel column x covers [x, x+1). A
  shape's crop is the smallest pixel box holding it: floor(min) .. ceil(max). A rectangle's two
  corners may come in any order (Labelme lets you drag either way); a polygon's box is its points'
  extent; a circle is [centre, a point on the circle] and its box is centre +- radius. Points,
  lines and line strips have no area and are skipped (reported, not an error).
- VOC bndbox values are 1-based inclusive pixel indices (labelImg writes xmin >= 1): xmin=1,
  xmax=10 is the first ten columns, Pillow box (0, 0, 10, ...). xmin > xmax is inverted: skipped.
- EXIF orientation: Labelme applies it when it opens a picture, so its coordinates (and
  imageWidth/imageHeight) refer to the upright image: the crop is taken from the image after
  ImageOps.exif_transpose. labelImg (Qt's QImage) ignores it, so VOC coordinates refer to the
  stored pixels: the crop is taken from the raw image. When the annotation's size matches the
  other orientation instead (an old Labelme, a converted file), that one is used and the report
  says so; when it matches neither, the file is skipped (the coordinates would be wrong).

Boxes partly outside the image are clipped (written, reported as clipped); fully outside, empty or
inverted boxes are skipped. The margin is a fraction of the box's side added on each side, clamped
to the image. VOC `difficult` objects (ones the annotator marked hard to recognise; VOC's own
evaluation ignores them) are skipped unless keep_difficult; `truncated` ones (cut by the image
edge) are kept, the crop being their visible part, and the report marks them.

Crops are PNG whatever the source format: re-encoding a crop of a JPEG as JPEG would add a second
generation of loss, PNG keeps the box's exact pixels (what the tests check) and encodes the same
bytes every run. The source's ICC profile is kept; other metadata (EXIF included) is not.

Names are deterministic: `<stem>_<h>_<item>.png`, where h hashes the annotation file's path
relative to the source (two `img1.json` in different folders do not collide) and item is `s<i>`
for Labelme shape i, `o<i>` for VOC object i, `image` for a flag. A re-run leaves identical files
untouched (reported as unchanged).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import itertools
import json
import math
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mobilegen.dataset.imagefile import DEFAULT_MAX_PIXELS, FORMAT_SUFFIX
from mobilegen.dataset.labels import LabelError, LabelSet, inside, safe_label
from mobilegen.dataset.stream import ordered_map
from mobilegen.errors import UserInputError
from mobilegen.inputs import IMAGE_SUFFIXES

FORMATS = ("labelme", "voc")
SUFFIX = {"labelme": ".json", "voc": ".xml"}
REPORT_FILE = "import-report.json"
# Hidden work folder in OUT (train ignores hidden entries): crops are written here, then renamed.
WORK_DIR = ".mobilegen-import"
# Largest annotation file read (a Labelme JSON embeds its image as base64, so allow for a big one).
MAX_ANNOTATION_BYTES = 256 * 1024 * 1024
MAX_MARGIN = 1.0
# Characters kept in the annotation stem part of a crop's name; others become "_".
STEM_CHARS = 60
# Labelme shape types with an area, and the ones that have none (skipped without it being an error).
AREA_SHAPES = ("rectangle", "polygon", "circle", "mask")
NO_AREA_SHAPES = ("point", "points", "line", "linestrip")


@dataclass(slots=True)
class Crop:
    annotation: str  # annotation file, relative to the source
    item: str  # "s3" (Labelme shape 3), "o0" (VOC object 0), "image" (a flag)
    label: str  # as written in the file
    folder: str  # its class folder
    path: str  # the crop, relative to OUT
    box: tuple[int, int, int, int]  # the crop in the image's pixels: left, top, right, bottom (exclusive)
    clipped: bool  # the box reached outside the image and was cut to it
    status: str  # "written" or "unchanged" (identical bytes already there)
    note: str = ""  # e.g. "truncated"

    def to_json(self) -> dict:
        d = {"annotation": self.annotation, "item": self.item, "label": self.label, "folder": self.folder,
             "path": self.path, "box": list(self.box), "clipped": self.clipped, "status": self.status}
        if self.note:
            d["note"] = self.note
        return d


@dataclass(slots=True)
class Skip:
    annotation: str
    item: str | None  # None: the whole file
    label: str | None
    reason: str
    problem: bool  # True: something is wrong with the data; False: skipped by design (a point, a difficult object)

    def to_json(self) -> dict:
        return {"annotation": self.annotation, "item": self.item, "label": self.label, "reason": self.reason,
                "problem": self.problem}


@dataclass
class ImportReport:
    source: Path
    format: str
    out: Path
    files: int = 0  # annotation files read
    written: list[Crop] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (annotation, what was assumed)

    @property
    def problems(self) -> list[Skip]:
        return [s for s in self.skipped if s.problem]

    @property
    def ok(self) -> bool:
        """No file or box was skipped for a problem (points, lines, difficult objects don't count)."""
        return not self.problems

    def summary(self) -> str:
        classes = sorted({c.folder for c in self.written})
        unchanged = sum(c.status == "unchanged" for c in self.written)
        clipped = [c for c in self.written if c.clipped]
        bad_files = sum(s.item is None for s in self.problems)
        lines = [
            f"imported {len(self.written)} crop{'s' if len(self.written) != 1 else ''} into "
            f"{len(classes)} class folder{'s' if len(classes) != 1 else ''} of {self.out} from {self.files} "
            f"{self.format} file{'s' if self.files != 1 else ''}"
            + (f" ({unchanged} unchanged)" if unchanged else "")
        ]
        if clipped:
            lines.append(f"clipped to the image: {len(clipped)}")
            lines += [f"  {c.annotation} {c.item} ({c.label}): {c.path}" for c in clipped]
        if self.notes:
            lines += [f"note: {a}: {n}" for a, n in self.notes]
        if self.skipped:
            lines.append(f"skipped: {len(self.skipped)} ({bad_files} file{'s' if bad_files != 1 else ''} and "
                         f"{len(self.problems) - bad_files} boxes with problems, "
                         f"{len(self.skipped) - len(self.problems)} by design)")
            for s in self.skipped:
                where = s.annotation + (f" {s.item}" if s.item else "") + (f" ({s.label})" if s.label is not None else "")
                lines.append(f"  {where}: {s.reason}")
        lines.append(f"report: {self.out / REPORT_FILE}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "source": str(self.source),
            "format": self.format,
            "out": str(self.out),
            "files": self.files,
            "ok": self.ok,
            "classes": sorted({c.folder for c in self.written}),
            "written": [c.to_json() for c in self.written],
            "skipped": [s.to_json() for s in self.skipped],
            "notes": [{"annotation": a, "note": n} for a, n in self.notes],
        }


class _Bad(Exception):
    """A problem with one file (or one box), reported and skipped."""


# ---------------------------------------------------------------------------------------------
# What a worker returns for one annotation file: crops (PNG bytes, not yet placed) and skips.


@dataclass(slots=True)
class _Piece:
    item: str
    label: str
    box: tuple[int, int, int, int]
    clipped: bool
    png: bytes
    note: str = ""


@dataclass(slots=True)
class _FileResult:
    pieces: list[_Piece] = field(default_factory=list)
    skips: list[tuple[str | None, str | None, str, bool]] = field(default_factory=list)  # item, label, reason, problem
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Options:
    fmt: str
    images: Path | None
    margin: float
    min_side: int
    keep_difficult: bool
    out: Path


def _number(v, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Bad(f"{what}: expected a number, got {type(v).__name__} {_short(v)}")
    if not math.isfinite(v):
        raise _Bad(f"{what}: {v} is not a finite number")
    return float(v)


def _short(v) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def _round(v: float) -> int:
    return math.floor(v + 0.5)


# ---------------------------------------------------------------------------------------------
# Images


def _open_image(data: bytes | Path, what: str):
    """The decoded image (loaded), or _Bad with a one-line reason."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)
            if (im.format or "") not in FORMAT_SUFFIX:
                raise _Bad(f"{what}: {im.format} image; expected one of {', '.join(FORMAT_SUFFIX)}")
            w, h = im.size
            if w * h > DEFAULT_MAX_PIXELS:
                raise _Bad(f"{what}: {w}x{h} pixels, over the limit of {DEFAULT_MAX_PIXELS}")
            im.load()
    except _Bad:
        raise
    except UnidentifiedImageError:
        raise _Bad(f"{what}: not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        raise _Bad(f"{what}: {' '.join(str(e).split()) or type(e).__name__}") from None
    return im


def _oriented(im):
    from PIL import ImageOps

    try:
        return ImageOps.exif_transpose(im)
    except Exception:  # a malformed EXIF block: use the pixels as stored
        return im


def _png(im) -> bytes:
    """PNG bytes of `im`: RGB/RGBA/L/LA kept, palette and other modes converted; ICC kept."""
    if im.mode not in ("RGB", "RGBA", "L", "LA"):
        has_alpha = im.mode in ("PA", "RGBa", "La") or "transparency" in im.info or im.mode.endswith("A")
        im = im.convert("RGBA" if has_alpha else "RGB")
    icc = im.info.get("icc_profile")
    buf = io.BytesIO()
    kwargs = {"icc_profile": icc} if icc else {}
    im.save(buf, format="PNG", optimize=False, compress_level=6, **kwargs)
    return buf.getvalue()


def _crop(im, box_edges, opts: _Options) -> tuple[tuple[int, int, int, int], bool, bytes]:
    """(crop box, clipped, PNG bytes) for the box (left, top, right, bottom) in pixel edges;
    _Bad for an empty, inverted or outside box, or one smaller than min_side."""
    x0, y0, x1, y1 = box_edges
    if x1 < x0 or y1 < y0:
        raise _Bad(f"inverted box {list(box_edges)} (the right/bottom edge is before the left/top one)")
    if x1 == x0 or y1 == y0:
        raise _Bad(f"empty box {list(box_edges)}")
    W, H = im.size
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    if cx1 <= cx0 or cy1 <= cy0:
        raise _Bad(f"box {list(box_edges)} is outside the {W}x{H} image")
    clipped = (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1)
    mx, my = _round(opts.margin * (x1 - x0)), _round(opts.margin * (y1 - y0))
    box = (max(cx0 - mx, 0), max(cy0 - my, 0), min(cx1 + mx, W), min(cy1 + my, H))
    w, h = box[2] - box[0], box[3] - box[1]
    if min(w, h) < opts.min_side:
        raise _Bad(f"crop {w}x{h} is smaller than {opts.min_side} px on a side")
    return box, clipped, _png(im.crop(box))


def _check_size(im, declared: tuple[int | None, int | None], want_oriented: bool, what: str):
    """The image whose size the annotation's coordinates refer to, and a note when the other
    orientation had to be used. The declared size (0/None: unknown) decides."""
    raw = im
    try:
        orientation = im.getexif().get(0x0112, 1)
    except Exception:  # a malformed EXIF block: treat as upright
        orientation = 1
    upright = _oriented(im) if orientation not in (None, 1) else im
    first, second = (upright, raw) if want_oriented else (raw, upright)
    dw, dh = declared
    if not dw or not dh:
        return first, None
    if first.size == (dw, dh):
        return first, None
    if second.size == (dw, dh):
        how = "without" if want_oriented else "with"
        return second, f"the annotation's size {dw}x{dh} fits the image {how} its EXIF orientation applied; used that"
    raise _Bad(f"{what} is {first.size[0]}x{first.size[1]} but the annotation says {dw}x{dh}")


def _find_file(candidates: list[Path]) -> Path | None:
    for c in candidates:
        try:
            if c.is_file():
                return c
        except OSError:  # a name too long, say
            continue
    return None


def _with_suffixes(p: Path) -> list[Path]:
    """p, or when it has no image suffix, p with each image suffix (some VOC sets omit it)."""
    if p.suffix.lower() in IMAGE_SUFFIXES:
        return [p]
    return [p] + [p.with_name(p.name + s) for s in IMAGE_SUFFIXES]


# ---------------------------------------------------------------------------------------------
# Labelme


def _labelme(path: Path, rel: str, opts: _Options) -> _FileResult:
    res = _FileResult()
    doc = _read_json(path)
    if not isinstance(doc, dict):
        raise _Bad(f"not a Labelme file: expected a JSON object, got {type(doc).__name__}")
    shapes = doc.get("shapes")
    if not isinstance(shapes, list):
        raise _Bad("not a Labelme file: no 'shapes' list" if "shapes" not in doc
                   else f"'shapes': expected a list, got {type(shapes).__name__}")
    flags = doc.get("flags") or {}
    if not isinstance(flags, dict):
        raise _Bad(f"'flags': expected an object of name: true/false, got {type(flags).__name__}")
    declared = []
    for key in ("imageWidth", "imageHeight"):
        v = doc.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise _Bad(f"'{key}': expected a whole number of pixels, got {_short(v)}")
        declared.append(v)
    image_path, image_data = doc.get("imagePath"), doc.get("imageData")
    if image_path is not None and not isinstance(image_path, str):
        raise _Bad(f"'imagePath': expected text, got {type(image_path).__name__}")
    if image_data is not None and not isinstance(image_data, str):
        raise _Bad(f"'imageData': expected base64 text, got {type(image_data).__name__}")

    # The image: the file (its original bytes), else the embedded copy Labelme saved.
    found = None
    if image_path:
        given = Path(image_path.replace("\\", "/"))
        cands = []
        if opts.images is not None:
            cands += [opts.images / given.name]
        cands += [given if given.is_absolute() else path.parent / given]
        found = _find_file(cands)
    if found is not None:
        im = _open_image(found, f"image {image_path}")
    elif image_data:
        try:
            raw = base64.b64decode(image_data, validate=False)
        except (binascii.Error, ValueError) as e:
            raise _Bad(f"'imageData': not base64 ({e})") from None
        im = _open_image(raw, "the embedded imageData")
        if image_path:
            res.notes.append(f"image {image_path} not found; used the embedded imageData")
    else:
        if not image_path:
            raise _Bad("no imagePath and no imageData: nothing to crop from")
        where = "next to the file" + (f" and in {opts.images}" if opts.images else "")
        raise _Bad(f"image {image_path!r} not found (looked {where}) and no imageData")
    im, note = _check_size(im, tuple(declared), True, "the image")
    if note:
        res.notes.append(note)

    for name in flags:
        v = flags[name]
        if not isinstance(v, bool):
            res.skips.append(("image", str(name), f"flag {_short(name)}: expected true or false, got {_short(v)}", True))
            continue
        if not v:
            continue
        try:
            safe_label(name)
            box, clipped, png = _crop(im, (0, 0, im.size[0], im.size[1]), opts)
        except (_Bad, LabelError) as e:
            res.skips.append(("image", name, str(e), True))
            continue
        res.pieces.append(_Piece("image", name, box, clipped, png, "image-level flag"))

    for i, shape in enumerate(shapes):
        item = f"s{i}"
        label = shape.get("label") if isinstance(shape, dict) else None
        try:
            if not isinstance(shape, dict):
                raise _Bad(f"expected a shape object, got {type(shape).__name__}")
            if not isinstance(label, str):
                raise _Bad(f"'label': expected text, got {_short(label)}" if "label" in shape else "no 'label'")
            kind = shape.get("shape_type") or "polygon"  # Labelme's own default, for files from before shape_type
            if not isinstance(kind, str):
                raise _Bad(f"'shape_type': expected text, got {_short(kind)}")
            if kind in NO_AREA_SHAPES:
                res.skips.append((item, label, f"a {kind} has no area", False))
                continue
            if kind not in AREA_SHAPES:
                raise _Bad(f"unknown shape_type {_short(kind)}; expected one of {', '.join(AREA_SHAPES + NO_AREA_SHAPES)}")
            pts = _points(shape.get("points"), kind)
            safe_label(label)
            box, clipped, png = _crop(im, _labelme_box(kind, pts), opts)
        except (_Bad, LabelError) as e:
            res.skips.append((item, label if isinstance(label, str) else None, str(e), True))
            continue
        res.pieces.append(_Piece(item, label, box, clipped, png))
    return res


def _read_json(path: Path):
    data = _read_bytes(path)
    try:
        return json.loads(data)  # bytes: UTF-8/16/32, with or without a byte order mark
    except UnicodeDecodeError as e:
        raise _Bad(f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise _Bad(f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except (ValueError, RecursionError) as e:
        raise _Bad(f"not valid JSON: {type(e).__name__}") from None


def _read_bytes(path: Path) -> bytes:
    size = path.stat().st_size
    if size > MAX_ANNOTATION_BYTES:
        raise _Bad(f"{size} bytes, over the limit of {MAX_ANNOTATION_BYTES} for an annotation file")
    return path.read_bytes()


def _points(raw, kind: str) -> list[tuple[float, float]]:
    if not isinstance(raw, list):
        raise _Bad(f"'points': expected a list of [x, y], got {_short(raw)}")
    pts = []
    for j, p in enumerate(raw):
        if not isinstance(p, (list, tuple)) or len(p) != 2:
            raise _Bad(f"point {j}: expected [x, y], got {_short(p)}")
        pts.append((_number(p[0], f"point {j} x"), _number(p[1], f"point {j} y")))
    need, exact = {"circle": (2, True), "polygon": (3, False)}.get(kind, (2, False))
    if len(pts) < need or exact and len(pts) != need:
        raise _Bad(f"a {kind} needs {'' if exact else 'at least '}{need} points, got {len(pts)}")
    return pts


def _labelme_box(kind: str, pts: list[tuple[float, float]]) -> tuple[int, int, int, int]:
    if kind == "circle":
        (cx, cy), (px, py) = pts
        r = math.hypot(px - cx, py - cy)
        xs, ys = (cx - r, cx + r), (cy - r, cy + r)
    else:
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return math.floor(min(xs)), math.floor(min(ys)), math.ceil(max(xs)), math.ceil(max(ys))


# ---------------------------------------------------------------------------------------------
# Pascal VOC (labelImg)


def _parse_xml(path: Path):
    import defusedxml
    import defusedxml.ElementTree as DET

    data = _read_bytes(path)
    try:
        # defusedxml's defaults: entity declarations (internal and external) and external
        # references are refused before anything is expanded; a plain DOCTYPE is allowed.
        return DET.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except defusedxml.EntitiesForbidden as e:
        raise _Bad(f"refused: declares the XML entity {e.name!r} (entity expansion is not allowed: a billion-laughs or external-entity file?)") from None
    except defusedxml.DefusedXmlException as e:
        raise _Bad(f"refused: {type(e).__name__} (external references and DTDs that load files are not allowed)") from None
    except DET.ParseError as e:
        raise _Bad(f"not well-formed XML: {e}") from None


def _text(el, tag: str, required: bool = True) -> str | None:
    child = el.find(tag)
    if child is None or child.text is None or not child.text.strip():
        if required:
            raise _Bad(f"no <{tag}>")
        return None
    return child.text.strip()


def _int_field(el, tag: str, required: bool = True) -> int | None:
    t = _text(el, tag, required)
    if t is None:
        return None
    try:
        v = float(t)
    except ValueError:
        raise _Bad(f"<{tag}> {_short(t)}: expected a number") from None
    if not math.isfinite(v):
        raise _Bad(f"<{tag}> {_short(t)}: expected a finite number")
    return _round(v)


def _flag(el, tag: str) -> bool:
    t = _text(el, tag, False)
    if t is None:
        return False
    if t.lower() in ("1", "true", "yes"):
        return True
    if t.lower() in ("0", "false", "no"):
        return False
    raise _Bad(f"<{tag}> {_short(t)}: expected 0 or 1")


def _voc(path: Path, rel: str, opts: _Options) -> _FileResult:
    res = _FileResult()
    root = _parse_xml(path)
    if root.tag != "annotation":
        raise _Bad(f"not a Pascal VOC annotation: the root element is <{root.tag}>, expected <annotation>")
    filename = _text(root, "filename", False)
    img_path = _text(root, "path", False)
    size = root.find("size")
    declared = (None, None)
    if size is not None:
        declared = (_int_field(size, "width", False), _int_field(size, "height", False))
        if any(v is not None and v < 0 for v in declared):
            raise _Bad(f"<size> {declared[0]}x{declared[1]}: expected positive sizes")

    names = []
    if filename:
        names.append(filename.replace("\\", "/").split("/")[-1])
    if img_path:
        names.append(img_path.replace("\\", "/").split("/")[-1])
    if not names:
        names.append(path.stem)
    cands: list[Path] = []
    for n in dict.fromkeys(names):
        if opts.images is not None:
            cands += _with_suffixes(opts.images / n)
    if img_path:
        p = Path(img_path.replace("\\", "/"))
        cands += _with_suffixes(p if p.is_absolute() else path.parent / p)
    for n in dict.fromkeys(names):
        cands += _with_suffixes(path.parent / n)
        if path.parent.name == "Annotations":  # the VOC layout: VOCdevkit/VOC2012/{Annotations,JPEGImages}
            cands += _with_suffixes(path.parent.parent / "JPEGImages" / n)
    found = _find_file(cands)
    if found is None:
        where = "next to the file, in ../JPEGImages" + (f", in {opts.images}" if opts.images else "") + (", at <path>" if img_path else "")
        raise _Bad(f"image {names[0]!r} not found (looked {where})")
    im = _open_image(found, f"image {names[0]}")
    im, note = _check_size(im, declared, False, "the image")
    if note:
        res.notes.append(note)

    for i, obj in enumerate(root.findall("object")):
        item = f"o{i}"
        label = None
        try:
            label = _text(obj, "name")
            difficult = _flag(obj, "difficult")
            truncated = _flag(obj, "truncated")
            if difficult and not opts.keep_difficult:
                res.skips.append((item, label, "marked difficult (keep with --keep-difficult)", False))
                continue
            bb = obj.find("bndbox")
            if bb is None:
                raise _Bad("no <bndbox>")
            xmin, ymin, xmax, ymax = (_int_field(bb, t) for t in ("xmin", "ymin", "xmax", "ymax"))
            safe_label(label)
            # 1-based inclusive -> pixel edges: columns xmin-1 .. xmax-1, i.e. [xmin-1, xmax).
            if xmax < xmin or ymax < ymin:
                raise _Bad(f"inverted box xmin={xmin} xmax={xmax} ymin={ymin} ymax={ymax}")
            box, clipped, png = _crop(im, (xmin - 1, ymin - 1, xmax, ymax), opts)
        except (_Bad, LabelError) as e:
            res.skips.append((item, label, str(e), True))
            continue
        notes = [n for n, on in (("truncated", truncated), ("difficult", difficult)) if on]
        res.pieces.append(_Piece(item, label, box, clipped, png, ", ".join(notes)))
    return res


# ---------------------------------------------------------------------------------------------
# Driver


def _annotation_files(source: Path, suffix: str, skip: Path) -> Iterator[Path]:
    """Annotation files under `source` (or source itself), in sorted order, lazily; hidden entries
    and the output folder are not searched."""
    if source.is_file():
        yield source
        return
    for dirpath, dirnames, filenames in os.walk(source):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and (here / d).resolve() != skip)
        for f in sorted(filenames):
            if not f.startswith(".") and f.lower().endswith(suffix):
                yield here / f


def _stem(rel: str) -> str:
    stem = Path(rel).stem
    clean = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem).lstrip(".")[:STEM_CHARS]
    return clean or "annotation"


def _name(rel: str, item: str) -> str:
    h = hashlib.sha256(rel.encode()).hexdigest()[:8]
    return f"{_stem(rel)}_{h}_{item}.png"


def _place(out: Path, folder: str, name: str, png: bytes) -> str:
    """Write png as OUT/folder/name unless identical bytes are there; "written" or "unchanged"."""
    dest = inside(out, folder, name)
    try:
        if dest.stat().st_size == len(png) and dest.read_bytes() == png:
            return "unchanged"
    except FileNotFoundError:
        pass
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = inside(out, WORK_DIR)
    work.mkdir(exist_ok=True)
    tmp = inside(work, f"{folder}.{name}.part".replace(os.sep, "_"))
    tmp.write_bytes(png)
    os.replace(tmp, dest)
    return "written"


def import_annotations(
    source: Path,
    fmt: str,
    out: Path,
    *,
    images: Path | None = None,
    margin: float = 0.0,
    min_side: int = 1,
    keep_difficult: bool = False,
    jobs: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Crop every labelled region of the Labelme (`fmt="labelme"`, *.json) or Pascal VOC
    (`fmt="voc"`, *.xml) annotations in `source` (a file, or a folder searched recursively) into
    OUT/<class folder>/, and write OUT/import-report.json. on_progress(files, crops) after each
    file. UserInputError for bad arguments or when no annotation file is found; everything wrong
    inside the files is reported in the ImportReport instead."""
    if fmt not in FORMATS:
        raise UserInputError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0.0 <= margin <= MAX_MARGIN:
        raise UserInputError(f"margin {margin!r}: expected a fraction of the box side in [0, {MAX_MARGIN}]")
    if isinstance(min_side, bool) or not isinstance(min_side, int) or min_side < 1:
        raise UserInputError(f"min side {min_side!r}: expected a whole number of pixels >= 1")
    source = Path(source).expanduser()
    if not source.exists():
        raise UserInputError(f"{source}: no such file or folder; expected {fmt} annotations ({SUFFIX[fmt]})")
    source = source.resolve()
    if source.is_file() and source.suffix.lower() != SUFFIX[fmt]:
        raise UserInputError(f"{source}: expected a {SUFFIX[fmt]} file for --format {fmt}")
    if images is not None:
        images = Path(images).expanduser().resolve()
        if not images.is_dir():
            raise UserInputError(f"{images}: no such folder; expected the folder holding the annotated images")
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise UserInputError(f"{out}: a file; expected an output folder")
    out = out.resolve()
    if out == source or out in source.parents:
        raise UserInputError(f"{out}: the output folder contains the annotations ({source}); choose a folder outside them")
    files = _annotation_files(source, SUFFIX[fmt], out)
    first = next(files, None)
    if first is None:
        raise UserInputError(f"{source}: no {SUFFIX[fmt]} files found; expected {fmt} annotations")
    out.mkdir(parents=True, exist_ok=True)

    base = source.parent if source.is_file() else source
    opts = _Options(fmt, images, float(margin), min_side, keep_difficult, out)
    parse = _labelme if fmt == "labelme" else _voc
    labels = LabelSet([p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")])
    report = ImportReport(source=source, format=fmt, out=out)

    def work(path: Path) -> tuple[str, _FileResult]:
        rel = path.relative_to(base).as_posix()
        try:
            return rel, parse(path, rel, opts)
        except _Bad as e:
            return rel, e
        except OSError as e:
            return rel, _Bad(f"cannot read: {e.strerror or e}")

    workers = jobs or min(4, os.cpu_count() or 1)
    for outcome in ordered_map(work, itertools.chain([first], files), workers):
        if outcome.error is not None:  # a bug: let it show
            raise outcome.error
        rel, res = outcome.value
        report.files += 1
        if isinstance(res, _Bad):
            report.skipped.append(Skip(rel, None, None, str(res), True))
        else:
            report.notes += [(rel, n) for n in res.notes]
            # Labels are resolved here, in file order, so which spelling names a folder is deterministic.
            for piece in res.pieces:
                folder = labels.folder(piece.label)
                name = _name(rel, piece.item)
                status = _place(out, folder, name, piece.png)
                report.written.append(Crop(rel, piece.item, piece.label, folder, f"{folder}/{name}", piece.box,
                                           piece.clipped, status, piece.note))
            report.skipped += [Skip(rel, it, lab, why, prob) for it, lab, why, prob in res.skips]
        if on_progress is not None:
            on_progress(report.files, len(report.written))
    work_dir = out / WORK_DIR
    if work_dir.is_dir() and not any(work_dir.iterdir()):
        work_dir.rmdir()
    inside(out, REPORT_FILE).write_text(json.dumps(report.to_json(), indent=1, ensure_ascii=False) + "\n")
    return report
