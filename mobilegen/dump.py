"""The dump format shared by `simulate`, `verify` and the generated engines' debug mode:
a directory with `<tensor index>.npy` for every tensor an operator writes, plus `tensors.json`
listing (index, name, shape, dtype, scale, zero_point) in graph order. A record with
`"constant": true` is a tensor an op computes from constants only, which the generated engines
fold at generation (DEQUANTIZE of float16 weights): engine dumps do not hold it, and `compare`
skips it, saying so, when only one side has it. A dump may hold the graph inputs too (device
dumps, the dumps `compare` makes: write_dump(inputs=True)), marked `"input": true`; compared
with a dump without them, they are skipped the same way."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mobilegen.errors import UserInputError
from mobilegen.ir.graph import Graph

INDEX_FILE = "tensors.json"


def tensor_record(g: Graph, index: int) -> dict:
    t = g.tensors[index]
    q = t.quant
    return {
        "index": index,
        "name": t.name,
        "shape": list(t.shape),
        "dtype": t.dtype,
        "scale": None if q is None else (q.s if not q.per_channel else [float(v) for v in q.scale]),
        "zero_point": None if q is None else (q.zp if not q.per_channel else [int(v) for v in q.zero_point]),
    }


def write_dump(directory: Path, g: Graph, values: dict[int, np.ndarray], constants: frozenset[int] = frozenset(),
               *, inputs: bool = False) -> list[int]:
    """Write every tensor an operator writes; returns their indices in graph order. `constants`:
    the written tensors folded at generation (plan.folded_tensors), marked in tensors.json.
    `inputs`: the graph inputs first as well (as device dumps hold them), so that `compare` can
    run other sources on the same input."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = g.written_tensors()
    if inputs:
        written = [i for i in g.inputs if i not in written] + written
    for i in written:
        np.save(directory / f"{i}.npy", values[i])
    records = [tensor_record(g, i) | ({"constant": True} if i in constants else {})
               | ({"input": True} if inputs and i in g.inputs else {}) for i in written]
    (directory / INDEX_FILE).write_text(json.dumps({"tensors": records}, indent=1) + "\n")
    return written


def read_dump(directory: Path) -> tuple[list[dict], dict[int, np.ndarray]]:
    """(records in graph order, index -> array). Records are synthesized when tensors.json is absent."""
    directory = Path(directory)
    index = directory / INDEX_FILE
    if index.exists():
        try:
            records = json.loads(index.read_text())["tensors"]
            indices = [int(r["index"]) for r in records]
        except (ValueError, KeyError, TypeError) as e:
            raise UserInputError(f"{index}: not a mobilegen tensors.json ({e})") from None
    else:
        indices = sorted(int(p.stem) for p in directory.glob("*.npy") if p.stem.isdigit())
        records = [{"index": i, "name": str(i)} for i in indices]
    values = {}
    for i in indices:
        p = directory / f"{i}.npy"
        if not p.exists():
            raise UserInputError(f"{directory}: {INDEX_FILE} lists tensor {i} but {p.name} is missing")
        values[i] = load_npy(p)
    return records, values


def graph_inputs(records: list[dict], values: dict[int, np.ndarray], g: Graph) -> list[np.ndarray] | None:
    """The graph inputs of `g` as a dump holds them (a device dump, or one written with
    inputs=True), in the model's order; None when the dump lacks one or holds another shape/dtype."""
    out = []
    for i in g.inputs:
        x = values.get(i)
        t = g.tensors[i]
        if x is None or tuple(x.shape) != tuple(t.shape) or x.dtype != np.dtype(t.dtype):
            return None
        out.append(x)
    return out


def load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise UserInputError(f"{path}: not a readable .npy file ({e})") from None
