"""Structural checks on a Graph, each failure located (tensor or op) and saying what was expected.

Per-op shape rules live with the lowering in mobilegen.plan, where the shapes are computed; this
module checks what every graph must satisfy whatever its ops: indices, operand counts, execution
order, buffers, quantization parameters.
"""

from __future__ import annotations

import numpy as np

from mobilegen.errors import ModelValidationError
from mobilegen.ir.graph import Graph, Tensor

# Storage range of each quantized type.
QRANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}


# opcode -> (required inputs, most inputs) per the TFLite schema; every op here writes one output.
# Inputs past the required ones are optional and may be -1 (absent).
OPERAND_COUNTS = {
    "CONV_2D": (2, 3),
    "DEPTHWISE_CONV_2D": (2, 3),
    "FULLY_CONNECTED": (2, 3),
    "AVERAGE_POOL_2D": (1, 1),
    "MAX_POOL_2D": (1, 1),
    "MEAN": (2, 2),
    "RESHAPE": (1, 2),
    "SQUEEZE": (1, 1),
    "SOFTMAX": (1, 1),
    "QUANTIZE": (1, 1),
    "DEQUANTIZE": (1, 1),
    "DENSIFY": (1, 1),
    "ADD": (2, 2),
    "PAD": (2, 2),
    "CONCATENATION": (1, None),
    "RELU": (1, 1),
    "RELU6": (1, 1),
}


def verify_graph(g: Graph) -> None:
    _check_io(g)
    _check_operands(g)
    _check_order(g)
    for t in g.tensors:
        _check_tensor(t)


def _check_io(g: Graph) -> None:
    n = len(g.tensors)
    for role, idxs in (("input", g.inputs), ("output", g.outputs)):
        if not idxs:
            raise ModelValidationError(f"the graph has no {role}s")
        for i in idxs:
            if not 0 <= i < n:
                raise ModelValidationError(f"graph {role} refers to tensor {i}, but the graph has {n} tensors")


def _check_operands(g: Graph) -> None:
    for op in g.ops:
        counts = OPERAND_COUNTS.get(op.opcode)
        if counts is None:
            continue
        need, most = counts
        if len(op.inputs) < need or (most is not None and len(op.inputs) > most):
            want = f"{need}" if need == most else f"{need}..{most}" if most is not None else f"at least {need}"
            raise ModelValidationError(f"{op.describe()} has {len(op.inputs)} inputs; expected {want}")
        required = op.inputs if most is None else op.inputs[:need]
        if -1 in required:
            raise ModelValidationError(f"{op.describe()} lacks a required input (tensor index -1)")
        if len(op.outputs) != 1:
            raise ModelValidationError(f"{op.describe()} has {len(op.outputs)} outputs; expected 1")


def _check_order(g: Graph) -> None:
    """Ops run in file order: every input must be a constant, a graph input or written earlier.

    An input written only by a later op means a cycle (or a misordered file); both are rejected
    because no single pass over the ops could run the graph.
    """
    available = set(g.inputs) | {t.index for t in g.tensors if t.is_const}
    writer: dict[int, int] = {}
    later = {t: op for op in g.ops for t in op.outputs}
    for op in g.ops:
        for t in op.inputs:
            if t == -1 or t in available:
                continue
            tensor = g.tensors[t]
            if t in later:
                raise ModelValidationError(
                    f"{op.describe()} reads {tensor.describe()} before {later[t].describe()} writes it "
                    "(a cycle or misordered operators; expected each input to be written by an earlier op)"
                )
            raise ModelValidationError(
                f"{op.describe()} reads {tensor.describe()}, which is neither a graph input, a constant, "
                "nor written by any operator"
            )
        for t in op.outputs:
            if t in writer or t in g.inputs or g.tensors[t].is_const:
                first = f"op {writer[t]}" if t in writer else "a graph input or constant"
                raise ModelValidationError(
                    f"{op.describe()} writes {g.tensors[t].describe()}, already written by {first} "
                    "(expected each tensor to have one writer)"
                )
            writer[t] = op.index
            available.add(t)
    for t in g.outputs:
        if t not in available:
            raise ModelValidationError(f"graph output {g.tensors[t].describe()} is never written")


def _check_tensor(t: Tensor) -> None:
    if any(d < 0 for d in t.shape):
        raise ModelValidationError(
            f"{t.describe()} has a dynamic dimension; expected a fixed shape (convert at batch size 1)"
        )
    q = t.quant
    if t.dtype in QRANGE and t.dtype != "int16" and q is None:
        raise ModelValidationError(f"{t.describe()} is {t.dtype} but has no quantization parameters")
    if q is None:
        return
    where = t.describe()
    if q.zero_point.size not in (q.scale.size, 1) and t.dtype in QRANGE:
        raise ModelValidationError(
            f"{where} has {q.scale.size} scales but {q.zero_point.size} zero points; expected equal counts"
        )
    if not np.all(np.isfinite(q.scale)):
        raise ModelValidationError(f"{where} has a non-finite quantization scale; expected finite scales > 0")
    if t.dtype in QRANGE or t.dtype == "int32":
        if np.any(q.scale <= 0):
            bad = float(q.scale[np.argmax(q.scale <= 0)])
            raise ModelValidationError(f"{where} has quantization scale {bad}; expected scales > 0")
    if t.dtype in QRANGE:
        lo, hi = QRANGE[t.dtype]
        if np.any((q.zero_point < lo) | (q.zero_point > hi)):
            bad = int(q.zero_point[np.argmax((q.zero_point < lo) | (q.zero_point > hi))])
            raise ModelValidationError(f"{where} has zero point {bad}; expected {lo}..{hi} for {t.dtype}")
    if q.per_channel:
        if not 0 <= q.axis < len(t.shape):
            raise ModelValidationError(
                f"{where} has quantized_dimension {q.axis}; expected 0..{len(t.shape) - 1}"
            )
        if t.shape[q.axis] != q.scale.size:
            raise ModelValidationError(
                f"{where} has {q.scale.size} per-channel scales on dimension {q.axis} of size "
                f"{t.shape[q.axis]}; expected one per channel"
            )
