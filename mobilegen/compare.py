"""Per-tensor comparison of two dumps (or two arrays): where do they first diverge?

`compare_paths` gives one Row per tensor in graph order. `first_divergence` then names the first
tensor over tolerance, the op that writes it and the status of that op's inputs, which tells the
two stories apart: "diverges here" (its inputs are equal on both sides, so this op computes
differently: a wrong kernel, a corrupt weight) and "inherited" (its inputs already differed: look
upstream, where `origin` points: the earliest op in the differing cone whose inputs are equal)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mobilegen.dump import load_npy, read_dump
from mobilegen.errors import UserInputError
from mobilegen.ir.graph import Graph

# Default float tolerance, max|a-b| / max|b| per tensor: the simulator's documented float
# contract (DESIGN.md), 5e-5. Two correct float32 evaluations of a MobileNet differ by up to 7e-6
# on the tests' models (benchmarks/FLOAT_NOISE.md), where the tests hold 2e-5
# (tests/harness.FLOAT_RTOL), and by 2.4e-5 on a trained float MobileNet V1 1.0 / 224 (issue 6);
# networks that amplify rounding more (FLOAT_NOISE.md's "b0" rows) reach 8e-5: pass --rtol 1e-4.
FLOAT_RTOL = 5e-5

# Default tolerances per precision the engine runs at: (integer tensors in LSB, float tensors rel.).
#   int8  the integer kernels are bit-exact with the simulator and TFLite's reference kernels:
#         0 LSB; the float tensors around them (a float input's QUANTIZE, a DEQUANTIZE output)
#         are computed from equal integers: FLOAT_RTOL.
#   fp32  FLOAT_RTOL (DESIGN.md's float contract); no integer kernels run except the boundary ones.
#   fp16  whole runs of float16 storage: a value that rounds to the neighbouring half feeds the next
#         layers, so a MobileNet's engine differs from the fp16 simulator by up to ~4e-3 (measured,
#         tests/test_fp16.py's WHOLE_RUN_RTOL = 6e-3 holds it); 8-bit boundary tensors (an int8
#         model's QUANTIZE output) may land one step the other side of a rounding boundary: 1 LSB.
PRECISION_TOLERANCES: dict[str, tuple[int, float]] = {
    "int8": (0, FLOAT_RTOL),
    "fp32": (0, FLOAT_RTOL),
    "fp16": (1, 6e-3),
}


@dataclass
class Row:
    index: int
    name: str
    shape: str
    max_abs: float | None  # None when the tensors cannot be compared (shape/dtype mismatch, missing)
    max_lsb: int | None  # integer tensors only
    rel: float | None  # float tensors: max|a-b| / max|b|
    equal: float  # share of equal elements
    ok: bool
    note: str = ""
    skipped: bool = False  # a constant only one side holds (dump.py): not compared, not a failure
    cosine: float | None = None  # cosine similarity of the two (zero-point-removed) tensors
    op: str | None = None  # kind of the op that writes the tensor ("CONV_2D"); None: unknown / a graph input
    op_index: int | None = None  # that op's index in the model


def _load(path: Path) -> tuple[list[dict], dict[int, np.ndarray]]:
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"{path}: no such file or directory; expected a dump directory or a .npy file")
    if path.is_dir():
        return read_dump(path)
    if path.suffix == ".npy":
        return [{"index": 0, "name": path.name}], {0: load_npy(path)}
    raise UserInputError(f"{path}: expected a dump directory or a .npy file")


def _zero_point(record: dict | None) -> int:
    zp = (record or {}).get("zero_point")
    return int(zp) if isinstance(zp, (int, float)) else 0  # per-channel activations: take raw values


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """<a, b> / (|a| |b|) in float64; 1 for two all-zero tensors, 0 when only one is all zero."""
    a, b = a.reshape(-1), b.reshape(-1)
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 1.0 if na == nb else 0.0
    return float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))


def compare_arrays(index: int, name: str, a: np.ndarray, b: np.ndarray, lsb_tol: int, rtol: float,
                   zero_point: tuple[int, int] = (0, 0)) -> Row:
    """One tensor. `zero_point` (A's, B's): removed before the cosine of quantized tensors, so it
    measures the real values' agreement, not the offset's."""
    if a.shape != b.shape:
        return Row(index, name, f"{list(a.shape)} vs {list(b.shape)}", None, None, None, 0.0, False, "shape differs")
    shape = str(list(a.shape))
    if a.dtype.kind in "iub" and b.dtype.kind in "iub":
        a64, b64 = a.astype(np.int64), b.astype(np.int64)
        d = np.abs(a64 - b64)
        lsb = int(d.max(initial=0))
        eq = float((d == 0).mean()) if d.size else 1.0
        note = "" if a.dtype == b.dtype else f"dtype {a.dtype} vs {b.dtype}"
        cos = cosine_similarity((a64 - zero_point[0]).astype(np.float64), (b64 - zero_point[1]).astype(np.float64))
        return Row(index, name, shape, float(lsb), lsb, None, eq, lsb <= lsb_tol and not note, note, cosine=cos)
    if a.dtype.kind in "iub" or b.dtype.kind in "iub":
        return Row(index, name, shape, None, None, None, 0.0, False, f"dtype {a.dtype} vs {b.dtype}")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if not (np.all(np.isfinite(a64)) and np.all(np.isfinite(b64))):
        same = bool(np.array_equal(a64, b64, equal_nan=True))
        return Row(index, name, shape, 0.0 if same else float("inf"), None, 0.0 if same else float("inf"),
                   1.0 if same else 0.0, same, "non-finite values", cosine=1.0 if same else None)
    d = np.abs(a64 - b64)
    mx = float(d.max(initial=0.0))
    ref = float(np.abs(b64).max(initial=0.0))
    rel = mx / ref if ref > 0 else (0.0 if mx == 0 else float("inf"))
    eq = float((d == 0).mean()) if d.size else 1.0
    return Row(index, name, shape, mx, None, rel, eq, rel <= rtol, cosine=cosine_similarity(a64, b64))


def compare_loaded(a: tuple[list[dict], dict[int, np.ndarray]], b: tuple[list[dict], dict[int, np.ndarray]],
                   lsb_tol: int = 0, rtol: float = FLOAT_RTOL, graph: Graph | None = None) -> list[Row]:
    """compare_paths on dumps already read (records, values); `graph`: the model the dumps are of
    (the plan's graph at the compared precision), which names each tensor's op."""
    recs_a, va = a
    recs_b, vb = b
    names = {r["index"]: r.get("name", str(r["index"])) for r in recs_b}
    names.update({r["index"]: r.get("name", str(r["index"])) for r in recs_a})
    rec_a = {r["index"]: r for r in recs_a}
    rec_b = {r["index"]: r for r in recs_b}
    constant = {r["index"] for r in recs_a + recs_b if r.get("constant")}
    fed = {r["index"] for r in recs_a + recs_b if r.get("input")} | set(graph.inputs if graph is not None else ())
    order = [r["index"] for r in recs_a] + [r["index"] for r in recs_b if r["index"] not in va]
    rows = []
    for i in order:
        if i not in va or i not in vb:
            side = "A" if i not in va else "B"
            if i in constant:  # folded at generation: engines never compute it at run time
                rows.append(Row(i, names[i], "", None, None, None, 0.0, True, f"constant folded at generation, not in {side}", True))
            elif i in fed:  # a graph input only one side's dump holds (device dumps hold them)
                rows.append(Row(i, names[i], "", None, None, None, 0.0, True, f"graph input, not in {side}", True))
            else:
                rows.append(Row(i, names[i], "", None, None, None, 0.0, False, f"missing in {side}"))
            continue
        zp = (_zero_point(rec_a.get(i)), _zero_point(rec_b.get(i)))
        rows.append(compare_arrays(i, names[i], va[i], vb[i], lsb_tol, rtol, zp))
    if graph is not None:
        # Graph order as the model defines it (graph inputs, then each op's outputs), whatever
        # order A's records are in (a dump without tensors.json lists its files by index).
        position = {i: n for n, i in enumerate([*graph.inputs, *graph.written_tensors()])}
        rows.sort(key=lambda r: position.get(r.index, len(position)))
        producers = graph.producers()
        for r in rows:
            op = producers.get(r.index)
            if op is not None and 0 <= r.index < len(graph.tensors):
                r.op, r.op_index = op.opcode, op.index
    return rows


def check_pair(a: Path, b: Path) -> None:
    """A dump directory is compared with a dump directory, a .npy with a .npy."""
    if Path(a).is_dir() != Path(b).is_dir() and Path(a).exists() and Path(b).exists():
        d, f = (a, b) if Path(a).is_dir() else (b, a)
        raise UserInputError(
            f"cannot compare dump directory {d} with the single array {f}: give two dump directories "
            f"or two .npy files (a dump's <index>.npy is one tensor of it)"
        )


def compare_paths(a: Path, b: Path, lsb_tol: int = 0, rtol: float = FLOAT_RTOL, graph: Graph | None = None) -> list[Row]:
    """Rows in A's graph order; tensors present in only one side are reported as not comparable."""
    check_pair(a, b)
    rows = compare_loaded(_load(a), _load(b), lsb_tol, rtol, graph)
    if not rows:
        raise UserInputError(f"nothing to compare: {a} and {b} hold no tensors")
    return rows


# -- where it diverges -----------------------------------------------------------------------------
EQUAL, WITHIN, DIFFERED, GRAPH_INPUT, CONSTANT, UNKNOWN = (
    "equal", "within tolerance", "already differed", "graph input (not compared)", "constant", "not compared")


def row_status(row: Row | None) -> str:
    """equal (every element), within tolerance (differs, but not beyond), already differed
    (beyond tolerance), or not compared (missing on a side, a shape/dtype mismatch)."""
    if row is None or row.skipped:
        return UNKNOWN
    if not row.ok:
        return DIFFERED if row.max_abs is not None else UNKNOWN
    return EQUAL if row.equal == 1.0 else WITHIN


@dataclass
class InputStatus:
    index: int
    name: str
    status: str  # EQUAL / WITHIN / DIFFERED / GRAPH_INPUT / CONSTANT / UNKNOWN


@dataclass
class Divergence:
    """The first tensor over tolerance and what its op read."""

    row: Row
    # "diverges here": every input equal on both sides (or a graph input fed to both), the op
    # itself computes differently; "amplified here": some inputs already differed within
    # tolerance, this op takes them over it; "inherited": some input was already over tolerance
    # (or is a graph input that differs); "unknown": no model to tell the op's inputs.
    verdict: str
    inputs: list[InputStatus] = field(default_factory=list)
    # The earliest op upstream whose inputs are equal but whose output is not: where the
    # difference was born (the first tensor's own op when it diverges here). None: not found.
    origin: Row | None = None

    def to_json(self) -> dict:
        return {"tensor": asdict(self.row), "verdict": self.verdict, "inputs": [asdict(i) for i in self.inputs],
                "origin": None if self.origin is None else {"index": self.origin.index, "name": self.origin.name,
                                                           "op": self.origin.op, "op_index": self.origin.op_index}}


def _op_inputs(graph: Graph, index: int) -> list[int] | None:
    op = graph.producers().get(index)
    return None if op is None else [i for i in op.inputs if i >= 0]


def first_divergence(rows: list[Row], graph: Graph | None = None) -> Divergence | None:
    """The first row over tolerance in graph order, its op's inputs' status and the verdict; None
    when every compared tensor is within tolerance."""
    bad = [r for r in rows if not r.ok and not r.skipped]
    if not bad:
        return None
    first = bad[0]
    if graph is None or not 0 <= first.index < len(graph.tensors):
        return Divergence(first, "unknown")
    by_index = {r.index: r for r in rows}

    def status(i: int) -> str:
        if i in by_index and not by_index[i].skipped:
            return row_status(by_index[i])
        if graph.tensors[i].is_const:
            return CONSTANT
        if i in graph.inputs:
            return GRAPH_INPUT  # not in the dumps: both sides ran on the input given
        return UNKNOWN

    ins = _op_inputs(graph, first.index)
    if ins is None:  # a graph input itself differs: the two runs were not fed the same input
        return Divergence(first, "inherited", [], None)
    inputs = [InputStatus(i, graph.tensors[i].name, status(i)) for i in ins]
    states = {s.status for s in inputs}
    if DIFFERED in states:
        verdict = "inherited"
    elif WITHIN in states:
        verdict = "amplified here"
    elif UNKNOWN in states:
        verdict = "unknown"
    else:
        verdict = "diverges here"
    return Divergence(first, verdict, inputs, _origin(first, graph, by_index, status))


def _origin(first: Row, graph: Graph, by_index: dict[int, Row], status) -> Row | None:
    """Walk up from `first` through inputs that differ (within or beyond tolerance) to the ops
    whose inputs are all equal: the earliest of them in graph order is where the difference
    started."""
    seen, stack, births = set(), [first.index], []
    while stack:
        i = stack.pop()
        if i in seen:
            continue
        seen.add(i)
        ins = _op_inputs(graph, i)
        if ins is None:
            continue
        differing = [j for j in ins if status(j) in (WITHIN, DIFFERED)]
        if differing:
            stack.extend(differing)
        elif all(status(j) in (EQUAL, GRAPH_INPUT, CONSTANT) for j in ins) and i in by_index:
            births.append(by_index[i])
    if not births:
        return None
    order = {r.index: n for n, r in enumerate(by_index.values())}
    return min(births, key=lambda r: order.get(r.index, 0))


def _op_label(row: Row) -> str:
    return f"op {row.op_index} {row.op}" if row.op is not None else "op unknown"


def describe_divergence(d: Divergence, rows: list[Row]) -> str:
    """The one-line account ToleranceExceeded carries: how many tensors are over tolerance, the
    first in graph order with its op, and whether it diverges there or inherits the difference."""
    bad = [r for r in rows if not r.ok and not r.skipped]
    r = d.row
    msg = (f"{len(bad)} of {len(rows)} tensors differ beyond tolerance; first in graph order: "
           f"tensor {r.index} '{r.name}'" + (f" ({r.note})" if r.note else ""))
    if d.verdict == "unknown" and r.op is None:
        return msg + " (pass --model to name its op and its inputs' status)"
    msg += f", written by {_op_label(r)}"
    if not d.inputs and d.verdict == "inherited":
        return msg + ": it is a graph input; the two sides ran on different inputs"
    ins = ", ".join(f"tensor {i.index} {i.status}" for i in d.inputs if i.status != CONSTANT)
    msg += f": {d.verdict}" + (f" (inputs: {ins})" if ins else " (its inputs are all constants)")
    if d.origin is not None and d.origin.index != r.index:
        msg += f"; the difference starts at tensor {d.origin.index} ({_op_label(d.origin)}), whose inputs are equal"
    return msg


def skipped_summary(rows: list[Row]) -> str:
    """" (N constants folded at generation skipped)" and the like for the rows not compared, or ""."""
    constants = sum(r.skipped and r.note.startswith("constant") for r in rows)
    inputs = sum(r.skipped and r.note.startswith("graph input") for r in rows)
    parts = ([f"{constants} constants folded at generation"] if constants else []) + \
            ([f"{inputs} graph inputs only one side holds"] if inputs else [])
    return f" ({' and '.join(parts)} skipped)" if parts else ""


NAME_WIDTH = 48  # table column for tensor names; longer ones keep their start and end


def short_name(name: str, width: int = NAME_WIDTH) -> str:
    """`name` cut to `width` characters around an ellipsis. TFLite names are long scope paths
    ("model/block_3/conv_dw/BatchNorm/FusedBatchNormV3;model/...") whose ends tell them apart."""
    if len(name) <= width:
        return name
    head = (width - 3) // 2
    return name[:head] + "..." + name[len(name) - (width - 3 - head):]


def format_rows(rows: list[Row], verbose: bool = False) -> str:
    """The comparison table; tensor names shortened (short_name) unless `verbose`."""
    with_ops = any(r.op is not None for r in rows)
    op_col = f" {'op':<22}" if with_ops else ""
    lines = [f"{'index':>5}  {'max abs':>11} {'max LSB':>7} {'rel':>9} {'equal':>7} {'cosine':>9}  {'ok':<4}{op_col} {'shape':<18} name"]
    for r in rows:
        mx = "-" if r.max_abs is None else f"{r.max_abs:.4g}"
        lsb = "-" if r.max_lsb is None else str(r.max_lsb)
        rel = "-" if r.rel is None else f"{r.rel:.2e}"
        cos = "-" if r.cosine is None else f"{r.cosine:.6f}"
        note = f"  [{r.note}]" if r.note else ""
        equal = "-" if r.skipped else f"{r.equal:.2%}"
        ok = "skip" if r.skipped else "yes" if r.ok else "NO"
        op = (f" {f'{r.op_index} {r.op}':<22}" if r.op is not None else f" {'-':<22}") if with_ops else ""
        lines.append(f"{r.index:>5}  {mx:>11} {lsb:>7} {rel:>9} {equal:>7} {cos:>9}  {ok:<4}{op} {r.shape:<18} "
                     f"{r.name if verbose else short_name(r.name)}{note}")
    return "\n".join(lines)
