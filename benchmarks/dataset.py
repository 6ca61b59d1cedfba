"""Peak memory and images/s of the `dataset` commands on generated data, written to DATASET_RESULTS.md.

    .venv/bin/python benchmarks/dataset.py [--sizes 2000 20000] [--jobs 8] [--work DIR]

For each size N it generates, from scratch and deterministically (seed 0):
- a class folder of N image files (`generate_folder`: small distinct pictures in 8 classes, with
  planted near-duplicates, exact copies, corrupt and tiny files), which `dataset check` and
  `dataset split` read;
- a Labelme set and a Pascal VOC set of N/2 pictures with 2 boxes each (`generate_annotations`),
  which `dataset import` crops (N crops each);
- a URL list of the folder's N files (plus a few 404s, `write_url_csv`), served by
  tests/http_fixture.py's local server on 127.0.0.1, which `dataset fetch` downloads;
and runs each command as `mobilegen dataset ...` in a fresh subprocess. Per run: wall seconds,
items/s, CPU seconds (the child's user + system time), and peak RSS: the child's own `VmHWM`
(/proc/self/status, read at exit). `getrusage(RUSAGE_CHILDREN).ru_maxrss` is not used: Linux
carries the parent's peak across fork + exec, so every child would report at least this
process's own peak (see benchmarks/README.md). "Growth per item" is the difference of the peaks at
the two sizes over the difference of the item counts: what a streaming command keeps per image
(records for duplicate detection, report lines), not pixels.

The generator is also what tests/test_dataset_stream.py and tests/test_dataset_train.py use.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "DATASET_RESULTS.md"

CLASS_NAMES = ("cat", "dog", "fox", "owl", "yak", "emu", "eel", "ant")

# --- generated data ---------------------------------------------------------------------------


@dataclass
class Planted:
    """What generate_folder wrote (file counts) and where."""

    root: str
    classes: list[str]
    distinct: int  # decodable pictures, unrelated to each other
    near: int  # near-duplicates of a distinct picture, same class (brighter / resized / re-encoded)
    exact: int  # byte-identical copies of a distinct picture, same class
    corrupt: int  # truncated, HTML or empty files with an image suffix
    tiny: int  # decodable 8x8 pictures
    seconds: float = 0.0

    @property
    def files(self) -> int:
        return self.distinct + self.near + self.exact + self.corrupt + self.tiny

    @property
    def decodable(self) -> int:
        return self.files - self.corrupt


def class_names(k: int) -> list[str]:
    return [CLASS_NAMES[i] if i < len(CLASS_NAMES) else f"class{i:02d}" for i in range(k)]


def picture(index: int, size: int = 48, seed: int = 0, grain: int = 6):
    """Picture `index`: a random 8x8 colour grid upscaled (bicubic) to size x size, plus grain.
    The low-frequency content a perceptual hash looks at is random per index, so two indices are
    unrelated pictures (far apart in pHash); the same (index, size, seed) is the same picture."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng((seed, index))
    grid = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    im = Image.fromarray(grid).resize((size, size), Image.BICUBIC)
    if grain:
        a = np.asarray(im, dtype=np.int16) + rng.integers(-grain, grain + 1, (size, size, 3), dtype=np.int16)
        im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    return im


