"""Per-tensor comparison of two dumps (or two arrays): where do they first diverge?"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mobilegen.dump import load_npy, read_dump
from mobilegen.errors import UserInputError

# Default float tolerance, max|a-b| / max|b| per tensor: the simulator's documented float
# contract (DESIGN.md), 5e-5. Two correct float32 evaluations of a MobileNet differ by up to 7e-6
# on the tests' models (benchmarks/FLOAT_NOISE.md), where the tests hold 2e-5
# (tests/harness.FLOAT_RTOL), and by 2.4e-5 on a trained float MobileNet V1 1.0 / 224 (issue 6);
# networks that amplify rounding more (FLOAT_NOISE.md's "b0" rows) reach 8e-5: pass --rtol 1e-4.
FLOAT_RTOL = 5e-5


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


def _load(path: Path) -> tuple[list[dict], dict[int, np.ndarray]]:
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"{path}: no such file or directory; expected a dump directory or a .npy file")
    if path.is_dir():
        return read_dump(path)
    if path.suffix == ".npy":
        return [{"index": 0, "name": path.name}], {0: load_npy(path)}
    raise UserInputError(f"{path}: expected a dump directory or a .npy file")


def compare_arrays(index: int, name: str, a: np.ndarray, b: np.ndarray, lsb_tol: int, rtol: float) -> Row:
    if a.shape != b.shape:
        return Row(index, name, f"{list(a.shape)} vs {list(b.shape)}", None, None, None, 0.0, False, "shape differs")
    shape = str(list(a.shape))
    if a.dtype.kind in "iub" and b.dtype.kind in "iub":
        d = np.abs(a.astype(np.int64) - b.astype(np.int64))
        lsb = int(d.max(initial=0))
        eq = float((d == 0).mean()) if d.size else 1.0
        note = "" if a.dtype == b.dtype else f"dtype {a.dtype} vs {b.dtype}"
        return Row(index, name, shape, float(lsb), lsb, None, eq, lsb <= lsb_tol and not note, note)
    if a.dtype.kind in "iub" or b.dtype.kind in "iub":
        return Row(index, name, shape, None, None, None, 0.0, False, f"dtype {a.dtype} vs {b.dtype}")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if not (np.all(np.isfinite(a64)) and np.all(np.isfinite(b64))):
        same = bool(np.array_equal(a64, b64, equal_nan=True))
        return Row(index, name, shape, 0.0 if same else float("inf"), None, 0.0 if same else float("inf"),
                   1.0 if same else 0.0, same, "non-finite values")
    d = np.abs(a64 - b64)
    mx = float(d.max(initial=0.0))
    ref = float(np.abs(b64).max(initial=0.0))
    rel = mx / ref if ref > 0 else (0.0 if mx == 0 else float("inf"))
    eq = float((d == 0).mean()) if d.size else 1.0
    return Row(index, name, shape, mx, None, rel, eq, rel <= rtol)


def compare_paths(a: Path, b: Path, lsb_tol: int = 0, rtol: float = FLOAT_RTOL) -> list[Row]:
    """Rows in A's graph order; tensors present in only one side are reported as not comparable."""
    if Path(a).is_dir() != Path(b).is_dir() and Path(a).exists() and Path(b).exists():
        d, f = (a, b) if Path(a).is_dir() else (b, a)
        raise UserInputError(
            f"cannot compare dump directory {d} with the single array {f}: give two dump directories "
            f"or two .npy files (a dump's <index>.npy is one tensor of it)"
        )
    recs_a, va = _load(a)
    recs_b, vb = _load(b)
    names = {r["index"]: r.get("name", str(r["index"])) for r in recs_b}
    names.update({r["index"]: r.get("name", str(r["index"])) for r in recs_a})
    constant = {r["index"] for r in recs_a + recs_b if r.get("constant")}
    order = [r["index"] for r in recs_a] + [r["index"] for r in recs_b if r["index"] not in va]
    rows = []
    for i in order:
        if i not in va or i not in vb:
            side = "A" if i not in va else "B"
            if i in constant:  # folded at generation: engines never compute it at run time
                rows.append(Row(i, names[i], "", None, None, None, 0.0, True, f"constant folded at generation, not in {side}", True))
            else:
                rows.append(Row(i, names[i], "", None, None, None, 0.0, False, f"missing in {side}"))
            continue
        rows.append(compare_arrays(i, names[i], va[i], vb[i], lsb_tol, rtol))
    if not rows:
        raise UserInputError(f"nothing to compare: {a} and {b} hold no tensors")
    return rows


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
    lines = [f"{'index':>5}  {'max abs':>11} {'max LSB':>7} {'rel':>9} {'equal':>7}  {'ok':<4} {'shape':<18} name"]
    for r in rows:
        mx = "-" if r.max_abs is None else f"{r.max_abs:.4g}"
        lsb = "-" if r.max_lsb is None else str(r.max_lsb)
        rel = "-" if r.rel is None else f"{r.rel:.2e}"
        note = f"  [{r.note}]" if r.note else ""
        equal = "-" if r.skipped else f"{r.equal:.2%}"
        ok = "skip" if r.skipped else "yes" if r.ok else "NO"
        lines.append(f"{r.index:>5}  {mx:>11} {lsb:>7} {rel:>9} {equal:>7}  {ok:<4} {r.shape:<18} {r.name if verbose else short_name(r.name)}{note}")
    return "\n".join(lines)
