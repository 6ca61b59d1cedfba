"""The verification report: one self-contained HTML page of a model's verification.

`write_report(path, ReportData(...))` compares every run's dump (DESIGN.md's dump format: a
generated engine on a backend, LiteRT's reference kernels, a device dump) with the reference dump
(the simulator at the project's precision), tensor by tensor, and writes:

  - the model: ops by kind, tensor counts, parameters, precision, inputs and outputs, sizes;
  - per run, a plot (inline SVG) of the error of every tensor in graph order against the
    reference (max LSB for integer tensors, max |a-b| / max |ref| for float ones; log scale), the
    tolerance drawn as a line and the first tensor over it marked, then the per-tensor table
    (a <details> element: collapsible with no script);
  - the input the runs were fed, drawn back to a picture (a PNG written here with zlib), and the
    original picture when there is one, both as data: URIs; next to it the reference's top-5 and
    each run's, with the class labels;
  - timings (first/cold and best warm run), sizes, accuracy rows (`build`'s evaluation), notes.

The page loads nothing: no scripts, styles, fonts or images from anywhere (a Content-Security-
Policy in the page says so to the browser, which then refuses any external load), and it is
complete without JavaScript. A small inline script only opens the table row a plot point links
to, and records script errors and failed loads in the page (data-errors on <html>, and a banner),
where the tests look for them.

`timings=False` writes the reproducible copy (build's DIR/dist/report.html): no timings, no date,
no local paths and no random ids, so the same dumps give a byte-identical file; the page says
timings are left out and where they are."""

from __future__ import annotations

import base64
import hashlib
import html
import math
import struct
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mobilegen import __version__
from mobilegen import compare
from mobilegen.compare import FLOAT_RTOL, Row, compare_paths, short_name
from mobilegen.dump import load_npy, read_dump
from mobilegen.errors import UserInputError
from mobilegen.ir.graph import Graph

TOP_K = 5
TIMINGS_ELSEWHERE = ("Timings are left out of this reproducible copy of the report: they change from run to run, "
                     "and this file is byte-identical for the same model, inputs and results. The report written "
                     "next to it by the same run (report.html in the build directory, or the one `mobilegen verify "
                     "--report` writes) has them, as does the build's build.json.")


@dataclass
class BackendRun:
    name: str  # "android gpu (GLES 3.1, Mesa)"
    dump: Path  # that run's dump directory
    timing: dict | None = None  # {"first_run_ms": float, "best_warm_run_ms": float} or None


@dataclass
class ReportData:
    title: str
    model: Path  # the .tflite
    input_tensor: Path  # the .npy fed to every backend
    reference_name: str  # "simulator"
    reference_dump: Path
    runs: list[BackendRun]
    labels: list[str] | None = None  # default: the model's metadata, else the class numbers
    input_image: Path | None = None  # the picture the input came from, if any
    sizes: dict[str, int] = field(default_factory=dict)  # "model.tflite" -> bytes, "weights blob" -> bytes, ...
    evaluations: list[dict] = field(default_factory=list)  # build's rows {name, top1, top5, agreement, n}
    notes: list[str] = field(default_factory=list)
    precision: str | None = None  # the reference's precision (int8 / fp16 / fp32); default: read from the dumps


