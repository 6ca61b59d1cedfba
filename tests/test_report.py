"""The HTML verification report (mobilegen.report, `verify --report`): what the page says, that it
is self-contained and reproducible, and that headless Chromium renders it (plots, tables, top-5
present; no console errors; nothing fetched with the network off). Each check is shown failing on
a page with a seeded bug (an external font, a script error, a broken SVG, a blank page)."""

from __future__ import annotations

import base64
import html
import io
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mobilegen.cli.app import app
from mobilegen.report import TIMINGS_ELSEWHERE, BackendRun, ReportData, png_bytes, write_report
from tests.harness import require_tool

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "examples" / "demo"
GOOD, BAD = "android gpu (GLES 3.1, Mesa)", "android cpu"
TIMING = {"first_run_ms": 12.345, "best_warm_run_ms": 4.5}


@dataclass
class Dumps:
    root: Path
    x: Path
    reference: Path
    good: Path  # the reference's tensors, unchanged
    bad: Path  # one tensor (`perturbed`) 3 LSB off in one element
    perturbed: int


@pytest.fixture(scope="module")
def dumps(tmp_path_factory) -> Dumps:
    """The demo model (int8 MobileNet) simulated on its sample picture; a good copy and a bad one."""
    from mobilegen.dump import read_dump, write_dump
    from mobilegen.export import plan_for_precision
    from mobilegen.inputs import load_input
    from mobilegen.plan import folded_tensors
    from mobilegen.sim.runner import Simulator
    from mobilegen.tflite.reader import read_model_file

    root = tmp_path_factory.mktemp("report")
    g = read_model_file(DEMO / "model.tflite")
    x = load_input(DEMO / "sample.png", g.tensors[g.inputs[0]])
    np.save(root / "x.npy", x)
    plan, _ = plan_for_precision(g)
    write_dump(root / "sim", plan.graph, Simulator(plan).run([x]), folded_tensors(plan))
    shutil.copytree(root / "sim", root / "good")
    shutil.copytree(root / "sim", root / "bad")
    records, values = read_dump(root / "bad")
    index = records[len(records) // 2]["index"]
    v = values[index].copy()
    v.flat[3] = np.int8(int(v.flat[3]) - 3 if int(v.flat[3]) >= -125 else int(v.flat[3]) + 3)
    np.save(root / "bad" / f"{index}.npy", v)
    return Dumps(root, root / "x.npy", root / "sim", root / "good", root / "bad", index)


def _data(d: Dumps, **kw) -> ReportData:
    from mobilegen.inputs import read_labels

    args = dict(title="demo report", model=DEMO / "model.tflite", input_tensor=d.x, reference_name="simulator",
                reference_dump=d.reference, runs=[BackendRun(GOOD, d.good, TIMING), BackendRun(BAD, d.bad)],
                labels=read_labels(DEMO / "labels.txt"), input_image=DEMO / "sample.png",
                sizes={"weights blob": 243792}, notes=["a note of the caller"])
    args.update(kw)
    return ReportData(**args)


@pytest.fixture(scope="module")
def page(dumps, tmp_path_factory) -> Path:
    return write_report(tmp_path_factory.mktemp("page") / "report.html", _data(dumps))


# -- the page's content ---------------------------------------------------------------------------

def test_model_summary(page: Path):
    text = page.read_text()
    assert "<th>precision</th><td>int8</td>" in text
    assert "<th>operators</th><td>33 (7 kinds)</td>" in text
    assert "92: 33 written by operators, 58 constant" in text
    assert '<code>CONV_2D</code></td><td class="n">15</td>' in text
    assert '<code>DEPTHWISE_CONV_2D</code></td><td class="n">13</td>' in text
    assert "<td>model.tflite</td><td class=\"n\">314,600</td>" in text and "<td>weights blob</td>" in text
    assert "a note of the caller" in text


def test_verdicts_plots_and_first_failing_layer(page: Path, dumps: Dumps):
    text = page.read_text()
    assert f"{GOOD}</a> vs simulator: <b>OK</b> &ndash; bit-exact, 33/33 tensors" in text
    assert f"{BAD}</a> vs simulator: <b>FAILED</b> &ndash; 1 of 33 tensors over tolerance; first: tensor {dumps.perturbed}" in text
    # one plot per run (the int8 model's one float tensor, its dequantized output, is a line of text)
    plots = re.findall(r'<svg class="plot" id="plot(\d)-(\w+)"', text)
    assert plots == [("0", "lsb"), ("1", "lsb")]
    good, bad = text.split('<section class="run" id="run1">')
    assert "first over tolerance" not in good
    assert f"first over tolerance: tensor {dumps.perturbed} (DEPTHWISE_CONV_2D)" in bad
    assert "tolerance: 0 LSB (bit-exact)" in bad
    # compare's account: the op writing it computed differently from equal inputs
    assert re.search(rf"<b>Where:</b> tensor {dumps.perturbed}, written by op \d+ DEPTHWISE_CONV_2D: diverges here "
                     r"\(inputs: tensor \d+ equal\)", bad)
    # every plotted tensor links to its table row; exactly one point is over tolerance, the one perturbed
    assert len(re.findall(r'class="pbad"', bad)) == 1
    assert re.search(rf'<a href="#r1-t{dumps.perturbed}"><circle class="pbad"[^>]*><title>[^<]*: 3 LSB \(over tolerance\)', bad)
    assert f'<tr id="r1-t{dumps.perturbed}" class="bad">' in bad
    assert len(re.findall(r'<tr id="r1-t\d+"', bad)) == 33
    assert "Float tensors: <a href=\"#r1-t" in bad
    # a failing run's table is open, a passing one's collapsed
    assert "<details><summary>per-tensor table (33 tensors)" in good
    assert "<details open><summary>per-tensor table (33 tensors)" in bad


def test_top5_with_labels(page: Path):
    text = page.read_text()
    top5 = re.search(r'<table class="top5" id="top5">(.*?)</table>', text).group(1)
    assert top5.count("<tr>") == 6  # header + 5 ranks
    assert re.findall(r"<th>([^<]*)</th>", top5)[1:4] == ["simulator", GOOD, BAD]
    first = re.findall(r'<tr><th>1</th>(.*?)</tr>', top5)[0]
    assert first.count('<span class="label">tabby</span> <span class="cls">(0)</span>') == 3
    assert 'class="diff"' not in top5


def test_top5_difference_is_highlighted(dumps: Dumps, tmp_path: Path):
    from mobilegen.dump import read_dump

    records, values = read_dump(dumps.good)
    other = tmp_path / "other"
    shutil.copytree(dumps.good, other)
    out = records[-1]["index"]
    np.save(other / f"{out}.npy", values[out][..., ::-1].copy())  # the scores reversed: another top-1
    text = write_report(tmp_path / "r.html", _data(dumps, runs=[BackendRun("reversed", other)])).read_text()
    assert 'class="diff"' in text and "<b>top-1 differs from the reference</b>" in text


def test_float_runs_plot_relative_error(dumps: Dumps, tmp_path: Path):
    """fp16 reference (the precision read from the dumps), an fp32 run: relative errors on a log
    scale, the fp16 tolerance line, the first tensor over it marked; the page agrees with compare."""
    from mobilegen.compare import compare_paths
    from mobilegen.dump import write_dump
    from mobilegen.export import plan_for_precision
    from mobilegen.plan import folded_tensors
    from mobilegen.report import tolerances
    from mobilegen.sim.runner import Simulator
    from mobilegen.tflite.reader import read_model_file

    g = read_model_file(DEMO / "model.tflite")
    x = np.load(dumps.x)
    for precision in ("fp16", "fp32"):
        plan, _ = plan_for_precision(g, precision)
        write_dump(tmp_path / precision, plan.graph, Simulator(plan).run([x]), folded_tensors(plan))
    text = write_report(tmp_path / "r.html", _data(dumps, reference_dump=tmp_path / "fp16",
                                                  runs=[BackendRun("fp32", tmp_path / "fp32")])).read_text()
    lsb_tol, rtol = tolerances("fp16")
    assert "Reference: <b>simulator</b> at fp16." in text
    assert re.findall(r'<svg class="plot" id="(plot\d-\w+)"', text) == ["plot0-rel"]
    assert f"tolerance {rtol:g}</text>" in text and ">1e-3</text>" in text
    rows = [r for r in compare_paths(tmp_path / "fp32", tmp_path / "fp16", lsb_tol=lsb_tol, rtol=rtol) if not r.skipped]
    bad = [r for r in rows if not r.ok]
    assert len(re.findall(r'class="pbad"', text)) == len(bad)
    if bad:
        assert f"first over tolerance: tensor {bad[0].index} (" in text
        assert f"{len(bad)} of {len(rows)} tensors over tolerance" in text
    else:
        assert "first over tolerance" not in text and "within tolerance, 33 tensors" in text


def _data_uris(text: str, cls: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(rf'<img class="{cls}"[^>]* src="data:image/png;base64,([^"]+)"', text)]


def test_input_picture_and_tensor_embedded(page: Path):
    from PIL import Image

    text = page.read_text()
    assert _data_uris(text, "picture") == [(DEMO / "sample.png").read_bytes()]
    [tensor] = _data_uris(text, "tensor")
    with Image.open(io.BytesIO(tensor)) as im:
        got = np.asarray(im.convert("RGB"), dtype=np.int32)
    with Image.open(DEMO / "sample.png") as im:  # what the model was fed: the picture resized to 128x128
        want = np.asarray(im.convert("RGB").resize((128, 128), Image.Resampling.BILINEAR), dtype=np.int32)
    assert got.shape == (128, 128, 3)
    assert np.abs(got - want).max() <= 1


def test_png_writer_round_trips():
    from PIL import Image

    rng = np.random.default_rng(0)
    for px in (rng.integers(0, 256, (5, 7, 3), dtype=np.uint8), rng.integers(0, 256, (4, 9), dtype=np.uint8)):
        with Image.open(io.BytesIO(png_bytes(px))) as im:
            im.load()
            assert np.array_equal(np.asarray(im), px)


def test_labels_and_names_are_escaped(dumps: Dumps, tmp_path: Path):
    labels = ['<script>alert("x")</script>', "a & b"] + [f"c{i}" for i in range(8)]
    text = write_report(tmp_path / "r.html", _data(dumps, labels=labels, title="<i>t</i>",
                                                  runs=[BackendRun("gpu <GLES>", dumps.good)])).read_text()
    assert "<script>alert" not in text and "<i>t</i>" not in text and "&lt;i&gt;t&lt;/i&gt;" in text
    # classes 0 and 1 are in the top-5 (tests above)
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text and "a &amp; b" in text
    assert "gpu &lt;GLES&gt;" in text


def test_not_a_picture_input(tmp_path: Path):
    """A model whose input is not [1][h][w][1 or 3]: the page says so instead of drawing it."""
    from mobilegen.report import _input_pixels

    assert _input_pixels(None, b"", np.zeros((1, 10), np.float32)) is None
    assert _input_pixels(None, b"", np.zeros((1, 4, 4, 2), np.float32)) is None


def test_missing_picture_is_one_line(dumps: Dumps, tmp_path: Path):
    from mobilegen.errors import UserInputError

    with pytest.raises(UserInputError, match="no-such.png: no such picture"):
        write_report(tmp_path / "r.html", _data(dumps, input_image=tmp_path / "no-such.png"))


# The page may reference nothing but itself: data: URIs and #fragments.
def external_references(text: str) -> list[str]:
    refs = re.findall(r'\b(?:src|href|xlink:href|action|poster|data)\s*=\s*["\']?([^"\'\s>]+)', text, re.I)
    refs += re.findall(r"url\(\s*['\"]?([^'\")]+)", text, re.I)
    refs += re.findall(r"@import\s+['\"]?([^'\";]+)", text, re.I)
    bad = [r for r in refs if not (r.startswith("data:") or r.startswith("#"))]
    return bad + re.findall(r"@font-face|<link\b[^>]*>|<iframe|<object|<embed", text, re.I)


def test_page_is_self_contained(page: Path):
    text = page.read_text()
    assert external_references(text) == []
    assert "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:;" in text


def test_self_contained_check_catches_an_external_font(page: Path):
    text = page.read_text().replace("</head>", '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto"></head>', 1)
    assert external_references(text)
    assert external_references("<style>@font-face{font-family:F;src:url(https://example.com/f.woff2)}</style>")
    assert external_references('<img src="http://example.com/x.png">')


# -- reproducible -----------------------------------------------------------------------------------

def test_reproducible_copy_is_byte_identical(dumps: Dumps, tmp_path: Path):
    a = write_report(tmp_path / "a.html", _data(dumps), timings=False).read_bytes()
    # the same results from other folders and other timings: the same bytes
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in ("sim", "good", "bad"):
        shutil.copytree(dumps.root / name, moved / name)
    shutil.copy(dumps.x, moved / "x.npy")
    other = Dumps(moved, moved / "x.npy", moved / "sim", moved / "good", moved / "bad", dumps.perturbed)
    data = _data(other, runs=[BackendRun(GOOD, other.good, {"first_run_ms": 99.0, "best_warm_run_ms": 1.0}),
                              BackendRun(BAD, other.bad)])
    b = write_report(tmp_path / "b.html", data, timings=False).read_bytes()
    assert a == b
    text = a.decode()
    assert html.escape(TIMINGS_ELSEWHERE) in text
    assert "12.35" not in text and "written 20" not in text and str(dumps.root) not in text
    timed = write_report(tmp_path / "t.html", _data(dumps)).read_text()
    assert "<td class=\"n\">12.35</td><td class=\"n\">4.50</td>" in timed and "written 20" in timed
    assert html.escape(TIMINGS_ELSEWHERE) not in timed
    assert f"mobilegen compare {dumps.good} {dumps.reference}" in timed


def test_evaluations_rows(dumps: Dumps, tmp_path: Path):
    rows = [{"name": "int8", "n": 40, "top1": 0.925, "top5": 1.0, "agreement": 0.975, "images_per_second": 123.4}]
    timed = write_report(tmp_path / "t.html", _data(dumps, evaluations=rows)).read_text()
    assert "<td>int8</td><td class=\"n\">40</td><td class=\"n\">92.5%</td><td class=\"n\">100.0%</td>" \
           "<td class=\"n\">97.5%</td><td class=\"n\">123.4</td>" in timed
    plain = write_report(tmp_path / "p.html", _data(dumps, evaluations=rows), timings=False).read_text()
    assert "92.5%" in plain and "123.4" not in plain


# -- headless Chromium ------------------------------------------------------------------------------

@dataclass
class Rendered:
    dom: str
    console: list[str]  # the page's console messages (Chromium logs them as CONSOLE lines)
    screenshot: Path


def render(page: Path, out: Path) -> Rendered:
    """The page in headless Chromium with the network off (no DNS, a dead proxy): its DOM after
    scripts ran, its console messages and a screenshot."""
    chromium = require_tool("chromium", "chromium")
    out.mkdir(parents=True, exist_ok=True)
    base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--disable-extensions", "--disable-background-networking", "--disable-sync", "--disable-component-update",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
            "--enable-logging=stderr", "--v=0", f"--user-data-dir={out / 'profile'}"]
    dom = subprocess.run([*base, "--dump-dom", page.resolve().as_uri()], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    shot = out / "screenshot.png"
    r = subprocess.run([*base, f"--screenshot={shot}", "--window-size=1200,900", page.resolve().as_uri()],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    console = [ln for ln in (dom.stderr + r.stderr).splitlines() if ":CONSOLE" in ln]
    return Rendered(dom.stdout, console, shot)


def page_problems(r: Rendered, runs: int) -> list[str]:
    """What is wrong with a rendered report: console messages, errors the page recorded, missing
    plots / tables / top-5, a blank screenshot."""
    from PIL import Image

    problems = [f"console: {ln}" for ln in r.console]
    errors = re.search(r'<html[^>]*data-errors="([^"]*)"', r.dom)
    if errors:
        problems.append(f"page errors: {errors.group(1)}")
    plots = re.findall(r'<svg class="plot"[^>]*>(.*?)</svg>', r.dom, re.S)
    if len(plots) < runs:
        problems.append(f"{len(plots)} plots for {runs} runs")
    for p in plots:
        if len(re.findall(r"<circle ", p)) < 5 or "class=\"tol\"" not in p:
            problems.append("a plot without its points or tolerance line")
    if len(re.findall(r'<table class="layers">', r.dom)) != runs:
        problems.append("per-tensor tables missing")
    if not re.search(r'<table class="top5" id="top5">.*?<span class="label">', r.dom, re.S):
        problems.append("no top-5 table with labels")
    if not re.search(r'<img class="tensor"[^>]*src="data:image/png', r.dom):
        problems.append("no input picture")
    with Image.open(r.screenshot) as im:
        px = np.asarray(im.convert("RGB"), dtype=np.float64)
    if px.std() < 10 or len(np.unique(px.reshape(-1, 3), axis=0)) < 50:
        problems.append(f"blank screenshot (pixel std {px.std():.1f})")
    return problems


def test_renders_in_chromium(page: Path, tmp_path: Path):
    r = render(page, tmp_path)
    assert page_problems(r, runs=2) == []
    assert "<svg" in r.dom and 'id="plot1-lsb"' in r.dom


def test_complete_without_javascript(page: Path, tmp_path: Path):
    """The page without its scripts (headless Chromium cannot switch JavaScript off and still
    draw) looks the same and has everything: they only react to a click or an error."""
    from PIL import Image

    bare = tmp_path / "bare.html"
    bare.write_text(re.sub(r"<script>.*?</script>", "", page.read_text(), flags=re.S))
    assert "<script" not in bare.read_text()
    shots = []
    for p in (page, bare):
        r = render(p, tmp_path / p.stem)
        assert page_problems(r, runs=2) == []
        with Image.open(r.screenshot) as im:
            shots.append(np.asarray(im.convert("RGB")))
    assert np.array_equal(shots[0], shots[1])


# bug -> (the page with it, what page_problems must say)
SEEDED = {
    # an external web font: the page's CSP refuses it (a console message and a recorded error)
    "external font": (lambda t: t.replace("</head>", f'<link rel="stylesheet" href="{FONT}"></head>', 1), "fonts.googleapis.com"),
    # the same without the CSP: the network is off, the failed load is recorded in the page
    "external font, no CSP": (lambda t: re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "",
                                               t.replace("</head>", f'<link rel="stylesheet" href="{FONT}"></head>', 1)),
                              "page errors: failed to load https://fonts.googleapis.com"),
    # a script error
    "script error": (lambda t: t.replace("</body>", "<script>document.getElementById('no-such-id').open = true;</script></body>", 1),
                     "Uncaught TypeError"),
    # a broken plot: a coordinate that is not a number
    "broken svg": (lambda t: re.sub(r'(<circle class="pok" cx=")([\d.]+)', r"\g<1>12px3", t, count=1), "attribute cx"),
    # a plot that is not drawn
    "plot missing": (lambda t: re.sub(r'<svg class="plot".*?</svg>', "", t, count=1, flags=re.S), "1 plots for 2 runs"),
    # nothing visible
    "blank page": (lambda t: t.replace("</style>", "body{visibility:hidden}</style>", 1), "blank screenshot"),
}
FONT = "https://fonts.googleapis.com/css2?family=Roboto"


@pytest.mark.parametrize("bug", list(SEEDED))
def test_chromium_checks_catch_a_seeded_bug(page: Path, tmp_path: Path, bug: str):
    broken = tmp_path / "broken.html"
    text = page.read_text()
    seed, expected = SEEDED[bug]
    seeded = seed(text)
    assert seeded != text
    broken.write_text(seeded)
    problems = page_problems(render(broken, tmp_path / "out"), runs=2)
    assert any(expected in p for p in problems), f"the seeded bug ({bug}) went unnoticed: {problems}"


# -- mobilegen verify --report ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_project(tmp_path_factory, dumps: Dumps) -> Path:
    root = tmp_path_factory.mktemp("verify")
    r = CliRunner().invoke(app, ["generate", str(DEMO / "model.tflite"), "--target", "android", "--out", str(root / "p"),
                                 "--labels", str(DEMO / "labels.txt")])
    assert r.exit_code == 0, r.output
    return root / "p"


def test_verify_report_needs_the_model(demo_project: Path, dumps: Dumps, tmp_path: Path):
    runner = CliRunner()
    base = ["verify", str(demo_project), "-i", str(dumps.x), "-o", str(tmp_path / "y.npy"), "--report", str(tmp_path / "r.html")]
    r = runner.invoke(app, base)
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "--report needs --model" in r.output, r.output
    r = runner.invoke(app, [*base, "--model", str(DEMO / "sample.png")])
    assert r.exit_code == 2 and "is not the model" in r.output and "mobilegen.json records" in r.output, r.output
    bad = tmp_path / "x.npy"
    np.save(bad, np.zeros((1, 4, 4, 3), np.float32))
    r = runner.invoke(app, [*base[:2], "-i", str(bad), *base[4:], "--model", str(DEMO / "model.tflite")])
    assert r.exit_code == 2 and "expects float32[1, 128, 128, 3]" in r.output and "building" not in r.output, r.output
    assert not (tmp_path / "r.html").exists()


def test_verify_report(demo_project: Path, dumps: Dumps, tmp_path: Path):
    """`verify --backend all --report`: both backends and (with LiteRT) its reference kernels
    against the simulator, in a page Chromium renders without a problem."""
    from tests.test_engine_cpu import require_toolchain

    require_toolchain()
    report = tmp_path / "r.html"
    r = CliRunner().invoke(app, ["verify", str(demo_project), "-i", str(dumps.x), "-o", str(tmp_path / "y.npy"),
                                 "--backend", "all", "--repeat", "2", "--report", str(report),
                                 "--model", str(DEMO / "model.tflite")])
    assert r.exit_code == 0, r.output[-3000:]
    assert (tmp_path / "y-gpu.npy").is_file() and (tmp_path / "y-cpu.npy").is_file()
    assert np.array_equal(np.load(tmp_path / "y-gpu.npy"), np.load(tmp_path / "y-cpu.npy"))
    assert "android gpu (GLES 3.1, Mesa) vs the simulator: all 33 tensors within tolerance" in r.output
    assert "android cpu vs the simulator: all 33 tensors within tolerance" in r.output
    text = report.read_text()
    runs = re.findall(r'<section class="run" id="run\d"><h2>([^<]*) vs simulator</h2>', text)
    assert runs[-2:] == ["android gpu (GLES 3.1, Mesa)", "android cpu"]
    assert len(runs) == 3 or "ai-edge-litert (the verify extra) is not installed" in text
    assert "<b>FAILED</b>" not in text and "first over tolerance" not in text
    assert '<span class="label">tabby</span>' in text  # the project's labels
    assert re.search(r'<td>android cpu</td><td class="n">[\d.]+</td><td class="n">[\d.]+</td>', text)  # timings
    assert "weights blob (model.mgw)" in text and external_references(text) == []
    assert page_problems(render(report, tmp_path / "chromium"), runs=len(runs)) == []


def test_verify_report_over_tolerance_exits_1_after_writing(demo_project: Path, dumps: Dumps, tmp_path: Path):
    """A run over tolerance: the report is written, names the layer, and verify exits 1
    (ToleranceExceeded). The run here is the seeded bad dump, so no engine is built."""
    from mobilegen.cli.verify import write_verify_report
    from mobilegen.errors import ToleranceExceeded

    report = tmp_path / "r.html"
    with pytest.raises(ToleranceExceeded, match=r"android cpu: over tolerance against the simulator; see .*r\.html"):
        write_verify_report(report, demo_project, DEMO / "model.tflite", [dumps.x], [("cpu", dumps.bad, {})],
                            target="android", arch="host", work=tmp_path / "work")
    text = report.read_text()
    assert f"first over tolerance: tensor {dumps.perturbed} (DEPTHWISE_CONV_2D)" in text
    assert f"tensor {dumps.perturbed}, written by op" in text
    assert "android cpu</a> vs simulator: <b>FAILED</b>" in text


def test_verify_report_fp16_project_follows_its_keep_set(dumps: Dumps, tmp_path: Path):
    """An fp16 project: the reference is the simulator at fp16 under the keep set the project
    records (its provenance, else precision_plan.json); no LiteRT row (not the model's precision).
    The run here is that simulator's own dump, so no engine is built."""
    import json

    from mobilegen.cli.verify import write_verify_report
    from mobilegen.precision_plan import project_keep_fp32 as _keep_fp32
    from mobilegen.dump import write_dump
    from mobilegen.export import plan_for_precision
    from mobilegen.plan import folded_tensors
    from mobilegen.sim.runner import Simulator
    from mobilegen.tflite.reader import read_model_file

    project = tmp_path / "p"
    r = CliRunner().invoke(app, ["generate", str(DEMO / "model.tflite"), "--target", "android", "--out", str(project),
                                 "--precision", "fp16"])
    assert r.exit_code == 0, r.output
    g = read_model_file(DEMO / "model.tflite")
    pg = plan_for_precision(g, "fp16")[0].graph  # the int8 model dequantized: float activations
    written = [t for t in pg.written_tensors() if pg.tensors[t].dtype == "float32"]
    keep = frozenset(written[3:5])
    assert len(keep) == 2
    (project / "precision_plan.json").write_text(json.dumps({"format": 1, "keep_fp32": sorted(keep)}))
    assert _keep_fp32(project, {}) == keep
    assert _keep_fp32(project, {"fp32_tensors": [written[0]]}) == {written[0]}  # the provenance wins
    plan, _ = plan_for_precision(g, "fp16", keep)
    run = tmp_path / "run"
    write_dump(run, plan.graph, Simulator(plan).run([np.load(dumps.x)]), folded_tensors(plan))
    report = tmp_path / "r.html"
    write_verify_report(report, project, DEMO / "model.tflite", [dumps.x], [("gpu", run, {})], target="android",
                        arch="host", work=tmp_path / "work")
    text = report.read_text()
    assert "Reference: <b>simulator</b> at fp16." in text
    assert "precision plan: 2 float tensors stored in float32" in text
    assert "android gpu (GLES 3.1, Mesa)</a> vs simulator: <b>OK</b> &ndash; bit-exact" in text
    assert "LiteRT BUILTIN_REF" not in text and "the project runs at fp16, LiteRT at the model&#x27;s own" in text
