"""The seed's weight extraction: every constant tensor as .npy plus a manifest, in TFLite's layout
or in the packed layouts the GPU kernels read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mobilegen import layout
from mobilegen.ir.graph import Graph

_ROLES = {
    "CONV_2D": {1: "conv_filter", 2: "bias"},
    "DEPTHWISE_CONV_2D": {1: "depthwise_filter", 2: "bias"},
    "FULLY_CONNECTED": {1: "fc_weights", 2: "bias"},
}
MANIFEST = "manifest.json"


def constant_roles(g: Graph) -> dict[int, tuple[str, str]]:
    """Constant tensor index -> (role, consuming op). A float16 tensor folded through DEQUANTIZE
    (or a sparse one through DENSIFY, and DEQUANTIZE after it) takes the role of the folded tensor
    in the op that reads it."""
    roles: dict[int, tuple[str, str]] = {}
    for op in g.ops:
        for pos, i in enumerate(op.inputs):
            if i >= 0:
                roles.setdefault(i, (_ROLES.get(op.opcode, {}).get(pos, "param"), op.describe()))
    folds = {op.outputs[0]: op.inputs[0] for op in g.ops if op.opcode in ("DEQUANTIZE", "DENSIFY")}
    for out in reversed(list(folds)):  # last fold first, so chains pass the role up
        src = folds[out]
        if (g.tensors[src].is_const or src in folds) and out in roles:
            roles[src] = roles[out]
    return roles


def extract(g: Graph, out: Path, gpu_layout: bool) -> list[dict]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    roles = constant_roles(g)
    entries = []
    for t in g.tensors:
        if not t.is_const:
            continue
        role, op = roles.get(t.index, ("unused", ""))
        data, bracket = t.data, layout.TFLITE_LAYOUTS.get(role, "[" + "][".join(str(d) for d in t.shape) + "]")
        if gpu_layout and role in layout.GPU_LAYOUTS:
            bracket, pack = layout.GPU_LAYOUTS[role]
            data = pack(data)
        fname = f"{t.index}.npy"
        np.save(out / fname, data)
        q = t.quant
        entries.append(
            {
                "index": t.index,
                "file": fname,
                "name": t.name,
                "op": op,
                "role": role,
                "shape": list(data.shape),
                "tflite_shape": list(t.shape),
                "dtype": t.dtype,
                "layout": bracket,
                "scale": None if q is None else [float(v) for v in q.scale],
                "zero_point": None if q is None else [int(v) for v in q.zero_point],
                "quantized_dimension": None if q is None else q.axis,
            }
        )
    (out / MANIFEST).write_text(
        json.dumps({"layout": "gpu" if gpu_layout else "tflite", "tensors": entries}, indent=1) + "\n"
    )
    return entries
