"""Graph-to-graph rewrites.

`dequantize_graph` runs an integer model as float, as TFLite's GPU delegate does: constants are
dequantized (per channel where they are), 8-bit activations become float32, QUANTIZE/DEQUANTIZE
inside the graph become copies, and the graph's own 8-bit input and output keep their type
through a DEQUANTIZE after the input and a QUANTIZE before the output. The result is an ordinary
float graph for the plan, the simulator and the fp32/fp16 kernels.
"""

from __future__ import annotations

import copy

import numpy as np

from mobilegen.ir.graph import Graph, Op, Tensor

_EIGHT_BIT = ("int8", "uint8")


def dequantized_constant(t: Tensor) -> np.ndarray:
    q = t.quant
    shape = [1] * len(t.shape)
    if q.per_channel:
        shape[q.axis] = -1
    scale = q.scale.astype(np.float64).reshape(shape)
    zp = q.zero_point.astype(np.float64).reshape(shape) if q.zero_point.size == q.scale.size else float(q.zero_point[0])
    return (scale * (t.data.astype(np.float64) - zp)).astype(np.float32)


def is_quantized(g: Graph) -> bool:
    """Whether any op writes an 8-bit tensor: an integer model (int8 or legacy uint8)."""
    return any(g.tensors[t].dtype in _EIGHT_BIT for op in g.ops for t in op.outputs)


def computes_in_integers(g: Graph) -> bool:
    """Whether any op other than a float -> 8-bit QUANTIZE writes an 8-bit tensor. False for the
    output of `dequantize_graph`, whose only 8-bit writes are the QUANTIZE ops at its boundary that
    keep the model's own 8-bit output type."""
    return any(
        g.tensors[t].dtype in _EIGHT_BIT
        for op in g.ops
        if not (op.opcode == "QUANTIZE" and g.tensors[op.inputs[0]].dtype == "float32")
        for t in op.outputs
    )


def dequantize_graph(g: Graph) -> Graph:
    tensors = [copy.copy(t) for t in g.tensors]
    for t in tensors:
        if t.is_const and t.quant is not None and t.dtype in _EIGHT_BIT + ("int32",):
            t.data, t.dtype, t.quant = dequantized_constant(t), "float32", None
        elif not t.is_const and t.dtype in _EIGHT_BIT and t.index not in g.inputs + g.outputs:
            t.dtype, t.quant = "float32", None

    ops: list[Op] = []

    def add_op(opcode: str, inputs: tuple[int, ...], outputs: tuple[int, ...], options=None) -> None:
        ops.append(Op(len(ops), opcode, inputs, outputs, dict(options or {})))

    def new_tensor(like: Tensor, suffix: str) -> int:
        t = Tensor(len(tensors), like.name + suffix, like.shape, "float32", None, None, like.shape_signature)
        tensors.append(t)
        return t.index

    # An 8-bit graph input read by float kernels: dequantize it once, up front.
    renamed: dict[int, int] = {}
    for i in g.inputs:
        t = g.tensors[i]
        if t.dtype in _EIGHT_BIT and not _only_dequantized(g, i):
            renamed[i] = new_tensor(t, "/dequantized")
            add_op("DEQUANTIZE", (i,), (renamed[i],))
    out_renamed: dict[int, int] = {}
    for i in g.outputs:
        t = g.tensors[i]
        if t.dtype in _EIGHT_BIT and not _only_quantized(g, i):
            out_renamed[i] = new_tensor(t, "/float")

    for op in g.ops:
        ins = tuple(renamed.get(i, i) for i in op.inputs)
        outs = tuple(out_renamed.get(o, o) for o in op.outputs)
        x = tensors[ins[0]] if ins else None
        y = tensors[outs[0]]
        if op.opcode in ("QUANTIZE", "DEQUANTIZE") and x.dtype == y.dtype == "float32":
            add_op("RESHAPE", ins[:1], outs)  # a copy: float in, float out
        else:
            add_op(op.opcode, ins, outs, op.options)
    for i, f in out_renamed.items():
        add_op("QUANTIZE", (f,), (i,))
    return Graph(tensors, ops, g.inputs, g.outputs, g.description, g.schema_version)


def _only_dequantized(g: Graph, t: int) -> bool:
    readers = [op for op in g.ops if t in op.inputs]
    return bool(readers) and all(op.opcode == "DEQUANTIZE" for op in readers)


def _only_quantized(g: Graph, t: int) -> bool:
    writers = [op for op in g.ops if t in op.outputs]
    return bool(writers) and all(op.opcode == "QUANTIZE" and g.tensors[op.inputs[0]].dtype == "float32" for op in writers)