def write_report(path: Path, data: ReportData, *, timings: bool = True) -> Path:
    """Write the report page to `path`; returns `path`. `timings=False`: the reproducible copy."""
    path = Path(path)
    page = render_report(data, timings=timings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(page.encode("utf-8"))
    return path


# -- what the page shows, computed -----------------------------------------------------------------

@dataclass
class _Run:
    name: str
    rows: list[Row]
    values: dict[int, np.ndarray]
    records: dict[int, dict]
    timing: dict | None
    dump: Path
    ops: dict[int, str]  # tensor index -> the kind of the op that writes it
    k: int = 0  # position in the report (ids of its plot points and table rows)
    divergence: str | None = None  # compare's account of the first tensor over tolerance


def render_report(data: ReportData, *, timings: bool = True) -> str:
    model = Path(data.model)
    if not model.is_file():
        raise UserInputError(f"{model}: no such model file")
    from mobilegen.tflite.reader import read_model

    buf = model.read_bytes()
    g = read_model(buf, source=str(model))
    ref_records, ref_values = read_dump(data.reference_dump)
    precision = data.precision or _infer_precision(g, ref_values)
    lsb_tol, rtol = tolerances(precision)
    pg = _plan_graph(g, precision)
    ops = {t: op.opcode for op in pg.ops for t in op.outputs}
    runs = []
    for run in data.runs:
        recs, values = read_dump(run.dump)
        rows = compare_paths(run.dump, data.reference_dump, lsb_tol=lsb_tol, rtol=rtol, graph=pg)
        d = compare.first_divergence(rows, pg)
        where = None if d is None else _divergence(d)
        runs.append(_Run(run.name, rows, values, {int(r["index"]): r for r in recs}, run.timing, Path(run.dump), ops,
                         len(runs), where))
    reference = _Run(data.reference_name, [], ref_values, {int(r["index"]): r for r in ref_records}, None,
                     Path(data.reference_dump), ops)
    labels = data.labels
    if labels is None:
        from mobilegen.evaluate import tflite_labels

        labels = tflite_labels(buf, source=str(model))
    x = load_npy(Path(data.input_tensor))
    if data.input_image is not None and not Path(data.input_image).is_file():
        raise UserInputError(f"{data.input_image}: no such picture (the report's input image)")

    page = _Page()
    page.head(data.title)
    page.add(f"<header><h1>{_e(data.title)}</h1><p class=\"sub\">Verification report by mobilegen {_e(__version__)}"
             + (f", written {_e(time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))}" if timings else "")
             + f". Reference: <b>{_e(data.reference_name)}</b> at {_e(precision)}.</p></header>")
    page.add(_verdicts(runs, data.reference_name, precision))
    page.add(_model_section(g, buf, model, precision, data.sizes))
    page.add(_input_section(g, buf, x, data.input_image, reference, runs, labels))
    for k, run in enumerate(runs):
        page.add(_run_section(k, run, data.reference_name, reference.dump, (lsb_tol, rtol), timings))
    if data.evaluations:
        page.add(_evaluations(data.evaluations, timings))
    page.add(_timings_section(runs, timings))
    notes = list(data.notes)
    page.add("<section id=\"notes\"><h2>Notes</h2><ul>"
             + "".join(f"<li>{_e(n)}</li>" for n in notes + _standing_notes(precision))
             + "</ul></section>")
    page.add(f"<footer>mobilegen {_e(__version__)} &middot; model sha256 {_e(hashlib.sha256(buf).hexdigest())}</footer>")
    return page.finish()


def _divergence(d) -> str:
    """compare.first_divergence in one sentence: the first tensor over tolerance, its op, whether
    it diverges there or inherits the difference (its inputs' status), where the difference starts."""
    r = d.row

    def op(row):
        return f"op {row.op_index} {row.op}" if getattr(row, "op", None) else "op unknown"

    text = f"tensor {r.index}, written by {op(r)}: {d.verdict}"
    ins = [f"tensor {i.index} {i.status}" for i in d.inputs if i.status != compare.CONSTANT]
    if ins:
        text += f" (inputs: {', '.join(ins)})"
    elif d.inputs:
        text += " (its inputs are all constants)"
    if d.origin is not None and d.origin.index != r.index:
        text += f"; the difference starts at tensor {d.origin.index} ({op(d.origin)}), whose inputs are equal"
    return text


def _plan_graph(g: Graph, precision: str) -> Graph:
    """The graph the dumps are of: the plan's at `precision` (an int8 model at a float precision
    runs dequantized), which `compare` needs to name ops and their inputs; the model's own when
    the precision does not apply to it."""
    from mobilegen.errors import MobilegenError
    from mobilegen.export import plan_for_precision

    try:
        return plan_for_precision(g, precision)[0].graph
    except MobilegenError:
        return g


def tolerances(precision: str) -> tuple[int, float]:
    """(integer tensors in LSB, float tensors relative): `compare`'s defaults at `precision`."""
    return compare.PRECISION_TOLERANCES.get(precision, (0, FLOAT_RTOL))


def _infer_precision(g: Graph, ref_values: dict[int, np.ndarray]) -> str:
    """int8 when the reference computes in integers, fp16 when every float it holds is a binary16
    number, else fp32."""
    written = [i for i in g.written_tensors() if i in ref_values]
    if any(ref_values[i].dtype.kind in "iu" for i in written if i not in g.outputs):
        return "int8"
    floats = [ref_values[i] for i in written if ref_values[i].dtype.kind == "f"]
    if floats and all(np.array_equal(v.astype(np.float16).astype(v.dtype), v, equal_nan=True) for v in floats):
        return "fp16"
    return "fp32"


def _standing_notes(precision: str) -> list[str]:
    lsb_tol, rtol = tolerances(precision)
    return [
        f"Each run is compared with the reference tensor by tensor, with `mobilegen compare`'s tolerances at {precision}: "
        f"integer tensors by their largest difference in LSB (tolerance {lsb_tol}" + (": bit-exact" if lsb_tol == 0 else "")
        + f"), float tensors by max |run - reference| / max |reference| (tolerance {rtol:g}). "
        "Re-run a comparison with `mobilegen compare RUN_DUMP REFERENCE_DUMP`.",
        "Host runs (GLES on Mesa's llvmpipe, the Metal kernels on the host executor, qemu) check the numbers, "
        "not a phone's speed: their timings say nothing about a device.",
    ]


# -- sections ---------------------------------------------------------------------------------------

def _verdict(rows: list[Row], ops: dict[int, str]) -> tuple[bool, str, Row | None]:
    compared = [r for r in rows if not r.skipped]
    bad = [r for r in compared if not r.ok]
    if bad:
        first = bad[0]
        op = _op_of(first, ops)
        return False, (f"{len(bad)} of {len(compared)} tensors over tolerance; first: tensor {first.index} "
                       f"'{short_name(first.name)}'" + (f" ({op})" if op else "")), first
    if all(r.equal == 1.0 for r in compared):
        return True, f"bit-exact, {len(compared)}/{len(compared)} tensors", None
    worst = max((r.rel or 0.0) for r in compared)
    lsb = max((r.max_lsb or 0) for r in compared)
    return True, (f"within tolerance, {len(compared)} tensors (max rel {worst:.1e}" + (f", max {lsb} LSB" if lsb else "")
                  + ")"), None


def _op_of(row: Row, ops: dict[int, str]) -> str | None:
    """The kind of the op that writes the row's tensor (compare's `op` where it has one)."""
    return getattr(row, "op", None) or ops.get(row.index)


def _verdicts(runs: list[_Run], ref: str, precision: str) -> str:
    items = []
    for k, run in enumerate(runs):
        ok, detail, _ = _verdict(run.rows, run.ops)
        items.append(f"<li class=\"{'ok' if ok else 'bad'}\"><a href=\"#run{k}\">{_e(run.name)}</a> vs {_e(ref)}: "
                     f"<b>{'OK' if ok else 'FAILED'}</b> &ndash; {_e(detail)}</li>")
    if not items:
        items.append("<li>No runs to compare.</li>")
    return f"<section id=\"summary\"><h2>Verdict</h2><ul class=\"verdicts\">{''.join(items)}</ul></section>"


def _model_section(g: Graph, buf: bytes, model: Path, precision: str, sizes: dict[str, int]) -> str:
    kinds = sorted(Counter(op.opcode for op in g.ops).items(), key=lambda kv: (-kv[1], kv[0]))
    written = g.written_tensors()
    consts = [t for t in g.tensors if t.is_const]

    def io(i):
        t = g.tensors[i]
        q = "" if t.quant is None or t.quant.per_channel else f", scale {t.quant.s:.6g}, zero point {t.quant.zp}"
        return f"<li><code>{_e(t.name)}</code> {list(t.shape)} {t.dtype}{_e(q)}</li>"

    facts = [
        ("model", f"<code>{_e(model.name)}</code>, {_bytes(len(buf))}"),
        ("sha256", f"<code>{hashlib.sha256(buf).hexdigest()}</code>"),
        ("precision", _e(precision)),
        ("operators", f"{len(g.ops)} ({len(kinds)} kinds)"),
        ("tensors", f"{len(g.tensors)}: {len(written)} written by operators, {len(consts)} constant"),
        ("parameters", f"{g.param_count():,} ({_bytes(g.param_bytes())})"),
    ]
    rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts)
    ops = "".join(f"<tr><td><code>{_e(k)}</code></td><td class=\"n\">{n}</td></tr>" for k, n in kinds)
    all_sizes = {model.name: len(buf), **sizes}
    size_rows = "".join(f"<tr><td>{_e(k)}</td><td class=\"n\">{v:,}</td><td class=\"n\">{_bytes(v)}</td></tr>"
                        for k, v in all_sizes.items())
    return (
        "<section id=\"model\"><h2>Model</h2><div class=\"cols\">"
        f"<div><table class=\"facts\">{rows}</table>"
        f"<h3>Inputs</h3><ul>{''.join(io(i) for i in g.inputs)}</ul>"
        f"<h3>Outputs</h3><ul>{''.join(io(i) for i in g.outputs)}</ul></div>"
        f"<div><h3>Operators by kind</h3><table class=\"ops\"><tr><th>kind</th><th>count</th></tr>{ops}</table></div>"
        f"<div><h3>Sizes</h3><table class=\"sizes\" id=\"sizes\"><tr><th>what</th><th>bytes</th><th></th></tr>{size_rows}</table></div>"
        "</div></section>"
    )


