"""Everything streams: the dataset commands' memory stays flat however many images they go through.

Per command (check, split, import, fetch) one subprocess runs `mobilegen dataset ...` on N and then
on 8N images (benchmarks/dataset.py's run_series: the peak RSS, VmHWM, is reset between the two
runs), and the growth of the peak per extra image must stay under BOUND. What a streaming command
legitimately keeps per image is bookkeeping: a record for duplicate detection (path, sha256,
pHash, size) and its report lines: 3.5-8.3 KiB per image measured at these sizes (the small
sizes exaggerate it: fixed costs such as allocator arenas are spread over few images). What it
must not keep is pixels: one decoded 128 px test picture is 64 KiB in Pillow (4 bytes a pixel),
so a command that holds every image it decodes grows 61-93 KiB per image here (measured with
Pillow patched to keep every image it loads, through a sitecustomize on PYTHONPATH: every one
of these tests failed). BOUND = 20 KiB sits between the two, with room both ways. Half the test
pictures are PNG: a JPEG that check draft-decodes for its pHash is only 4 KiB at 1/4 scale.

Reading the input lazily is checked where it is observable: stream.ordered_map pulls at most
`window` items ahead and keeps input order; index_folder (check and split) has opened at most a
window of images when its first record comes; `dataset fetch` with every download held back has
read no more of its CSV than a window of rows (the CSV file's offset, from /proc), so neither
reading all rows first nor submitting every download at once goes unnoticed.

The data comes from benchmarks/dataset.py's generators (the benchmark's own).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.harness import load_benchmark
from tests.http_fixture import LocalServer

bench = load_benchmark("dataset")

N = 60  # images in the small run; the large run has 8N
SIZE = 128  # pixels a side
BOUND = 20 * 1024  # bytes of peak RSS per extra image (see the module docstring)

@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    base = tmp_path_factory.mktemp("stream")
    small = bench.generate_folder(base / "small", N, size=SIZE, classes=4, png_every=2)
    large = bench.generate_folder(base / "large", 8 * N, size=SIZE, classes=4, png_every=2)
    return small, large


@pytest.fixture(scope="module")
def labelme_sets(tmp_path_factory):
    base = tmp_path_factory.mktemp("labelme")
    return (bench.generate_annotations(base / "small", N, "labelme", boxes=1, size=SIZE),
            bench.generate_annotations(base / "large", 8 * N, "labelme", boxes=1, size=SIZE))


def growth(runs: list[dict], n_small: int, n_large: int) -> float:
    """Bytes of peak RSS per extra item from the first run to the second."""
    return (runs[1]["peak"] - runs[0]["peak"]) / (n_large - n_small)


def assert_flat(what: str, runs: list[dict], n_small: int, n_large: int) -> None:
    per = growth(runs, n_small, n_large)
    print(f"{what}: {per / 1024:.2f} KiB per item ({runs[0]['peak'] / 2**20:.1f} -> {runs[1]['peak'] / 2**20:.1f} MiB)")
    assert per < BOUND, (
        f"{what}: the peak RSS grew {per / 1024:.1f} KiB per item from {n_small} to {n_large} items "
        f"({runs[0]['peak'] / 2**20:.1f} -> {runs[1]['peak'] / 2**20:.1f} MiB; bound {BOUND / 1024:.0f} KiB): "
        "something is kept per image")


# --- the bounded map everything goes through ---------------------------------------------------


def test_ordered_map_pulls_lazily_keeps_order_and_bounds_concurrency():
    from mobilegen.dataset.stream import ordered_map

    pulled = 0
    running = most = 0
    lock = threading.Lock()
    rng = random.Random(0)
    delays = [rng.uniform(0, 0.003) for _ in range(200)]

    def items():
        nonlocal pulled
        for i in range(200):
            pulled += 1
            yield i

    def fn(i):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(delays[i])
        with lock:
            running -= 1
        if i % 50 == 7:
            raise ValueError(f"bad {i}")
        return i * i

    seen = []
    for k, oc in enumerate(ordered_map(fn, items(), workers=3, window=5)):
        assert pulled <= k + 5, f"{pulled} items pulled when {k} outcomes were yielded (window 5)"
        seen.append(oc)
    assert [oc.item for oc in seen] == list(range(200))
    assert [oc.value for oc in seen if oc.error is None] == [i * i for i in range(200) if i % 50 != 7]
    assert [str(oc.error) for oc in seen if oc.error is not None] == [f"bad {i}" for i in (7, 57, 107, 157)]
    assert most <= 3


def test_index_folder_decodes_a_window_at_a_time(folders, monkeypatch):
    """check and split read the folder through index_folder: while its consumer holds on to the
    first record, it has opened at most a window of images (stream.ordered_map's 2 * jobs, each
    opened at most twice), not gone on through the folder in the background."""
    from PIL import Image

    from mobilegen.dataset.index import index_folder

    opened = 0
    real_open = Image.open

    def counting_open(*a, **kw):
        nonlocal opened
        opened += 1
        return real_open(*a, **kw)

    monkeypatch.setattr(Image, "open", counting_open)
    _, large = folders
    records = index_folder(Path(large.root), jobs=2)
    assert next(records) is not None
    time.sleep(0.3)  # unbounded work would go on opening images meanwhile (hundreds in 0.3 s)
    held = opened
    rest = sum(1 for _ in records)
    assert rest + 1 == large.files
    assert held <= 2 * (2 * 2 + 1), f"{held} of {large.files} images opened while the first record was held"
    assert opened >= large.decodable  # every image decoded (an empty file is refused unopened)


# --- peak memory per command -------------------------------------------------------------------


def test_check_memory_is_flat(folders):
    small, large = folders
    runs = bench.run_series([["dataset", "check", small.root, "--json"], ["dataset", "check", large.root, "--json"]])
    assert [r["exit"] for r in runs] == [0 if not small.corrupt else 1, 1]  # the large folder has corrupt files
    assert_flat("dataset check", runs, small.files, large.files)


def test_split_memory_is_flat(folders, tmp_path):
    small, large = folders
    runs = bench.run_series([["dataset", "split", small.root, "--out", tmp_path / "s", "--json"],
                             ["dataset", "split", large.root, "--out", tmp_path / "l", "--json"]])
    assert [r["exit"] for r in runs] == [0, 0]
    assert_flat("dataset split", runs, small.files, large.files)


def test_import_memory_is_flat(labelme_sets, tmp_path):
    small, large = labelme_sets
    runs = bench.run_series([["dataset", "import", small.root, "--format", "labelme", "--out", tmp_path / "s", "--json"],
                             ["dataset", "import", large.root, "--format", "labelme", "--out", tmp_path / "l", "--json"]])
    assert [r["exit"] for r in runs] == [0, 0]
    assert_flat("dataset import", runs, small.boxes, large.boxes)


def test_fetch_memory_is_flat(folders, tmp_path):
    small, large = folders
    with LocalServer() as srv:
        srv.serve_prefix("/s/", bench.folder_route(small.root, "/s/"))
        srv.serve_prefix("/l/", bench.folder_route(large.root, "/l/"))
        rows_s = bench.write_url_csv(tmp_path / "s.csv", small.root, srv.base, prefix="/s/")
        rows_l = bench.write_url_csv(tmp_path / "l.csv", large.root, srv.base, prefix="/l/")
        runs = bench.run_series([["dataset", "fetch", tmp_path / "s.csv", "--out", tmp_path / "s", "--jobs", "4", "--json"],
                                 ["dataset", "fetch", tmp_path / "l.csv", "--out", tmp_path / "l", "--jobs", "4", "--json"]])
        assert srv.max_in_flight <= 4
    # The large folder's corrupt files are served too: those rows fail, so fetch exits 1.
    assert [r["exit"] for r in runs] == [0 if not small.corrupt else 1, 1]
    assert_flat("dataset fetch", runs, rows_s, rows_l)


# --- fetch reads its CSV as it goes ------------------------------------------------------------


def _fd_offset(pid: int, target: Path) -> int | None:
    """The file offset of `pid`'s open descriptor on `target`, from /proc; None when not open."""
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            if Path(os.readlink(fd)) == target:
                for line in (Path(f"/proc/{pid}/fdinfo") / fd.name).read_text().splitlines():
                    if line.startswith("pos:"):
                        return int(line.split()[1])
        except OSError:
            continue
    return None


