""".tflite bytes -> Graph IR, through the flatbuffers runtime and the generated `tflite` schema package.

The flatbuffers Python runtime does not verify buffers: a corrupt file can make it read past the end
or report vectors of billions of entries. Every vector length and every offset is therefore checked
against the file size before it is used, and any failure inside the runtime becomes a
ModelFormatError that names what was being read.

Constant sparse tensors (Tensor.sparsity) are densified here (mobilegen.tflite.sparsity), so the
Graph only ever holds dense constants; DENSIFY ops then fold at plan time.

Dynamic-range ("hybrid") models run CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED on a float
input and a float output with int8 weights; LiteRT's CPU kernels quantize the input on the fly.
TFLite's GPU delegate instead dequantizes those weights once, at load time, and runs the op in
float. The reader does the same (`_fold_hybrid_weights`): such weights become float32 constants,
scale * (q - zero_point) per channel, so the rest of mobilegen sees an ordinary float graph.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import tflite
from tflite.BuiltinOperator import BuiltinOperator
from tflite.TensorType import TensorType

from mobilegen.errors import ModelFormatError
from mobilegen.ir.graph import Graph, Op, Quantization, Tensor
from mobilegen.ir.passes import dequantized_constant  # the GPU delegate's rounding
from mobilegen.tflite.options import OptionsError, parse_options
from mobilegen.tflite.sparsity import DENSE, SPARSE_CSR, DimensionMetadata, Sparsity, SparsityError, densify

FILE_IDENTIFIER = b"TFL3"
_MIN_SIZE = 8  # root offset + file identifier

OPCODE_NAMES: dict[int, str] = {
    v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)
}

# TensorType -> numpy dtype name. Types outside this table are reported, not guessed.
_DTYPES: dict[int, str] = {
    TensorType.FLOAT32: "float32",
    TensorType.FLOAT16: "float16",
    TensorType.INT32: "int32",
    TensorType.UINT8: "uint8",
    TensorType.INT64: "int64",
    TensorType.BOOL: "bool",
    TensorType.INT16: "int16",
    TensorType.INT8: "int8",
    TensorType.FLOAT64: "float64",
}
_TYPE_NAMES: dict[int, str] = {v: k for k, v in vars(TensorType).items() if not k.startswith("_")}

# SparseIndexVector union tag -> (table class, element size) of array_segments / array_indices.
_INDEX_VECTORS: dict[int, tuple[type, int]] = {
    tflite.SparseIndexVector.Int32Vector: (tflite.Int32Vector, 4),
    tflite.SparseIndexVector.Uint16Vector: (tflite.Uint16Vector, 2),
    tflite.SparseIndexVector.Uint8Vector: (tflite.Uint8Vector, 1),
}


def read_model(data: bytes, *, source: str = "model") -> Graph:
    """Parse .tflite bytes into a Graph (the first subgraph)."""
    data = bytes(data)
    if len(data) < _MIN_SIZE:
        raise ModelFormatError(f"{source}: {len(data)} bytes is too short to be a .tflite flatbuffer")
    if data[4:8] != FILE_IDENTIFIER:
        raise ModelFormatError(
            f"{source}: file identifier is {data[4:8]!r}, expected {FILE_IDENTIFIER!r} (not a .tflite model)"
        )
    return _Reader(data, source).graph()


# Ops that LiteRT runs "hybrid" (float activations, 8-bit weights) and their weights input.
HYBRID_OPS = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1}


def _fold_hybrid_weights(tensors: list[Tensor], ops: list[Op]) -> None:
    """Dequantize, in place, the 8-bit constant weights of hybrid ops into float32 constants.

    Only weights whose every reader is a hybrid op are folded: an int8 constant that an integer
    op (or a DEQUANTIZE) also reads keeps its type, and a malformed mix is left for the plan to
    report."""
    def hybrid(op: Op) -> bool:
        if op.opcode not in HYBRID_OPS or len(op.inputs) <= HYBRID_OPS[op.opcode]:
            return False
        x, w, y = tensors[op.inputs[0]], tensors[op.inputs[HYBRID_OPS[op.opcode]]], tensors[op.outputs[0]]
        return (x.dtype == y.dtype == "float32" and w.is_const and w.dtype in ("int8", "uint8")
                and w.quant is not None)

    readers: dict[int, list[Op]] = {}
    for op in ops:
        for i in op.inputs:
            if i >= 0:
                readers.setdefault(i, []).append(op)
    weights = {op.inputs[HYBRID_OPS[op.opcode]] for op in ops if hybrid(op)}
    for i in sorted(weights):
        if all(hybrid(op) and op.inputs[HYBRID_OPS[op.opcode]] == i for op in readers[i]):
            t = tensors[i]
            t.data, t.dtype, t.quant = dequantized_constant(t), "float32", None


def read_model_file(path) -> Graph:
    from pathlib import Path

    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ModelFormatError(f"{p}: cannot read ({e.strerror})") from None
    return read_model(data, source=str(p))


class _Reader:
    def __init__(self, data: bytes, source: str):
        self.data = data
        self.source = source

    # -- guarded access to the flatbuffers runtime ---------------------------------------------
    def _guard(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (ModelFormatError, OptionsError):
            raise
        except Exception as e:  # the runtime raises IndexError, struct.error, ValueError, ...
            raise ModelFormatError(f"{self.source}: corrupt flatbuffer while reading {what} ({type(e).__name__})") from None

    def _length(self, what: str, fn: Callable[[], int], elem_size: int = 4) -> int:
        n = self._guard(what, fn)
        if n < 0 or n * elem_size > len(self.data):
            raise ModelFormatError(f"{self.source}: {what} claims {n} entries, more than the {len(self.data)}-byte file holds")
        return n

    def _array(self, what: str, fn: Callable[[], Any], length: int) -> np.ndarray:
        """A scalar vector as numpy (the runtime returns 0 for an absent vector)."""
        if length == 0:
            return np.zeros(0)
        arr = self._guard(what, fn)
        return np.asarray(arr)

    # -- model ----------------------------------------------------------------------------------
    def graph(self) -> Graph:
        model = self._guard("the model root", lambda: tflite.Model.GetRootAs(self.data, 0))
        version = self._guard("the schema version", model.Version)
        opcodes = self._opcodes(model)
        nsub = self._length("subgraphs", model.SubgraphsLength)
        if nsub < 1:
            raise ModelFormatError(f"{self.source}: the model has no subgraph")
        sub = self._guard("subgraph 0", lambda: model.Subgraphs(0))
        nbuf = self._length("buffers", model.BuffersLength)
        buffers = [self._guard(f"buffer {i}", lambda i=i: model.Buffers(i)) for i in range(nbuf)]
        tensors = self._tensors(sub, buffers)
        ops = self._ops(sub, opcodes, len(tensors))
        n_in = self._length("subgraph inputs", sub.InputsLength)
        n_out = self._length("subgraph outputs", sub.OutputsLength)
        inputs = tuple(int(i) for i in self._array("subgraph inputs", sub.InputsAsNumpy, n_in))
        outputs = tuple(int(i) for i in self._array("subgraph outputs", sub.OutputsAsNumpy, n_out))
        _fold_hybrid_weights(tensors, ops)
        desc = self._guard("the description", model.Description) or b""
        return Graph(
            tensors=tensors,
            ops=ops,
            inputs=inputs,
            outputs=outputs,
            description=desc.decode("utf-8", "replace"),
            schema_version=int(version),
        )

    def _opcodes(self, model) -> list[str]:
        names = []
        for i in range(self._length("operator codes", model.OperatorCodesLength)):
            oc = self._guard(f"operator code {i}", lambda i=i: model.OperatorCodes(i))
            # Codes above 127 live only in builtin_code; old files only fill the deprecated byte.
            code = max(self._guard(f"operator code {i}", oc.BuiltinCode), self._guard(f"operator code {i}", oc.DeprecatedBuiltinCode))
            if code == BuiltinOperator.CUSTOM:
                custom = self._guard(f"operator code {i}", oc.CustomCode) or b""
                names.append("CUSTOM:" + custom.decode("utf-8", "replace"))
            else:
                names.append(OPCODE_NAMES.get(code, f"UNKNOWN_{code}"))
        return names

    def _tensors(self, sub, buffers) -> list[Tensor]:
        tensors = []
        for i in range(self._length("tensors", sub.TensorsLength)):
            t = self._guard(f"tensor {i}", lambda i=i: sub.Tensors(i))
            what = f"tensor {i}"
            name = (self._guard(what, t.Name) or b"").decode("utf-8", "replace")
            ttype = self._guard(what, t.Type)
            if ttype not in _DTYPES:
                raise ModelFormatError(
                    f"{self.source}: tensor {i} '{name}' has type {_TYPE_NAMES.get(ttype, ttype)}, "
                    f"expected one of {sorted(set(_DTYPES.values()))}"
                )
            dtype = _DTYPES[ttype]
            shape = tuple(int(d) for d in self._array(what, t.ShapeAsNumpy, self._length(what, t.ShapeLength)))
            nsig = self._length(what, t.ShapeSignatureLength)
            sig = tuple(int(d) for d in self._array(what, t.ShapeSignatureAsNumpy, nsig)) if nsig else None
            quant = self._quantization(t, what)
            data = self._buffer(t, buffers, what, name, shape, dtype)
            tensors.append(Tensor(i, name, shape, dtype, quant, data, sig))
        return tensors

    def _quantization(self, t, what) -> Quantization | None:
        q = self._guard(what, t.Quantization)
        if q is None:
            return None
        ns = self._length(f"{what} quantization scales", q.ScaleLength)
        if ns == 0:
            return None
        nz = self._length(f"{what} quantization zero points", q.ZeroPointLength, 8)
        scale = self._array(what, q.ScaleAsNumpy, ns).astype(np.float32)
        zp = self._array(what, q.ZeroPointAsNumpy, nz).astype(np.int64)
        return Quantization(scale, zp, int(self._guard(what, q.QuantizedDimension)))

    def _buffer(self, t, buffers, what, name, shape, dtype) -> np.ndarray | None:
        bi = self._guard(what, t.Buffer)
        if bi == 0:  # buffers[0] is the empty sentinel: an activation
            return None
        if bi >= len(buffers):
            raise ModelFormatError(f"{self.source}: {what} '{name}' uses buffer {bi}, but the model has {len(buffers)} buffers")
        b = buffers[bi]
        n = self._length(f"buffer {bi}", b.DataLength, 1)
        if n:
            raw = self._guard(f"buffer {bi}", b.DataAsNumpy).tobytes()
        else:
            offset, size = self._guard(f"buffer {bi}", b.Offset), self._guard(f"buffer {bi}", b.Size)
            if offset <= 1:  # no data: a variable-less activation that happens to own a buffer
                return None
            # Large models keep buffers after the flatbuffer, addressed from the start of the file.
            if offset + size > len(self.data):
                raise ModelFormatError(
                    f"{self.source}: buffer {bi} of {what} '{name}' spans bytes {offset}..{offset + size}, "
                    f"past the end of the {len(self.data)}-byte file"
                )
            raw = self.data[offset : offset + size]
        itemsize = np.dtype(dtype).itemsize
        sparsity = self._sparsity(t, f"{what} '{name}'")
        if sparsity is not None:
            # A constant sparse tensor: the buffer holds only the stored values; densify it here
            # so that every later stage (DENSIFY folds, FULLY_CONNECTED reads it) sees dense data.
            if len(raw) % itemsize:
                raise ModelFormatError(
                    f"{self.source}: {what} '{name}' is sparse {dtype} but its buffer {bi} holds {len(raw)} bytes, "
                    f"not a multiple of {itemsize}"
                )
            try:
                return densify(np.frombuffer(raw, dtype=dtype), shape, sparsity)
            except SparsityError as e:
                raise ModelFormatError(f"{self.source}: {what} '{name}' sparsity: {e}") from None
        count = int(np.prod(shape, dtype=np.int64)) if all(d >= 0 for d in shape) else -1
        if count < 0 or len(raw) != count * itemsize:
            raise ModelFormatError(
                f"{self.source}: {what} '{name}' has shape {list(shape)} {dtype} ({max(count, 0) * itemsize} bytes) "
                f"but its buffer {bi} holds {len(raw)} bytes"
            )
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()

    def _sparsity(self, t, what) -> Sparsity | None:
        """Tensor.sparsity as plain arrays (read only for constants, as LiteRT does)."""
        sp = self._guard(what, t.Sparsity)
        if sp is None:
            return None
        what = f"{what} sparsity"
        if self._guard(what, sp.TraversalOrderIsNone) or self._guard(what, sp.DimMetadataIsNone):
            raise ModelFormatError(f"{self.source}: {what} lacks traversal_order or dim_metadata (both are required)")
        ints = lambda a: tuple(int(v) for v in a)  # noqa: E731
        order = ints(self._array(what, sp.TraversalOrderAsNumpy, self._length(f"{what} traversal_order", sp.TraversalOrderLength)))
        block_map = ints(self._array(what, sp.BlockMapAsNumpy, self._length(f"{what} block_map", sp.BlockMapLength)))
        levels = []
        for j in range(self._length(f"{what} dim_metadata", sp.DimMetadataLength)):
            lw = f"{what} dim_metadata[{j}]"
            dm = self._guard(lw, lambda j=j: sp.DimMetadata(j))
            fmt = self._guard(lw, dm.Format)
            if fmt == DENSE:
                levels.append(DimensionMetadata(DENSE, int(self._guard(lw, dm.DenseSize))))
            elif fmt == SPARSE_CSR:
                seg = self._index_vector(f"{lw} array_segments", dm.ArraySegmentsType, dm.ArraySegments)
                idx = self._index_vector(f"{lw} array_indices", dm.ArrayIndicesType, dm.ArrayIndices)
                levels.append(DimensionMetadata(SPARSE_CSR, 0, seg, idx))
            else:
                raise ModelFormatError(f"{self.source}: {lw} has format {fmt}; expected DENSE (0) or SPARSE_CSR (1)")
        return Sparsity(order, block_map, tuple(levels))

    def _index_vector(self, what: str, type_fn: Callable[[], int], table_fn: Callable[[], Any]) -> np.ndarray:
        """One SparseIndexVector union member (Int32Vector / Uint16Vector / Uint8Vector) as int64."""
        tag = self._guard(what, type_fn)
        table = self._guard(what, table_fn)
        if tag not in _INDEX_VECTORS or table is None:
            raise ModelFormatError(
                f"{self.source}: {what} has index vector type {tag} ({'absent' if table is None else 'present'}); "
                "expected an Int32Vector, Uint16Vector or Uint8Vector"
            )
        cls, size = _INDEX_VECTORS[tag]
        vec = cls()
        self._guard(what, lambda: vec.Init(table.Bytes, table.Pos))
        n = self._length(what, vec.ValuesLength, size)
        return self._array(what, vec.ValuesAsNumpy, n).astype(np.int64)

    def _ops(self, sub, opcodes: list[str], ntensors: int) -> list[Op]:
        ops = []
        for i in range(self._length("operators", sub.OperatorsLength)):
            o = self._guard(f"operator {i}", lambda i=i: sub.Operators(i))
            what = f"operator {i}"
            ci = self._guard(what, o.OpcodeIndex)
            if ci >= len(opcodes):
                raise ModelFormatError(f"{self.source}: operator {i} uses opcode index {ci}, but the model has {len(opcodes)} operator codes")
            opcode = opcodes[ci]
            ins = tuple(int(v) for v in self._array(what, o.InputsAsNumpy, self._length(what, o.InputsLength)))
            outs = tuple(int(v) for v in self._array(what, o.OutputsAsNumpy, self._length(what, o.OutputsLength)))
            for role, idx in [("input", v) for v in ins] + [("output", v) for v in outs]:
                if idx >= ntensors or idx < -1 or (idx == -1 and role == "output"):
                    raise ModelFormatError(
                        f"{self.source}: operator {i} ({opcode}) {role} refers to tensor {idx}, "
                        f"but the subgraph has {ntensors} tensors"
                    )
            try:
                options = self._guard(f"{what} ({opcode}) options", lambda o=o, opcode=opcode: parse_options(opcode, o))
            except OptionsError as e:
                raise ModelFormatError(f"{self.source}: {what} ({opcode}) {e}") from None
            ops.append(Op(i, opcode, ins, outs, options))
        return ops