def _scores(run: _Run, g: Graph) -> np.ndarray | None:
    out = g.outputs[0]
    if out not in run.values:
        return None
    y = run.values[out]
    rec = run.records.get(out, {})
    if y.dtype.kind in "iu":
        scale, zp = rec.get("scale"), rec.get("zero_point")
        t = g.tensors[out]
        if not isinstance(scale, (int, float)) and t.quant is not None:
            scale, zp = t.quant.s, t.quant.zp
        if isinstance(scale, (int, float)) and isinstance(zp, (int, float)):
            return float(scale) * (y.astype(np.float64).reshape(-1) - float(zp))
    return y.astype(np.float64).reshape(-1)


def _top(scores: np.ndarray | None) -> list[tuple[int, float]]:
    if scores is None:
        return []
    order = np.argsort(-scores, kind="stable")[:TOP_K]
    return [(int(i), float(scores[i])) for i in order]


def _input_section(g: Graph, buf: bytes, x: np.ndarray, image: Path | None, reference: _Run, runs: list[_Run],
                   labels: list[str] | None) -> str:
    figures = []
    if image is not None:
        uri = _image_uri(Path(image))
        if uri:
            figures.append(f"<figure><img class=\"picture\" alt=\"the input picture\" src=\"{uri}\">"
                           f"<figcaption>the picture ({_e(Path(image).name)})</figcaption></figure>")
    rgb = _input_pixels(g, buf, x)
    if rgb is not None:
        h, w = rgb.shape[:2]
        scale = max(1, min(8, 224 // max(h, w, 1)))
        uri = "data:image/png;base64," + base64.b64encode(png_bytes(rgb)).decode("ascii")
        figures.append(f"<figure><img class=\"tensor\" alt=\"the input tensor as a picture\" width=\"{w * scale}\" "
                       f"height=\"{h * scale}\" src=\"{uri}\"><figcaption>the input tensor {list(x.shape)} {x.dtype}, "
                       "drawn back to pixels</figcaption></figure>")
    else:
        figures.append(f"<p>The input {list(x.shape)} {x.dtype} is not a picture.</p>")

    out = g.tensors[g.outputs[0]]
    n = out.size

    def label(i):
        return labels[i] if labels is not None and i < len(labels) else str(i)

    sources = [reference] + runs
    tops = [_top(_scores(s, g)) for s in sources]
    head = "".join(f"<th>{_e(s.name)}</th>" for s in sources)
    body = []
    for rank in range(min(TOP_K, n)):
        cells = []
        for k, top in enumerate(tops):
            if rank >= len(top):
                cells.append("<td>-</td>")
                continue
            i, s = top[rank]
            diff = k > 0 and (rank >= len(tops[0]) or tops[0][rank][0] != i)
            cells.append(f"<td class=\"{'diff' if diff else ''}\"><span class=\"label\">{_e(label(i))}</span> "
                         f"<span class=\"cls\">({i})</span> <span class=\"score\">{s:.4f}</span></td>")
        body.append(f"<tr><th>{rank + 1}</th>{''.join(cells)}</tr>")
    agree = []
    for run, top in zip(runs, tops[1:]):
        same = bool(top) and bool(tops[0]) and [i for i, _ in top] == [i for i, _ in tops[0]]
        top1 = bool(top) and bool(tops[0]) and top[0][0] == tops[0][0][0]
        agree.append(f"<li>{_e(run.name)}: " + ("same top-5 as the reference" if same else
                     "same top-1, top-5 differs" if top1 else "<b>top-1 differs from the reference</b>") + "</li>")
    return (
        "<section id=\"input\"><h2>Input and top-5</h2><div class=\"cols\">"
        f"<div class=\"figures\">{''.join(figures)}</div>"
        f"<div><table class=\"top5\" id=\"top5\"><tr><th>rank</th>{head}</tr>{''.join(body)}</table>"
        f"<ul class=\"agree\">{''.join(agree)}</ul>"
        f"<p class=\"sub\">Scores of output <code>{_e(out.name)}</code> ({n} classes), dequantized; "
        "a class that differs from the reference's at that rank is highlighted.</p></div>"
        "</div></section>"
    )


def _metric(row: Row) -> tuple[str | None, float | None]:
    """('lsb' | 'rel' | None, value): what the plot draws for a row (None: not comparable)."""
    if row.skipped or row.max_abs is None:
        return None, None
    if row.max_lsb is not None:
        return "lsb", float(row.max_lsb)
    return "rel", row.rel


def _run_section(k: int, run: _Run, ref: str, ref_dump: Path, tol: tuple[int, float], timings: bool) -> str:
    ok, detail, first = _verdict(run.rows, run.ops)
    kinds = Counter(_metric(r)[0] for r in run.rows)
    # One plot per kind of tensor; a kind with a few tensors only (an int8 model's dequantized
    # output) gets a line of text instead of a plot of its own.
    main = "lsb" if kinds.get("lsb", 0) >= kinds.get("rel", 0) else "rel"
    plots, lines = [], []
    for kind in (main, "rel" if main == "lsb" else "lsb"):
        if kind == main or kinds.get(kind, 0) > FEW:
            plots.append(_plot(k, run, kind, first if first is not None and _metric(first)[0] in (kind, None) else None,
                               tol, main == kind))
        elif kinds.get(kind):
            lines.append(_few(run, kind))
    table = _table(k, run)
    # Local paths only in the timed copy: the reproducible one is the same wherever the dumps were.
    where = (f"<p class=\"sub\">dump: <code>{_e(str(run.dump))}</code>; again, in the terminal: <code>mobilegen compare "
             f"{_e(_quote(run.dump))} {_e(_quote(ref_dump))}</code></p>" if timings else "")
    # compare's account of the first tensor over tolerance: diverges there, or inherited from upstream
    divergence = f"<p class=\"where\"><b>Where:</b> {_e(run.divergence)}.</p>" if run.divergence else ""
    return (
        f"<section class=\"run\" id=\"run{k}\"><h2>{_e(run.name)} vs {_e(ref)}</h2>"
        f"<p class=\"{'ok' if ok else 'bad'}\"><b>{'OK' if ok else 'FAILED'}</b> &ndash; {_e(detail)}</p>"
        f"{divergence}{where}{''.join(plots)}{''.join(lines)}"
        f"<details{' open' if not ok else ''}><summary>per-tensor table ({len(run.rows)} tensors)</summary>{table}</details>"
        "</section>"
    )


# The plot: x = position in graph order, y = log10 of the error; an "exact" row under the decades.
W, H = 1100, 260
ML, MR, MT, MB = 64, 16, 22, 46
EXACT_GAP = 20


FEW = 3  # a kind of tensor with this many or fewer in a run is listed, not plotted


def _few(run: _Run, kind: str) -> str:
    items = []
    for r in run.rows:
        m, v = _metric(r)
        if m != kind:
            continue
        op = _op_of(r, run.ops)
        value = "exact" if v == 0 else (f"{int(v)} LSB" if kind == "lsb" else f"rel {v:.3g}")
        items.append(f"<a href=\"#r{run.k}-t{r.index}\">tensor {r.index}</a>" + (f" ({_e(op)})" if op else "")
                     + f": <span class=\"{'ok' if r.ok else 'bad'}\">{value}{'' if r.ok else ', over tolerance'}</span>")
    what = "integer" if kind == "lsb" else "float"
    return f"<p class=\"few\">{what.capitalize()} tensors: {'; '.join(items)}.</p>"


def _plot(k: int, run: _Run, kind: str, first: Row | None, tolerance: tuple[int, float], main: bool = True) -> str:
    """The SVG of one run's `kind` of tensors ("lsb": integer, "rel": float) at their positions in
    graph order; `main`: the run's main plot, which also marks the tensors not compared (skipped:
    grey rings on the exact row; not comparable: red crosses at the top)."""
    rows = run.rows
    n = len(rows)
    values = [v for r in rows for m, v in [_metric(r)] if m == kind and v is not None and v > 0 and math.isfinite(v)]
    if kind == "lsb":
        lo = 0.0
        hi = max(1.0, math.ceil(math.log10(max(values) + 0.5))) if values else 1.0
        tol = float(tolerance[0]) if tolerance[0] > 0 else None
        title = "max LSB difference per integer tensor"
        axis = "LSB"
    else:
        tol = tolerance[1]
        lo = math.floor(math.log10(min(values + [tol / 100])))
        hi = math.ceil(math.log10(max(values + [tol * 100])))
        lo = max(lo, hi - 14)
        title = "max |run - reference| / max |reference| per float tensor"
        axis = "rel. error"
    bottom = H - MB - EXACT_GAP  # the lowest decade line
    exact_y = H - MB
    top = MT
    span = max(hi - lo, 1e-9)

    def xpos(pos):
        return ML + (pos + 0.5) * (W - ML - MR) / max(n, 1)

    def ypos(v):
        if v is None or v <= 0:
            return exact_y
        if not math.isfinite(v):
            return top
        return bottom - (min(max(math.log10(v), lo), hi) - lo) / span * (bottom - top)

    parts = [f"<svg class=\"plot\" id=\"plot{k}-{kind}\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" "
             f"aria-label=\"{_e(run.name)}: {title}\">",
             f"<text x=\"{ML}\" y=\"14\" class=\"pt\">{_e(title)} (log scale)</text>"]
    # decade grid
    for d in range(int(lo), int(hi) + 1):
        y = ypos(10.0 ** d)
        parts.append(f"<line class=\"grid\" x1=\"{ML}\" x2=\"{W - MR}\" y1=\"{y:.1f}\" y2=\"{y:.1f}\"/>")
        parts.append(f"<text class=\"ax\" x=\"{ML - 6}\" y=\"{y + 4:.1f}\" text-anchor=\"end\">{_decade(d, kind)}</text>")
    parts.append(f"<line class=\"grid\" x1=\"{ML}\" x2=\"{W - MR}\" y1=\"{exact_y}\" y2=\"{exact_y}\"/>")
    parts.append(f"<text class=\"ax\" x=\"{ML - 6}\" y=\"{exact_y + 4}\" text-anchor=\"end\">exact</text>")
    parts.append(f"<text class=\"ax\" x=\"14\" y=\"{(top + exact_y) / 2:.1f}\" transform=\"rotate(-90 14 "
                 f"{(top + exact_y) / 2:.1f})\" text-anchor=\"middle\">{axis}</text>")
    # tolerance
    ty = ypos(tol) if tol is not None else (bottom + exact_y) / 2
    if tol is None:
        tol_text = "tolerance: 0 LSB (bit-exact)"
    else:
        tol_text = f"tolerance {int(tol)} LSB" if kind == "lsb" else f"tolerance {tol:g}"
    parts.append(f"<line class=\"tol\" x1=\"{ML}\" x2=\"{W - MR}\" y1=\"{ty:.1f}\" y2=\"{ty:.1f}\"/>")
    parts.append(f"<text class=\"tolt\" x=\"{W - MR - 4}\" y=\"{ty - 4:.1f}\" text-anchor=\"end\">{tol_text}</text>")
    # x ticks: about ten tensor positions, labelled with their tensor index
    step = max(1, math.ceil(n / 12))
    for pos in range(0, n, step):
        x = xpos(pos)
        parts.append(f"<line class=\"tick\" x1=\"{x:.1f}\" x2=\"{x:.1f}\" y1=\"{exact_y + 4}\" y2=\"{exact_y + 8}\"/>")
        parts.append(f"<text class=\"ax\" x=\"{x:.1f}\" y=\"{exact_y + 20}\" text-anchor=\"middle\">{rows[pos].index}</text>")
    parts.append(f"<text class=\"ax\" x=\"{(ML + W - MR) / 2:.0f}\" y=\"{H - 6}\" text-anchor=\"middle\">"
                 f"tensor (index), in graph order: {n} tensors</text>")
    # first tensor over tolerance
    if first is not None:
        pos = rows.index(first)
        x = xpos(pos)
        op = _op_of(first, run.ops)
        anchor = "end" if x > W * 0.6 else "start"
        dx = -4 if anchor == "end" else 4
        parts.append(f"<line class=\"first\" x1=\"{x:.1f}\" x2=\"{x:.1f}\" y1=\"{top}\" y2=\"{exact_y}\"/>")
        parts.append(f"<text class=\"firstt\" x=\"{x + dx:.1f}\" y=\"{top + 10}\" text-anchor=\"{anchor}\">first over "
                     f"tolerance: tensor {first.index}" + (f" ({_e(op)})" if op else "") + "</text>")
    # the series
    line = []
    marks = []
    for pos, r in enumerate(rows):
        m, v = _metric(r)
        x = xpos(pos)
        op = _op_of(r, run.ops)
        label = f"tensor {r.index} {r.name}" + (f" ({op})" if op else "")
        href = f"#r{k}-t{r.index}"
        if r.skipped:
            if main:
                marks.append(f"<a href=\"{href}\"><circle class=\"skip\" cx=\"{x:.1f}\" cy=\"{exact_y}\" r=\"3\">"
                             f"<title>{_e(label)}: not compared ({_e(r.note)})</title></circle></a>")
            continue
        if m is None:
            if main:
                marks.append(f"<a href=\"{href}\"><path class=\"na\" d=\"M{x - 4:.1f} {top + 22}l8 8m0 -8l-8 8\">"
                             f"<title>{_e(label)}: not comparable ({_e(r.note)})</title></path></a>")
            continue
        if m != kind:
            continue
        y = ypos(v)
        line.append(f"{x:.1f},{y:.1f}")
        value = "exact" if v == 0 else (f"{int(v)} LSB" if kind == "lsb" else f"{v:.3g}")
        cls = "pok" if r.ok else "pbad"
        shape = (f"<path class=\"{cls}\" d=\"M{x:.1f} {y - 1:.1f}l-5 9h10z\">" if not math.isfinite(v)
                 else f"<circle class=\"{cls}\" cx=\"{x:.1f}\" cy=\"{y:.1f}\" r=\"{3.5 if r.ok else 4.5}\">")
        end = "</path>" if not math.isfinite(v) else "</circle>"
        marks.append(f"<a href=\"{href}\">{shape}<title>{_e(label)}: {value}"
                     f"{'' if r.ok else ' (over tolerance)'}</title>{end}</a>")
    if len(line) > 1:
        parts.append(f"<polyline class=\"series\" points=\"{' '.join(line)}\"/>")
    parts.extend(marks)
    parts.append("</svg>")
    return "<figure class=\"plotfig\">" + "".join(parts) + "</figure>"


def _decade(d: int, kind: str) -> str:
    if kind == "lsb":
        return f"{10 ** d:g}"
    return f"1e{d}" if d else "1"


def _table(k: int, run: _Run) -> str:
    head = ("<tr><th>#</th><th>tensor</th><th>name</th><th>op</th><th>shape</th><th>max abs</th><th>max LSB</th>"
            "<th>rel</th><th>equal</th><th>cosine</th><th>ok</th></tr>")
    body = []
    for pos, r in enumerate(run.rows):
        cos = getattr(r, "cosine", None)
        mx = "-" if r.max_abs is None else f"{r.max_abs:.4g}"
        lsb = "-" if r.max_lsb is None else str(r.max_lsb)
        rel = "-" if r.rel is None else f"{r.rel:.2e}"
        eq = "-" if r.skipped else f"{r.equal:.2%}"
        cs = "-" if cos is None else f"{cos:.6f}"
        ok = "skip" if r.skipped else "yes" if r.ok else "NO"
        cls = "skip" if r.skipped else "" if r.ok else "bad"
        note = f" <span class=\"note\">[{_e(r.note)}]</span>" if r.note else ""
        body.append(f"<tr id=\"r{k}-t{r.index}\" class=\"{cls}\"><td class=\"n\">{pos}</td><td class=\"n\">{r.index}</td>"
                    f"<td title=\"{_e(r.name)}\"><code>{_e(short_name(r.name))}</code>{note}</td>"
                    f"<td><code>{_e(_op_of(r, run.ops) or '')}</code></td><td>{_e(r.shape)}</td><td class=\"n\">{mx}</td>"
                    f"<td class=\"n\">{lsb}</td><td class=\"n\">{rel}</td><td class=\"n\">{eq}</td><td class=\"n\">{cs}</td>"
                    f"<td>{ok}</td></tr>")
    return f"<table class=\"layers\">{head}{''.join(body)}</table>"


def _evaluations(rows: list[dict], timings: bool) -> str:
    def pct(v):
        return "-" if v is None else f"{100 * float(v):.1f}%"

    head = "<tr><th>model</th><th>images</th><th>top-1</th><th>top-5</th><th>agreement</th>"
    head += "<th>images/s</th></tr>" if timings else "</tr>"
    body = []
    for e in rows:
        speed = e.get("images_per_second")
        body.append(f"<tr><td>{_e(str(e.get('name', '')))}</td><td class=\"n\">{_e(str(e.get('n', '-')))}</td>"
                    f"<td class=\"n\">{pct(e.get('top1'))}</td><td class=\"n\">{pct(e.get('top5'))}</td>"
                    f"<td class=\"n\">{pct(e.get('agreement'))}</td>"
                    + (f"<td class=\"n\">{'-' if speed is None else f'{float(speed):.1f}'}</td>" if timings else "")
                    + "</tr>")
    return (f"<section id=\"accuracy\"><h2>Accuracy</h2><table class=\"eval\">{head}{''.join(body)}</table>"
            "<p class=\"sub\">On the held-out images; agreement: the share of images whose top-1 is the first "
            "model's.</p></section>")


def _timings_section(runs: list[_Run], timings: bool) -> str:
    if not timings:
        return f"<section id=\"timings\"><h2>Timings</h2><p class=\"notimings\">{_e(TIMINGS_ELSEWHERE)}</p></section>"
    rows = []
    for r in runs:
        t = r.timing or {}
        first, warm = t.get("first_run_ms"), t.get("best_warm_run_ms")
        rows.append(f"<tr><td>{_e(r.name)}</td><td class=\"n\">{'-' if first is None else f'{first:.2f}'}</td>"
                    f"<td class=\"n\">{'-' if warm is None else f'{warm:.2f}'}</td></tr>")
    return ("<section id=\"timings\"><h2>Timings</h2><table class=\"timings\"><tr><th>run</th><th>first (cold) run, ms</th>"
            f"<th>best warm run, ms</th></tr>{''.join(rows)}</table></section>")


# -- pictures -------------------------------------------------------------------------------------

def png_bytes(pixels: np.ndarray) -> bytes:
    """A PNG of uint8 pixels [h][w][3] (RGB) or [h][w] (gray): filter 0 on every row, zlib level 9."""
    px = np.ascontiguousarray(pixels, dtype=np.uint8)
    if px.ndim == 3 and px.shape[2] == 1:
        px = px[:, :, 0]
    if px.ndim not in (2, 3) or (px.ndim == 3 and px.shape[2] != 3):
        raise ValueError(f"png_bytes: expected [h][w] or [h][w][3] pixels, got {list(px.shape)}")
    h, w = px.shape[:2]
    color = 0 if px.ndim == 2 else 2
    raw = b"".join(b"\x00" + px[y].tobytes() for y in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def _input_pixels(g: Graph, buf: bytes, x: np.ndarray) -> np.ndarray | None:
    """The input tensor drawn back to 8-bit pixels: dequantized, then (x * std + mean) with the
    model's normalization (its metadata, else mobilegen's default); None unless [1][h][w][1 or 3]."""
    if x.ndim != 4 or x.shape[0] != 1 or x.shape[3] not in (1, 3):
        return None
    from mobilegen.evaluate import tflite_normalization
    from mobilegen.inputs import dequantize

    t = g.tensors[g.inputs[0]]
    real = dequantize(x, t) if x.dtype.kind in "iu" else x.astype(np.float64)
    try:
        mean, std = tflite_normalization(buf)
    except Exception:  # a model whose metadata cannot be read still gets its picture
        mean, std = 127.5, 127.5
    px = np.clip(np.rint(real[0] * std + mean), 0, 255).astype(np.uint8)
    return px


_MIME = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif"}


def _image_uri(path: Path) -> str | None:
    """A data: URI of the picture: PNG, JPEG and GIF as they are, anything else re-encoded as PNG."""
    data = path.read_bytes()
    for magic, mime in _MIME.items():
        if data.startswith(magic):
            return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
    try:
        from PIL import Image

        with Image.open(path) as im:
            px = np.asarray(im.convert("RGB"))
    except Exception:
        return None
    return "data:image/png;base64," + base64.b64encode(png_bytes(px)).decode("ascii")


# -- the page -------------------------------------------------------------------------------------

def _quote(path: Path) -> str:
    import shlex

    return shlex.quote(str(path))


def _e(s) -> str:
    return html.escape(str(s), quote=True)


def _bytes(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.2f} MB"
    if n >= 1000:
        return f"{n / 1e3:.1f} KB"
    return f"{n} B"


# Everything the page may load is in the page itself: the browser refuses anything else.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

# Runs first: a script error, a failed load or a refused (CSP) load is written into the page, where
# the reader sees it and the tests find it.
ERRORS_JS = """(function () {
  var seen = [];
  function note(m) {
    seen.push(m);
    document.documentElement.setAttribute("data-errors", seen.join(" | "));
    var b = document.getElementById("page-errors");
    if (b) { b.hidden = false; b.textContent = "This page had errors: " + seen.join(" | "); }
  }
  window.addEventListener("error", function (e) {
    var t = e.target;
    if (t && t !== window && (t.src || t.href)) note("failed to load " + (t.src || t.href));
    else note(String(e.message));
  }, true);
  document.addEventListener("securitypolicyviolation", function (e) { note("refused to load " + e.blockedURI); });
})();"""

# A plot point links to its table row: open the collapsed table it is in (the page works without it).
OPEN_JS = """(function () {
  function open() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && document.getElementById(id);
    for (var p = el; p; p = p.parentElement) if (p.tagName === "DETAILS") p.open = true;
    if (el) { el.classList.add("hit"); el.scrollIntoView({block: "center"}); }
  }
  window.addEventListener("hashchange", open);
})();"""

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;margin:0 auto;
max-width:1200px;padding:0 18px 40px;color:#1d232a;background:#fff}
h1{font-size:24px;margin:18px 0 2px}h2{font-size:18px;margin:26px 0 8px;border-bottom:1px solid #dde2e8;padding-bottom:3px}
h3{font-size:14px;margin:12px 0 4px}.sub{color:#5a6470;margin:2px 0}code{font:12px ui-monospace,Menlo,Consolas,monospace}
table{border-collapse:collapse;margin:4px 0}td,th{padding:2px 8px;border-bottom:1px solid #eef0f3;text-align:left;vertical-align:top}
th{font-weight:600}.n{text-align:right;font-variant-numeric:tabular-nums}.cols{display:flex;flex-wrap:wrap;gap:28px}
.ok{color:#17723b}.bad{color:#b3261e}ul.verdicts li{margin:3px 0}.verdicts a{color:inherit}
figure{margin:6px 0}.figures{display:flex;gap:16px;flex-wrap:wrap}img.tensor{image-rendering:pixelated;border:1px solid #ccd}
img.picture{max-width:224px;max-height:224px;border:1px solid #ccd}figcaption{font-size:12px;color:#5a6470;max-width:240px}
table.top5 td.diff{background:#fde8e6}.label{font-weight:600}.cls,.score{color:#5a6470}
table.layers{font-size:12px}table.layers tr.bad td{background:#fde8e6}table.layers tr.skip td{color:#8a939e}
table.layers tr.hit td{outline:2px solid #f2b600}details{margin:6px 0}summary{cursor:pointer;font-weight:600}
svg.plot{max-width:100%;height:auto;background:#fbfcfd;border:1px solid #e3e7ec}
svg .grid{stroke:#e3e7ec}svg .tick{stroke:#8a939e}svg .ax{font-size:11px;fill:#5a6470}svg .pt{font-size:12px;fill:#1d232a}
svg .tol{stroke:#d08700;stroke-width:1.5;stroke-dasharray:6 4}svg .tolt{font-size:11px;fill:#a86d00}
svg .first{stroke:#b3261e;stroke-width:1.5;stroke-dasharray:3 3}svg .firstt{font-size:11px;fill:#b3261e;font-weight:600}
svg .series{fill:none;stroke:#9fb3c8;stroke-width:1}svg .pok{fill:#1f77b4}svg .pbad{fill:#d62728}
svg .skip{fill:none;stroke:#aab2bc}svg .na{stroke:#d62728;stroke-width:2;fill:none}
#page-errors{background:#b3261e;color:#fff;padding:6px 10px;margin-top:10px}
footer{margin-top:30px;color:#8a939e;font-size:12px}
"""


class _Page:
    def __init__(self):
        self.parts: list[str] = []

    def head(self, title: str) -> None:
        self.parts.append(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><script>{ERRORS_JS}</script><style>{CSS}</style></head><body>"
            "<div id=\"page-errors\" hidden></div>"
        )

    def add(self, fragment: str) -> None:
        self.parts.append(fragment)

    def finish(self) -> str:
        return "\n".join(self.parts + [f"<script>{OPEN_JS}</script></body></html>", ""])