def encode(im, fmt: str, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG":
        im.save(buf, "JPEG", quality=quality)
    else:
        im.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _near_copy(im, kind: int):
    """A near-duplicate: what re-uploads of one photo look like (brighter, smaller, re-encoded)."""
    from PIL import ImageEnhance

    if kind == 0:
        return ImageEnhance.Brightness(im).enhance(1.08), "JPEG", 85
    if kind == 1:
        w, h = im.size
        return im.resize((w * 3 // 4, h * 3 // 4)), "PNG", 90
    return im, "JPEG", 70


def generate_folder(root: Path, n: int, *, classes: int = 8, size: int = 48, seed: int = 0, grain: int = 6,
                    png_every: int = 4, near: float = 0.02, exact: float = 0.005, corrupt: float = 0.005, tiny: float = 0.005) -> Planted:
    """ROOT/<class>/<file>: n files in all, `near`/`exact`/`corrupt`/`tiny` of them (shares of n)
    planted, the rest distinct pictures (one PNG in `png_every`, the others JPEG), picture i in class i % classes.
    Streams: one picture in memory at a time (about 0.4 ms each on one core: 20k files in about 10 s)."""
    t0 = time.perf_counter()
    root = Path(root)
    names = class_names(classes)
    for c in names:
        (root / c).mkdir(parents=True, exist_ok=True)
    n_near, n_exact, n_corrupt, n_tiny = (round(share * n) for share in (near, exact, corrupt, tiny))
    n_distinct = n - n_near - n_exact - n_corrupt - n_tiny
    if n_distinct < max(1, classes):
        raise ValueError(f"{n} files: too few for {classes} classes and the planted files")

    def path_of(i: int) -> Path:
        return root / names[i % classes] / f"img_{i:06d}{'.png' if i % png_every == png_every - 1 else '.jpg'}"

    for i in range(n_distinct):
        path_of(i).write_bytes(encode(picture(i, size, seed, grain), "PNG" if i % png_every == png_every - 1 else "JPEG"))
    # Sources spread over the distinct pictures (a prime stride), each copy in its source's class.
    for j in range(n_near):
        i = (j * 7919 + 1) % n_distinct
        im, fmt, q = _near_copy(picture(i, size, seed, grain), j % 3)
        (root / names[i % classes] / f"near_{j:06d}_of_{i:06d}{'.jpg' if fmt == 'JPEG' else '.png'}").write_bytes(encode(im, fmt, q))
    for j in range(n_exact):
        i = (j * 104729 + 3) % n_distinct
        src = path_of(i)
        (src.parent / f"copy_{j:06d}_of_{i:06d}{src.suffix}").write_bytes(src.read_bytes())
    for j in range(n_corrupt):
        d = root / names[j % classes]
        if j % 3 == 0:
            good = encode(picture(n + j, size, seed, grain), "JPEG")
            (d / f"bad_{j:06d}.jpg").write_bytes(good[: len(good) * 2 // 5])  # truncated
        elif j % 3 == 1:
            (d / f"bad_{j:06d}.jpg").write_bytes(b"<!DOCTYPE html><html><body>Moved</body></html>\n")
        else:
            (d / f"bad_{j:06d}.png").write_bytes(b"")
    for j in range(n_tiny):
        (root / names[j % classes] / f"tiny_{j:06d}.png").write_bytes(encode(picture(2 * n + j, 8, seed, 0), "PNG"))
    return Planted(str(root), names, n_distinct, n_near, n_exact, n_corrupt, n_tiny, time.perf_counter() - t0)


@dataclass
class AnnotationSet:
    root: str
    format: str
    images: int
    boxes: int  # well-formed boxes inside their image: one crop each
    outside: int  # boxes entirely outside the image (skipped and reported)
    malformed: int  # annotation files that do not parse (skipped and reported)
    classes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _boxes(rng, size: int, k: int) -> list[tuple[int, int, int, int]]:
    """k boxes (x0, y0, x1, y1) in pixel coordinates, each side >= size / 4."""
    out = []
    for _ in range(k):
        w, h = (int(v) for v in rng.integers(size // 4, size // 2 + 1, 2))
        x0 = int(rng.integers(0, size - w))
        y0 = int(rng.integers(0, size - h))
        out.append((x0, y0, x0 + w, y0 + h))
    return out


def generate_annotations(root: Path, images: int, fmt: str, *, boxes: int = 2, size: int = 64, classes: int = 4,
                         seed: int = 0, outside: float = 0.0, malformed: float = 0.0) -> AnnotationSet:
    """An annotation set as the tools write it, `images` pictures with `boxes` labelled boxes each:
    - labelme: ROOT/part_XXX/img_NNNNNN.jpg next to img_NNNNNN.json (Labelme's layout: imagePath
      relative to the JSON, imageData null), rectangles, every third image's second box a polygon;
    - voc: labelImg's Pascal VOC layout, ROOT/Annotations/img_NNNNNN.xml and
      ROOT/JPEGImages/img_NNNNNN.jpg, 1-based inclusive bndbox, <path> the image's absolute path.
    A share `outside` of the images get one extra box entirely outside the picture, a share
    `malformed` of the annotation files are cut in half (bad JSON / XML)."""
    import numpy as np

    t0 = time.perf_counter()
    root = Path(root)
    names = class_names(classes)
    n_outside = n_malformed = good_boxes = 0
    every_out = round(1 / outside) if outside else 0
    every_bad = round(1 / malformed) if malformed else 0
    for i in range(images):
        rng = np.random.default_rng((seed, 1_000_003, i))
        im = picture(i, size, seed)
        bxs = _boxes(rng, size, boxes)
        labels = [names[(i + b) % classes] for b in range(boxes)]
        bad = every_bad and i % every_bad == every_bad - 1
        out = every_out and i % every_out == 0
        if out:
            bxs.append((size + 5, size + 5, size + 20, size + 20))
            labels.append(names[0])
        stem = f"img_{i:06d}"
        if fmt == "labelme":
            d = root / f"part_{i // 1000:03d}"
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{stem}.jpg").write_bytes(encode(im, "JPEG", 92))
            shapes = []
            for b, ((x0, y0, x1, y1), label) in enumerate(zip(bxs, labels)):
                if b == 1 and i % 3 == 0:
                    shape = {"label": label, "points": [[x0, y0], [x1, y0 + (y1 - y0) // 2], [x0 + (x1 - x0) // 2, y1]],
                             "group_id": None, "description": "", "shape_type": "polygon", "flags": {}}
                else:
                    shape = {"label": label, "points": [[x0, y0], [x1, y1]], "group_id": None, "description": "",
                             "shape_type": "rectangle", "flags": {}}
                shapes.append(shape)
            text = json.dumps({"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": f"{stem}.jpg",
                               "imageData": None, "imageHeight": size, "imageWidth": size}, indent=2)
            target = d / f"{stem}.json"
        elif fmt == "voc":
            ann, jpg = root / "Annotations", root / "JPEGImages"
            ann.mkdir(parents=True, exist_ok=True)
            jpg.mkdir(parents=True, exist_ok=True)
            img_path = jpg / f"{stem}.jpg"
            img_path.write_bytes(encode(im, "JPEG", 92))
            objs = "".join(
                f"\t<object>\n\t\t<name>{label}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n"
                f"\t\t<difficult>0</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>{x0 + 1}</xmin>\n\t\t\t<ymin>{y0 + 1}</ymin>\n"
                f"\t\t\t<xmax>{x1}</xmax>\n\t\t\t<ymax>{y1}</ymax>\n\t\t</bndbox>\n\t</object>\n"
                for (x0, y0, x1, y1), label in zip(bxs, labels)
            )
            text = (f"<annotation>\n\t<folder>JPEGImages</folder>\n\t<filename>{stem}.jpg</filename>\n"
                    f"\t<path>{img_path.resolve()}</path>\n\t<source>\n\t\t<database>Unknown</database>\n\t</source>\n"
                    f"\t<size>\n\t\t<width>{size}</width>\n\t\t<height>{size}</height>\n\t\t<depth>3</depth>\n\t</size>\n"
                    f"\t<segmented>0</segmented>\n{objs}</annotation>\n")
            target = ann / f"{stem}.xml"
        else:
            raise ValueError(f"format {fmt!r}: expected labelme or voc")
        if bad:
            text = text[: len(text) // 2]
            n_malformed += 1
        else:
            good_boxes += boxes
            n_outside += bool(out)
        target.write_text(text)
    return AnnotationSet(str(root), fmt, images, good_boxes, n_outside, n_malformed, names, time.perf_counter() - t0)


CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif",
                 ".webp": "image/webp", ".bmp": "image/bmp"}


def folder_route(root: Path, prefix: str = "/img/"):
    """A function for tests/http_fixture.py's LocalServer.serve_prefix: PREFIX<class>/<file> ->
    that file of the folder under ROOT (read when asked: thousands of images are not held), None
    (404) for anything else."""
    base = Path(root).resolve()

    def answer(path: str):
        rel = path[len(prefix):]
        parts = rel.split("/")
        if len(parts) != 2 or any(p in ("", ".", "..") for p in parts):
            return None
        f = base / parts[0] / parts[1]
        if not f.is_file():
            return None
        return f.read_bytes(), CONTENT_TYPES.get(f.suffix.lower(), "application/octet-stream")

    return answer


def write_url_csv(csv_path: Path, folder: Path, base_url: str, *, prefix: str = "/img/", missing: int = 0,
                  header: bool = True) -> int:
    """The CSV `dataset fetch` reads (url,label; a header row when asked): one row per file of the
    class folder FOLDER (sorted: class, then name), served under BASE_URL + PREFIX by folder_route,
    plus `missing` rows whose URL answers 404. Returns the number of data rows."""
    folder = Path(folder)
    rows = 0
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        if header:
            w.writerow(["url", "label"])
        for cdir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for img in sorted(cdir.iterdir()):
                w.writerow([f"{base_url}{prefix}{cdir.name}/{img.name}", cdir.name])
                rows += 1
        for j in range(missing):
            w.writerow([f"{base_url}/missing/{j}.jpg", CLASS_NAMES[0]])
            rows += 1
    return rows


# --- measured subprocesses --------------------------------------------------------------------

# Runs `mobilegen ARGS...` in this interpreter (what the console script does) and, at exit,
# writes the process's peak resident set (VmHWM, bytes) to the file named by argv[1].
_MEASURE = r"""
import atexit, sys
def _peak(path=sys.argv[1]):
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    with open(path, "w") as f:
        f.write(str(kb * 1024))
atexit.register(_peak)
sys.argv = ["mobilegen"] + sys.argv[2:]
from mobilegen.cli.app import main
main()
"""


@dataclass
class Measured:
    argv: list[str]
    returncode: int
    wall_s: float
    cpu_s: float  # user + system seconds of the child
    peak_rss: int  # bytes (VmHWM of the child); 0 when it died before writing it
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


def run_measured(argv: list[str], *, timeout: float = 900.0, env: dict[str, str] | None = None) -> Measured:
    """`mobilegen ARGV...` in a fresh Python process, with its wall time, CPU time and peak RSS."""
    with tempfile.TemporaryDirectory(prefix="mobilegen-peak-") as tmp:
        peak_file = Path(tmp) / "peak"
        out_path, err_path = Path(tmp) / "stdout", Path(tmp) / "stderr"
        argv = [str(a) for a in argv]
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            t0 = time.perf_counter()
            p = subprocess.Popen([sys.executable, "-c", _MEASURE, str(peak_file), *argv], stdout=out, stderr=err,
                                 stdin=subprocess.DEVNULL, cwd=ROOT, env=env)
            deadline = t0 + timeout
            while True:
                pid, status, usage = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() > deadline:
                    p.kill()
                    pid, status, usage = os.wait4(p.pid, 0)
                    break
                time.sleep(0.005)
            wall = time.perf_counter() - t0
            p.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        peak = int(peak_file.read_text()) if peak_file.is_file() and peak_file.read_text() else 0
        return Measured(argv, p.returncode, wall, usage.ru_utime + usage.ru_stime, peak,
                        out_path.read_text(errors="replace"), err_path.read_text(errors="replace"))


# Runs several `mobilegen` command lines one after the other in one interpreter and, after each,
# records its peak resident set: VmHWM is reset (/proc/self/clear_refs, "5") before every run after
# the first, so run k's peak is the most this process held during run k. argv[1]: the JSON list of
# command lines; argv[2]: where the JSON list of {"exit", "peak", "rss_before"} goes.
_SERIES = r"""
import json, sys
def _status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))
runs, dest = json.loads(sys.argv[1]), sys.argv[2]
from mobilegen.cli.app import app
results = []
for k, argv in enumerate(runs):
    if k:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    before = _status("VmRSS:")
    try:
        code = app(argv, standalone_mode=False, prog_name="mobilegen")
    except SystemExit as e:
        code = e.code
    results.append({"exit": code or 0, "peak": _status("VmHWM:"), "rss_before": before})
    sys.stdout.flush()
with open(dest, "w") as f:
    json.dump(results, f)
"""


def run_series(argvs: list[list[str]], *, timeout: float = 600.0, env: dict[str, str] | None = None) -> list[dict]:
    """Each `mobilegen ARGV...` of argvs in turn in one fresh Python process (start-up paid once):
    per run its exit code and "peak", the process's peak RSS during that run in bytes (the first
    run's includes the start-up). Raises RuntimeError with the child's output when it fails."""
    with tempfile.TemporaryDirectory(prefix="mobilegen-peak-") as tmp:
        dest = Path(tmp) / "series.json"
        r = subprocess.run([sys.executable, "-c", _SERIES, json.dumps([[str(a) for a in v] for v in argvs]), str(dest)],
                           capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout, stdin=subprocess.DEVNULL)
        if r.returncode != 0 or not dest.is_file():
            raise RuntimeError(f"measured run failed (exit {r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}")
        return json.loads(dest.read_text())


# --- the benchmark ----------------------------------------------------------------------------


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _mib(b: float) -> str:
    return f"{b / 2**20:.1f}"


def _run_size(n: int, work: Path, jobs: int, log) -> list[dict]:
    """Every command at size n; one dict per run."""
    from tests.http_fixture import LocalServer

    rows = []
    folder = work / f"folder-{n}"
    planted = generate_folder(folder, n)
    log(f"n={n}: generated {planted.files} files in {planted.seconds:.1f} s")
    rows.append({"command": "generate_folder (this script)", "n": n, "items": planted.files, "wall_s": planted.seconds})

    def measure(name: str, argv: list[str], items: int, ok=(0, 1)):
        m = run_measured(argv)
        if m.returncode not in ok:
            raise SystemExit(f"{name} at n={n} failed (exit {m.returncode}):\n{m.stderr[-3000:]}")
        log(f"n={n}: {name}: {m.wall_s:.1f} s, peak {_mib(m.peak_rss)} MiB, exit {m.returncode}")
        row = {"command": name, "n": n, "items": items, "wall_s": m.wall_s, "cpu_s": m.cpu_s, "peak_rss": m.peak_rss,
               "exit": m.returncode}
        try:
            row["report"] = m.json()
        except ValueError:
            row["report"] = None
        rows.append(row)
        return m

    measure("dataset check", ["dataset", "check", folder, "--json"], planted.files)
    measure("dataset split", ["dataset", "split", folder, "--out", work / f"split-{n}", "--json"], planted.files)
    for fmt in ("labelme", "voc"):
        ann = generate_annotations(work / f"{fmt}-{n}", n // 2, fmt, boxes=2)
        log(f"n={n}: generated {ann.images} {fmt} images in {ann.seconds:.1f} s")
        measure(f"dataset import --format {fmt}", ["dataset", "import", ann.root, "--format", fmt, "--out",
                                                   work / f"crops-{fmt}-{n}", "--json"], ann.boxes)
    with LocalServer() as srv:
        srv.serve_prefix("/img/", folder_route(folder))
        csv_path = work / f"urls-{n}.csv"
        rows_n = write_url_csv(csv_path, folder, srv.base, missing=max(1, n // 200))
        m = measure("dataset fetch", ["dataset", "fetch", csv_path, "--out", work / f"fetched-{n}", "--jobs", jobs, "--json"],
                    rows_n)
        rows[-1]["server_max_in_flight"] = srv.max_in_flight
        del m
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    ap.add_argument("--jobs", type=int, default=8, help="dataset fetch --jobs")
    ap.add_argument("--work", type=Path, default=None, help="keep the generated data here (default: a temporary folder, removed)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    work = args.work or Path(tempfile.mkdtemp(prefix="mobilegen-bench-dataset-"))
    work.mkdir(parents=True, exist_ok=True)
    load0 = os.getloadavg()[0]
    started = datetime.datetime.now(datetime.timezone.utc)
    try:
        base = run_measured(["dataset", "--help"])
        runs = []
        for n in args.sizes:
            runs += _run_size(n, work, args.jobs, log)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    load1 = os.getloadavg()[0]
    text = report(runs, base, args, started, load0, load1)
    args.out.write_text(text)
    print(text)


def _command_line(args) -> str:
    parts = [".venv/bin/python benchmarks/dataset.py"]
    if args.sizes != [2000, 20000]:
        parts.append("--sizes " + " ".join(map(str, args.sizes)))
    if args.jobs != 8:
        parts.append(f"--jobs {args.jobs}")
    return " ".join(parts)


def report(runs: list[dict], base: Measured, args, started, load0: float, load1: float) -> str:
    import numpy
    import PIL

    lines = [
        "# Dataset commands: peak memory and images/s",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC",
        f"- machine: {_cpu()}, {os.cpu_count()} cores, load average (1 min) before / after {load0:.1f} / {load1:.1f} "
        f"(Linux {platform.machine()}, Python {platform.python_version()}, numpy {numpy.__version__}, Pillow {PIL.__version__})",
        f"- command: `{_command_line(args)}`",
        f"- start-up: `mobilegen dataset --help` peaks at {_mib(base.peak_rss)} MiB (the interpreter, numpy, Typer, the CLI)",
        "",
        "Data (generated by the script, seed 0): a class folder of N files in 8 classes (48 px pictures, one PNG in four, the others JPEG; "
        "2% near-duplicates, 0.5% exact copies, 0.5% corrupt, 0.5% tiny 8x8); Labelme and VOC sets of N/2 64 px pictures "
        "with 2 boxes each (N crops); a URL list of the folder's N files plus N/200 404s, served from 127.0.0.1 by "
        f"tests/http_fixture.py in the benchmark's process, fetched with `--jobs {args.jobs}`. Each command runs once "
        "in a fresh subprocess; peak RSS is the child's VmHWM. Items: files for check and split, boxes (crops) for "
        "import, CSV rows for fetch.",
        "",
        "| command | N | items | wall s | items/s | CPU s | peak RSS MiB | over start-up MiB | exit |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        if "peak_rss" not in r:
            lines.append(f"| {r['command']} | {r['n']} | {r['items']} | {r['wall_s']:.1f} | {r['items'] / r['wall_s']:.0f} | | | | |")
            continue
        lines.append(f"| {r['command']} | {r['n']} | {r['items']} | {r['wall_s']:.1f} | {r['items'] / r['wall_s']:.0f} | "
                     f"{r['cpu_s']:.1f} | {_mib(r['peak_rss'])} | {_mib(r['peak_rss'] - base.peak_rss)} | {r['exit']} |")
    lines += ["", "Growth of the peak between the sizes (what a command keeps per item):", "",
              "| command | peak at smallest / largest N, MiB | growth per item, KiB |", "|---|---|---:|"]
    by_cmd: dict[str, list[dict]] = {}
    for r in runs:
        if "peak_rss" in r:
            by_cmd.setdefault(r["command"], []).append(r)
    for cmd, rs in by_cmd.items():
        if len(rs) < 2:
            continue
        lo, hi = min(rs, key=lambda r: r["items"]), max(rs, key=lambda r: r["items"])
        per = (hi["peak_rss"] - lo["peak_rss"]) / max(1, hi["items"] - lo["items"])
        lines.append(f"| {cmd} | {_mib(lo['peak_rss'])} / {_mib(hi['peak_rss'])} | {per / 1024:.2f} |")
    fetch = [r for r in runs if r["command"] == "dataset fetch" and "server_max_in_flight" in r]
    if fetch:
        lines += ["", "Most requests the server had in flight at once during fetch: "
                  + ", ".join(f"{r['server_max_in_flight']} (N={r['n']})" for r in fetch) + f" (`--jobs {args.jobs}`)."]
    lines += ["", "The machine is shared: seconds depend on its load (given above); the peaks and the growth per item "
              "are the figures to compare. The fetch rate includes the local server, a Python ThreadingHTTPServer "
              "on the same cores."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