def test_fetch_reads_its_csv_a_window_at_a_time(tmp_path):
    """Every download is held back until the test has looked: by then `dataset fetch` must have
    read only a window of rows (2 * jobs, plus the text reader's buffer) of a 200 KB CSV. Reading
    all rows first, or submitting every row to the pool at once, reads it to the end."""
    exe = Path(sys.executable).with_name("mobilegen")
    if not exe.is_file():
        pytest.skip(f"{exe}: the console script is not installed (make setup)")
    png = bench.encode(bench.picture(0, 16), "PNG")
    release = threading.Event()
    with LocalServer() as srv:

        def held(h, hit):
            if h.wait(0) and release.wait(30):
                h.send_body(png, "image/png")

        srv.route("/held", held)
        csv_path = (tmp_path / "urls.csv").resolve()
        pad = "p" * 160
        with open(csv_path, "w") as f:
            f.write("url,label\n")
            for i in range(1000):
                f.write(f"{srv.base}/held?row={i}&{pad},cat\n")
        size = csv_path.stat().st_size
        p = subprocess.Popen([str(exe), "dataset", "fetch", str(csv_path), "--out", str(tmp_path / "out"), "--jobs", "2",
                              "--json"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while srv.in_flight < 2 and time.monotonic() < deadline and p.poll() is None:
                time.sleep(0.01)
            assert srv.in_flight == 2, f"fetch never had 2 downloads going (exit {p.poll()}): {p.stderr.read().decode()[-2000:] if p.poll() is not None else ''}"
            time.sleep(0.5)  # let it read ahead as far as it will
            pos = _fd_offset(p.pid, csv_path)
            assert pos is not None, ("fetch does not hold the CSV open while its first rows download: "
                                     "it read the whole file before downloading")
            assert pos <= 32 * 1024, f"fetch had read {pos} of the CSV's {size} bytes with its first 2 downloads held back"
        finally:
            p.kill()
            p.communicate(timeout=30)
            release.set()
