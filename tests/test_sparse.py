"""Sparse constants (Tensor.sparsity) and DENSIFY: the densifier against hand-written golden arrays
and malformed metadata, and pruned models converted with Optimize.EXPERIMENTAL_SPARSITY (float32,
int8, float16) simulated against LiteRT's reference kernels on every tensor."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import inspect
import json
import os
import re
import tempfile

import numpy as np
import pytest

from mobilegen.errors import ModelFormatError
from mobilegen.tflite.sparsity import DENSE, SPARSE_CSR, DimensionMetadata, Sparsity, SparsityError, densify
from tests.harness import check_against_reference, random_input, require, schema

D = lambda size: DimensionMetadata(DENSE, size)  # noqa: E731
CSR = lambda seg, idx: DimensionMetadata(SPARSE_CSR, 0, np.array(seg), np.array(idx))  # noqa: E731

# --------------------------------------------------------------------------------------------------
# The densifier on hand-written metadata
# --------------------------------------------------------------------------------------------------
# A [4][6] matrix in 1x2 blocks along dim 1: expanded [4][3][2]; traversal [1, 0, 2] walks the
# block columns (DENSE 3), then the rows that have a nonzero block there (SPARSE_CSR), then the
# two elements of the block (DENSE 2).
BLOCKED = np.array(
    [
        [0, 0, 1, 2, 0, 0],
        [3, 4, 0, 0, 0, 0],
        [0, 0, 0, 0, 5, 6],
        [0, 7, 8, 0, 0, 0],
    ],
    np.float32,
)
BLOCKED_SPARSITY = Sparsity(
    traversal_order=(1, 0, 2),
    block_map=(1,),
    # block column 0: rows 1, 3; block column 1: rows 0, 3; block column 2: row 2
    dim_metadata=(D(3), CSR([0, 2, 4, 5], [1, 3, 0, 3, 2]), D(2)),
)
BLOCKED_VALUES = np.array([3, 4, 0, 7, 1, 2, 8, 0, 5, 6], np.float32)

# A [4][4] int8 matrix in 2x2 blocks (block_map [0, 1]), blocks walked row-major with a sparse
# block column, the inside of each block column-major (traversal [0, 1, 3, 2]).
BLOCKS_2X2 = np.array([[1, 2, 0, 0], [3, 4, 0, 0], [0, 0, 5, 0], [0, 0, 0, 6]], np.int8)
BLOCKS_2X2_SPARSITY = Sparsity((0, 1, 3, 2), (0, 1), (D(2), CSR([0, 1, 2], [0, 1]), D(2), D(2)))
BLOCKS_2X2_VALUES = np.array([1, 3, 2, 4, 5, 0, 0, 6], np.int8)


def test_csr_with_traversal_order_and_block_map():
    got = densify(BLOCKED_VALUES, (4, 6), BLOCKED_SPARSITY)
    assert got.dtype == np.float32 and np.array_equal(got, BLOCKED)


def test_two_block_dims_traversed_column_major():
    got = densify(BLOCKS_2X2_VALUES, (4, 4), BLOCKS_2X2_SPARSITY)
    assert got.dtype == np.int8 and np.array_equal(got, BLOCKS_2X2)


def test_dense_levels_in_traversal_order():
    # [2][3] stored column-major: traversal [1, 0], both levels DENSE.
    got = densify(np.arange(6, dtype=np.int32), (2, 3), Sparsity((1, 0), (), (D(3), D(2))))
    assert np.array_equal(got, [[0, 2, 4], [1, 3, 5]])


def test_csr_rows_of_a_3d_tensor():
    # [2][2][3]: DENSE, DENSE, SPARSE_CSR over the last dim (the converter's conv-filter layout).
    want = np.zeros((2, 2, 3), np.float32)
    want[0, 0, 2], want[0, 1, 0], want[0, 1, 1], want[1, 1, 2] = 1, 2, 3, 4
    sp = Sparsity((0, 1, 2), (), (D(2), D(2), CSR([0, 1, 3, 3, 4], [2, 0, 1, 2])))
    assert np.array_equal(densify(np.array([1, 2, 3, 4], np.float32), (2, 2, 3), sp), want)


def _bad(**change) -> tuple[np.ndarray, tuple[int, ...], Sparsity]:
    values, shape, sp = BLOCKED_VALUES, (4, 6), BLOCKED_SPARSITY
    if "values" in change:
        values = change.pop("values")
    if "shape" in change:
        shape = change.pop("shape")
    fields = dict(traversal_order=sp.traversal_order, block_map=sp.block_map, dim_metadata=sp.dim_metadata)
    fields.update(change)
    return values, shape, Sparsity(**fields)


MALFORMED = {
    "index_out_of_range": (
        _bad(dim_metadata=(D(3), CSR([0, 2, 4, 5], [1, 9, 0, 3, 2]), D(2))),
        r"^dim_metadata\[1\] array_indices\[1\] is 9; expected 0\.\.3$",
    ),
    "negative_index": (_bad(dim_metadata=(D(3), CSR([0, 2, 4, 5], [1, 3, -1, 3, 2]), D(2))), r"array_indices\[2\] is -1"),
    "duplicate_index": (_bad(dim_metadata=(D(3), CSR([0, 2, 4, 5], [3, 3, 0, 3, 2]), D(2))), r"strictly increasing"),
    "segments_length": (_bad(dim_metadata=(D(3), CSR([0, 2, 5], [1, 3, 0, 3, 2]), D(2))), r"array_segments has 3 entries; expected 4"),
    "segments_past_indices": (_bad(dim_metadata=(D(3), CSR([0, 2, 4, 6], [1, 3, 0, 3, 2]), D(2))), r"runs 0\.\.6; expected .* to 5"),
    "segments_decrease": (_bad(dim_metadata=(D(3), CSR([0, 3, 2, 5], [1, 3, 0, 3, 2]), D(2))), r"decreases"),
    "csr_without_arrays": (_bad(dim_metadata=(D(3), DimensionMetadata(SPARSE_CSR), D(2))), r"without array_segments"),
    "dense_size": (_bad(dim_metadata=(D(4), CSR([0, 2, 4, 5], [1, 3, 0, 3, 2]), D(2))), r"dim_metadata\[0\] is DENSE of size 4; expected 3"),
    "block_size_not_dividing": (_bad(dim_metadata=(D(3), CSR([0, 2, 4, 5], [1, 3, 0, 3, 2]), D(4))), r"expected a DENSE size that divides 6"),
    "traversal_not_permutation": (_bad(traversal_order=(1, 1, 2)), r"traversal_order \[1, 1, 2\]; expected a permutation of 0\.\.1 followed by one of 2\.\.2"),
    "traversal_length": (_bad(traversal_order=(1, 0)), r"traversal_order has 2 entries; expected 3"),
    "block_map_dim": (_bad(block_map=(2,)), r"block_map \[2\]; expected distinct ascending dims"),
    "unknown_format": (_bad(dim_metadata=(D(3), DimensionMetadata(7), D(2))), r"format 7; expected DENSE \(0\) or SPARSE_CSR \(1\)"),
    "too_few_values": (_bad(values=BLOCKED_VALUES[:-1]), r"buffer holds 9 values but the sparsity metadata addresses 10"),
    "too_many_values": (_bad(values=np.zeros(11, np.float32)), r"holds 11 values .* addresses 10"),
    "huge_shape": (_bad(shape=(1 << 20, 1 << 20)), r"needs \d+ bytes; expected at most"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_metadata_one_line(name):
    (values, shape, sp), pattern = MALFORMED[name]
    with pytest.raises(SparsityError) as e:
        densify(values, shape, sp)
    msg = str(e.value)
    assert "\n" not in msg and re.search(pattern, msg), msg


# --------------------------------------------------------------------------------------------------
# Pruned Keras models through the converter's sparsity option
# --------------------------------------------------------------------------------------------------
KEEP = 0.3  # share of weight blocks left nonzero (70% pruned)

# name -> (input shape, [(layer kind, layer args, pruning: (block rows, block cols) or "random")])
# Blocks are taken over the TFLite filter as [out][everything else]: 1x4 along the input features.
MODELS = {
    "fc_1x4": ((32,), [("dense", dict(units=16), (1, 4))]),
    "fc_1x16": ((32,), [("dense", dict(units=8), (1, 16))]),
    "conv": ((6, 6, 3), [("conv", dict(filters=8, kernel_size=3, padding="same", activation="relu"), "random"),
                         ("conv", dict(filters=8, kernel_size=1), (1, 4))]),
}
# (model, mode) -> what the converter is known to emit: sparse constants read straight by
# FULLY_CONNECTED with a block map, or DENSIFY ops (followed by DEQUANTIZE for float16).
CASES = {
    ("fc_1x4", "float32"): "fc_block",  # float FULLY_CONNECTED consumes 1x4-block sparse weights
    ("fc_1x4", "int8"): "densify",
    ("fc_1x16", "int8"): "fc_block",  # int8 FULLY_CONNECTED consumes 1x16-block sparse weights
    ("conv", "float32"): "densify",
    ("conv", "int8"): "densify",
    ("conv", "float16"): "densify",  # DENSIFY then DEQUANTIZE of the float16 filter
}


def _tflite_filter(kind: str, w: np.ndarray) -> np.ndarray:
    """Keras kernel -> TFLite filter: dense [in][out] -> [out][in]; conv [kh][kw][in][out] -> [out][kh][kw][in]."""
    return w.T if kind == "dense" else np.transpose(w, (3, 0, 1, 2))


def _build(name: str, seed: int = 0):
    """The pruned Keras model and its TFLite-layout pruned filters, per layer."""
    import keras

    shape, spec = MODELS[name]
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = inp = keras.Input(shape, batch_size=1)
    layers = []
    for kind, args, _ in spec:
        layer = (keras.layers.Dense if kind == "dense" else keras.layers.Conv2D)(bias_initializer="random_normal", **args)
        x = layer(x)
        layers.append(layer)
    model = keras.Model(inp, x)
    filters = []
    for layer, (kind, _, pattern) in zip(layers, spec):
        w, b = layer.get_weights()
        f = _tflite_filter(kind, w)
        flat = f.reshape(f.shape[0], -1)
        bh, bw = (1, 1) if pattern == "random" else pattern
        keep = rng.random((flat.shape[0] // bh, flat.shape[1] // bw)) < KEEP
        flat = flat * np.kron(keep, np.ones((bh, bw), np.float32))
        f = flat.reshape(f.shape).astype(np.float32)
        layer.set_weights([f.T if kind == "dense" else np.transpose(f, (1, 2, 3, 0)), b])
        filters.append(f)
    return model, filters


def _convert(model, mode: str) -> bytes:
    import tensorflow as tf

    from mobilegen.convert.quantize import default_calibration, input_shape

    shape = input_shape(model)

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)])
    def forward(x):
        return model(x, training=False)

    c = tf.lite.TFLiteConverter.from_concrete_functions([forward.get_concrete_function()])
    c.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    if mode == "float16":
        c.optimizations = [tf.lite.Optimize.DEFAULT, tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
        c.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        calibration = default_calibration(shape)
        c.optimizations = [tf.lite.Optimize.DEFAULT, tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
        c.representative_dataset = lambda: ([x[None].astype(np.float32)] for x in calibration)
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return bytes(c.convert())


@functools.lru_cache(maxsize=None)
def sparse_model(name: str, mode: str) -> tuple[bytes, list[np.ndarray]]:
    """(.tflite bytes, pruned TFLite-layout filters), the bytes cached like tests/models.py does."""
    from tests.models import CACHE_DIR

    require("tensorflow")
    key = json.dumps([name, MODELS[name], mode, KEEP, importlib.metadata.version("tensorflow"),
                      inspect.getsource(_build), inspect.getsource(_convert)], default=repr)
    path = CACHE_DIR / f"sparse_{name}-{mode}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.tflite"
    model, filters = _build(name)
    if path.exists():
        return path.read_bytes(), filters
    buf = _convert(model, mode)
    CACHE_DIR.mkdir(exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=CACHE_DIR, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(buf)
    os.replace(tmp, path)
    return buf, filters


def sparse_tensors(buf: bytes) -> dict[int, tuple[list[int], list[int], list[int]]]:
    """Tensor index -> (shape, traversal order, block map) of every tensor with sparsity metadata,
    read with TensorFlow's own schema bindings (independent of mobilegen's reader)."""
    s = schema()
    g = s.Model.GetRootAs(buf, 0).Subgraphs(0)
    out = {}
    for i in range(g.TensorsLength()):
        t = g.Tensors(i)
        sp = t.Sparsity()
        if sp is not None:
            out[i] = (list(t.ShapeAsNumpy()), list(sp.TraversalOrderAsNumpy()),
                      list(sp.BlockMapAsNumpy()) if sp.BlockMapLength() else [])
    return out


@pytest.fixture(scope="module", params=sorted(CASES), ids=lambda c: f"{c[0]}-{c[1]}")
def case(request):
    name, mode = request.param
    buf, filters = sparse_model(name, mode)
    return name, mode, buf, filters


def test_sparse_model_against_litert(case):
    from mobilegen.convert.quantize import opcode_names
    from mobilegen.plan import ConstantKernel, build_plan
    from mobilegen.tflite.reader import read_model
    from mobilegen.verify.reference import run_reference

    name, mode, buf, filters = case
    label = f"{name} {mode}"
    sparse = sparse_tensors(buf)
    # The converter really kept sparsity (otherwise this test would prove nothing), in the form
    # this case is about.
    assert len(sparse) == len(filters), f"{label}: sparse tensors {sparse}"
    ops = opcode_names(buf)
    if CASES[(name, mode)] == "fc_block":
        assert "DENSIFY" not in ops and any(bm == [1] and len(tr) == 3 for _, tr, bm in sparse.values()), (ops, sparse)
    else:
        assert ops.count("DENSIFY") == len(sparse), ops

    g = read_model(buf)
    x = random_input(g.tensors[g.inputs[0]], 3)
    ours = check_against_reference(buf, label, x=x)
    # NaN never compares greater than a tolerance: make sure both sides are real numbers.
    ref = run_reference(buf, x)
    for i, v in ref.items():
        assert np.all(np.isfinite(v)) and np.all(np.isfinite(ours[i])), f"{label}: tensor {i} not finite"

    # Densified, each sparse constant is the pruned filter (exactly, in float; its zeros in int8).
    by_shape = {tuple(f.shape): f for f in filters}
    for i in sparse:
        t = g.tensors[i]
        want = by_shape[t.shape]
        assert t.data is not None and t.data.shape == want.shape, label
        if mode == "float32":
            assert np.array_equal(t.data, want), f"{label}: {t.describe()}"
        elif mode == "float16":
            assert np.array_equal(t.data, want.astype(np.float16)), f"{label}: {t.describe()}"
        else:
            assert np.all(t.data[want == 0] == 0) and np.count_nonzero(t.data) > 0, f"{label}: {t.describe()}"
    plan = build_plan(g)
    folded = {k.output for k in plan.kernels if isinstance(k, ConstantKernel)}
    assert {op.outputs[0] for op in g.ops if op.opcode == "DENSIFY"} <= folded


def test_inspect_and_extract(case, tmp_path):
    from typer.testing import CliRunner

    from mobilegen.cli.app import app
    from mobilegen.extract import constant_roles
    from mobilegen.tflite.reader import read_model

    name, mode, buf, _ = case
    model = tmp_path / "sparse.tflite"
    model.write_bytes(buf)
    r = CliRunner().invoke(app, ["inspect", str(model)])
    assert r.exit_code == 0, r.stderr
    assert "corrupt" not in r.stdout + r.stderr and "holds" not in r.stdout + r.stderr
    g = read_model(buf)
    if len(g.tensors[g.inputs[0]].shape) == 4:
        assert "supported: yes" in r.stdout, r.stdout
    else:  # the engine takes it; only the Android SDK's picture input does not fit a feature vector
        assert "supported: simulate only; generate and verify refuse it: the Android SDK takes images" in r.stdout, r.stdout
        s = json.loads(CliRunner().invoke(app, ["inspect", str(model), "--json"]).output)
        assert s["support"]["simulate"] is None
    roles = constant_roles(g)
    want = "fc_weights" if name.startswith("fc") else "conv_filter"
    for i in sparse_tensors(buf):
        assert roles[i][0] == want, (i, roles[i])


# --------------------------------------------------------------------------------------------------
# The reader: index vector types and malformed metadata in a real file
# --------------------------------------------------------------------------------------------------
def _edit(buf: bytes, fn) -> bytes:
    import flatbuffers

    s = schema()
    m = s.ModelT.InitFromObj(s.Model.GetRootAs(buf, 0))
    fn(s, m, next(t for t in m.subgraphs[0].tensors if t.sparsity is not None))
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


@pytest.mark.parametrize("vector", ["Int32Vector", "Uint16Vector"])
def test_reader_index_vector_types(vector):
    """The converter writes Uint8Vectors for small tensors; the other members of the union read alike."""
    from mobilegen.tflite.reader import read_model

    buf, _ = sparse_model("fc_1x4", "float32")
    (i,) = sparse_tensors(buf)

    def retype(s, m, t):
        for dm in t.sparsity.dimMetadata:
            if dm.format == s.DimensionType.SPARSE_CSR:
                for attr in ("arraySegments", "arrayIndices"):
                    v = getattr(s, vector + "T")()
                    v.values = [int(a) for a in getattr(dm, attr).values]
                    setattr(dm, attr, v)
                    setattr(dm, attr + "Type", getattr(s.SparseIndexVector, vector))

    changed = _edit(buf, retype)
    assert changed != buf
    assert np.array_equal(read_model(changed).tensors[i].data, read_model(buf).tensors[i].data)


def _csr(s, t):
    return next(dm for dm in t.sparsity.dimMetadata if dm.format == s.DimensionType.SPARSE_CSR)


def _set_index(s, m, t):
    v = _csr(s, t).arrayIndices
    v.values = np.array(v.values, copy=True)
    v.values[0] = 200


def _drop_segment(s, m, t):
    dm = _csr(s, t)
    dm.arraySegments.values = dm.arraySegments.values[:-1]


def _no_indices(s, m, t):
    dm = _csr(s, t)
    dm.arrayIndicesType, dm.arrayIndices = s.SparseIndexVector.NONE, None


def _short_buffer(s, m, t):
    m.buffers[t.buffer].data = m.buffers[t.buffer].data[:-4]


def _odd_buffer(s, m, t):
    m.buffers[t.buffer].data = m.buffers[t.buffer].data[:-1]


def _no_traversal(s, m, t):
    t.sparsity.traversalOrder = None


READER_CASES = {
    "index_out_of_range": (_set_index, r"sparsity: dim_metadata\[1\] array_indices\[0\] is 200; expected 0\.\.7"),
    "segments_short": (_drop_segment, r"sparsity: dim_metadata\[1\] array_segments has 16 entries; expected 17"),
    "indices_absent": (_no_indices, r"dim_metadata\[1\] array_indices has index vector type 0 \(absent\)"),
    "values_missing": (_short_buffer, r"sparsity: the buffer holds \d+ values but the sparsity metadata addresses \d+"),
    "values_ragged": (_odd_buffer, r"is sparse float32 but its buffer \d+ holds \d+ bytes, not a multiple of 4"),
    "traversal_absent": (_no_traversal, r"sparsity lacks traversal_order or dim_metadata"),
}


@pytest.mark.parametrize("name", sorted(READER_CASES))
def test_reader_malformed_sparsity_one_line(name, tmp_path):
    from typer.testing import CliRunner

    from mobilegen.cli.app import app
    from mobilegen.tflite.reader import read_model

    fn, pattern = READER_CASES[name]
    buf, _ = sparse_model("fc_1x4", "float32")
    (i,) = sparse_tensors(buf)
    bad = _edit(buf, fn)
    with pytest.raises(ModelFormatError) as e:
        read_model(bad, source="bad.tflite")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"bad.tflite: tensor {i} '") and re.search(pattern, msg), msg
    path = tmp_path / "bad.tflite"
    path.write_bytes(bad)
    r = CliRunner().invoke(app, ["inspect", str(path)])
    lines = r.stderr.splitlines()
    assert r.exit_code not in (0, None) and len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert re.search(pattern, lines[0]) and "Traceback" not in r.stderr + r.stdout, lines[0]
