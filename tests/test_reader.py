"""The reader agrees with LiteRT's own view of a model (DESIGN ladder step 1).

Every tensor's name, shape, dtype and quantization (per-channel scales and quantized_dimension
included), every op's name and operands, the graph inputs/outputs and the constant buffers are
compared with ``ai_edge_litert.interpreter.Interpreter``. Two rewrites of a converted model check
what converters rarely emit: an op code kept only in ``deprecated_builtin_code`` (and one above 127
kept only in ``builtin_code``), and weights stored past the flatbuffer (``buffer.offset/size``).
"""

from __future__ import annotations


import numpy as np
import pytest

from tests import models as M
from tests.harness import model_bytes, random_input, require, schema
from mobilegen.convert.keras_models import build_mobilenet_v1
from mobilegen.errors import UnsupportedOpError
from mobilegen.plan import build_plan
from mobilegen.sim.runner import Simulator
from mobilegen.tflite.reader import read_model

CONV = ("conv_small", M.conv2d, dict(h=6, w=5, cin=3, cout=4, k=3, activation="relu"))
DENSE = ("dense_softmax_small", M.dense_softmax, dict(in_features=7, units=5))
MOBILENET = ("mnv1_025_64_c10", build_mobilenet_v1, dict(alpha=0.25, resolution=64, classes=10, seed=0))

CASES = [
    pytest.param(CONV, "float32", id="conv-float32"),
    pytest.param(CONV, "int8", id="conv-int8"),
    pytest.param(CONV, "int8_io", id="conv-int8_io"),
    pytest.param(CONV, "float16", id="conv-float16"),
    pytest.param(DENSE, "int8", id="dense_softmax-int8"),
    # Per-channel depthwise weights (quantized_dimension 3), MEAN, RESHAPE, SOFTMAX.
    pytest.param(MOBILENET, "int8", id="mobilenet_v1-int8"),
    pytest.param(MOBILENET, "float16", id="mobilenet_v1-float16"),
]


def unpack(buf: bytes):
    s = schema()
    return s.ModelT.InitFromObj(s.Model.GetRootAs(buf, 0))


def pack(m) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def externalize_buffers(buf: bytes) -> bytes:
    """The same model with every non-empty buffer moved past the flatbuffer (16-byte aligned),
    addressed by offset/size from the start of the file, as converters write models over 2 GB."""
    m = unpack(buf)
    moved = []
    for b in m.buffers:
        if b.data is not None and len(b.data):
            moved.append((b, np.asarray(b.data, dtype=np.uint8).tobytes()))
            b.data, b.offset, b.size = None, 1, 1  # non-default placeholders: the table layout is fixed
    head_len = len(pack(m))
    pos = head_len
    for b, raw in moved:
        pos = (pos + 15) // 16 * 16
        b.offset, b.size = pos, len(raw)
        pos += len(raw)
    head = pack(m)
    assert len(head) == head_len  # offsets are fixed-width uint64 fields
    out = bytearray(head)
    for b, raw in moved:
        out += bytes(b.offset - len(out)) + raw
    return bytes(out)


def interpreter(buf: bytes):
    lite = require("ai_edge_litert.interpreter")
    interp = lite.Interpreter(
        model_content=buf,
        experimental_op_resolver_type=lite.OpResolverType.BUILTIN_REF,
        experimental_preserve_all_tensors=True,
    )
    interp.allocate_tensors()
    return interp


def assert_matches_litert(buf: bytes) -> None:
    g = read_model(buf)
    interp = interpreter(buf)
    # Tensors past the model's are the interpreter's own temporaries (e.g. MEAN's accumulator).
    details = [d for d in interp.get_tensor_details() if d["index"] < len(g.tensors)]
    assert sorted(d["index"] for d in details) == list(range(len(g.tensors)))
    for d in details:
        t = g.tensors[d["index"]]
        where = t.describe()
        assert t.name == d["name"], where
        assert t.shape == tuple(int(v) for v in d["shape"]), where
        sig = t.shape_signature if t.shape_signature is not None else t.shape
        assert sig == tuple(int(v) for v in d["shape_signature"]), where
        assert t.dtype == np.dtype(d["dtype"]).name, where
        qp = d["quantization_parameters"]
        if qp["scales"].size == 0:
            assert t.quant is None, where
        else:
            assert t.quant is not None, where
            assert t.quant.scale.dtype == np.float32
            np.testing.assert_array_equal(t.quant.scale, qp["scales"], err_msg=where)  # bit-exact float32
            np.testing.assert_array_equal(t.quant.zero_point, qp["zero_points"], err_msg=where)
            assert t.quant.axis == qp["quantized_dimension"], where
        if t.is_const:
            ref = interp.get_tensor(d["index"])
            assert t.data.dtype == ref.dtype and t.data.shape == ref.shape, where
            np.testing.assert_array_equal(t.data, ref, err_msg=where)
    ops = interp._get_ops_details()
    assert [o.opcode for o in g.ops] == [o["op_name"] for o in ops]
    for op, o in zip(g.ops, ops):
        assert op.inputs == tuple(int(v) for v in o["inputs"]), op.describe()
        assert op.outputs == tuple(int(v) for v in o["outputs"]), op.describe()
    assert g.inputs == tuple(d["index"] for d in interp.get_input_details())
    assert g.outputs == tuple(d["index"] for d in interp.get_output_details())


