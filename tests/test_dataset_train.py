"""End to end: what the dataset commands produce trains with `mobilegen train`, unchanged.

A local server (127.0.0.1) serves a generated class folder (3 classes, 32 px pictures, a few
near-duplicates and a corrupt file); the installed console script runs `dataset fetch` (the
corrupt row fails, so it exits 1), `dataset check` on what was fetched (no errors: fetch let no
bad file in), `dataset split`, then `mobilegen train SPLIT/train` with tiny settings (one epoch,
96 px, batch 8; see tests/test_train.py). The model and labels.txt must come out, labels.txt
listing the classes. A Labelme import's output is read by train's own scan_folder too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import load_benchmark, require
from tests.http_fixture import LocalServer

def mobilegen(*args, ok=(0,)) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("mobilegen")
    if not exe.is_file():
        pytest.skip(f"{exe}: the console script is not installed (make setup)")
    r = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert r.returncode in ok, f"mobilegen {' '.join(map(str, args))}: exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.mark.slow
def test_fetched_checked_split_folder_trains_unchanged(tmp_path):
    require("tensorflow")
    from mobilegen.data.folder import scan_folder

    bench = load_benchmark("dataset")
    src = bench.generate_folder(tmp_path / "src", 33, classes=3, size=32, near=0.1, exact=0.0, corrupt=0.03, tiny=0.0)
    assert (src.near, src.corrupt) == (3, 1)
    with LocalServer() as srv:
        srv.serve_prefix("/img/", bench.folder_route(src.root))
        rows = bench.write_url_csv(tmp_path / "urls.csv", src.root, srv.base)
        fetched = tmp_path / "fetched"
        r = mobilegen("dataset", "fetch", tmp_path / "urls.csv", "--out", fetched, "--jobs", "4", "--json", ok=(1,))
    report = json.loads(r.stdout)
    assert len(report["fetched"]) == rows - 1 and len(report["failed"]) == 1, report
    mobilegen("dataset", "check", fetched, "--json")  # exit 0: no errors (warnings allowed)
    split = tmp_path / "split"
    mobilegen("dataset", "split", fetched, "--out", split, "--val", "0.2", "--test", "0.1", "--json")
    classes = sorted(src.classes)
    assert scan_folder(split / "train").classes == classes

    model = tmp_path / "model"
    r = mobilegen("train", split / "train", "--out", model, "--epochs", "1", "--resolution", "96", "--batch-size", "8")
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert Path(summary["model"]).is_file() and (model / "model.keras").is_file()
    assert (model / "labels.txt").read_text().split("\n")[: len(classes)] == classes
    assert [line for line in (model / "labels.txt").read_text().splitlines() if line] == classes

    # A Labelme import's class folders, as train reads them.
    ann = bench.generate_annotations(tmp_path / "labelme", 6, "labelme", boxes=2, size=64, classes=3)
    crops = tmp_path / "crops"
    mobilegen("dataset", "import", ann.root, "--format", "labelme", "--out", crops, "--json")
    folder = scan_folder(crops)
    assert folder.classes == sorted(ann.classes)
    assert len(folder.samples) == ann.boxes and not folder.skipped