def assert_same_graph(a, b) -> None:
    assert [(o.opcode, o.inputs, o.outputs, o.options) for o in a.ops] == [
        (o.opcode, o.inputs, o.outputs, o.options) for o in b.ops
    ]
    assert (a.inputs, a.outputs) == (b.inputs, b.outputs)
    for ta, tb in zip(a.tensors, b.tensors, strict=True):
        assert (ta.name, ta.shape, ta.dtype, ta.shape_signature) == (tb.name, tb.shape, tb.dtype, tb.shape_signature)
        assert (ta.quant is None) == (tb.quant is None)
        if ta.quant is not None:
            np.testing.assert_array_equal(ta.quant.scale, tb.quant.scale)
            np.testing.assert_array_equal(ta.quant.zero_point, tb.quant.zero_point)
            assert ta.quant.axis == tb.quant.axis
        assert ta.is_const == tb.is_const, ta.describe()
        if ta.is_const:
            assert ta.data.dtype == tb.data.dtype
            np.testing.assert_array_equal(ta.data, tb.data)


@pytest.mark.parametrize("case, mode", CASES)
def test_reader_matches_litert(case, mode):
    assert_matches_litert(model_bytes(case, mode))


def test_per_channel_depthwise_axis():
    """MobileNet's depthwise filters are quantized along dimension 3, conv filters along 0."""
    g = read_model(model_bytes(MOBILENET, "int8"))
    axes = {op.opcode: g.tensors[op.inputs[1]].quant.axis for op in g.ops if op.opcode.endswith("CONV_2D")}
    assert axes == {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3}
    for op in g.ops:
        if op.opcode == "DEPTHWISE_CONV_2D":
            w = g.tensors[op.inputs[1]]
            assert w.quant.per_channel and w.quant.scale.size == w.shape[3]


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_deprecated_builtin_code(mode):
    """Old files carry the op code only in the int8 deprecated_builtin_code; the code is
    max(builtin_code, deprecated_builtin_code) as in LiteRT's GetBuiltinCode."""
    buf = model_bytes(CONV, mode)
    m = unpack(buf)
    for oc in m.operatorCodes:
        assert 0 < oc.builtinCode < 127
        oc.deprecatedBuiltinCode, oc.builtinCode = oc.builtinCode, 0
    old = pack(m)
    assert_matches_litert(old)
    assert_same_graph(read_model(old), read_model(buf))
    assert [o.opcode for o in read_model(old).ops] == [o.opcode for o in read_model(buf).ops]


def test_code_above_127_uses_builtin_code():
    """Codes above 127 live only in builtin_code, the deprecated byte holds 127
    (PLACEHOLDER_FOR_GREATER_OP_CODES); the op is named by the real code and rejected by name."""
    s = schema()
    code = s.BuiltinOperator.GELU
    assert code > 127
    m = unpack(model_bytes(CONV, "float32"))
    oc = m.operatorCodes[m.subgraphs[0].operators[0].opcodeIndex]
    oc.builtinCode, oc.deprecatedBuiltinCode = code, 127
    g = read_model(pack(m))
    assert g.ops[0].opcode == "GELU"
    with pytest.raises(UnsupportedOpError, match=r"op 0 \(GELU\) is not supported"):
        build_plan(g)
    # A code newer than the reader's schema is named by its number, still rejected cleanly.
    oc.builtinCode = 250
    g = read_model(pack(m))
    assert g.ops[0].opcode == "UNKNOWN_250"
    with pytest.raises(UnsupportedOpError, match=r"op 0 \(UNKNOWN_250\) is not supported"):
        build_plan(g)


@pytest.mark.parametrize(
    "case, mode",
    [
        pytest.param(CONV, "int8", id="conv-int8"),
        pytest.param(CONV, "float16", id="conv-float16"),
        pytest.param(MOBILENET, "int8", id="mobilenet_v1-int8"),
    ],
)
def test_buffers_past_flatbuffer(case, mode):
    """Weights stored after the flatbuffer (buffer.offset/size) read and simulate identically."""
    buf = model_bytes(case, mode)
    ext = externalize_buffers(buf)
    m = unpack(ext)
    assert all(b.data is None for b in m.buffers) and any(b.offset > 1 for b in m.buffers)
    assert len(ext) > len(buf)
    a, b = read_model(buf), read_model(ext)
    assert_same_graph(a, b)
    assert_matches_litert(ext)  # LiteRT reads the rewritten file as we do
    x = random_input(a.tensors[a.inputs[0]], seed=3)
    va = Simulator(build_plan(a)).run([x])
    vb = Simulator(build_plan(b)).run([x])
    assert va.keys() == vb.keys()
    for i in va:
        np.testing.assert_array_equal(va[i], vb[i], err_msg=f"tensor {i}")
