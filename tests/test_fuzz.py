"""Mutation fuzzing: a corrupted model is either simulated or rejected with a MobilegenError.

Anything else (IndexError, struct.error, a numpy warning turned error, a hang) is a bug in the
reader, the verifier, the plan or the simulator. Examples are derandomized (the same every run),
and each one runs under a wall-clock guard.
"""

from __future__ import annotations

import functools
import math
import signal
import time
from contextlib import contextmanager

import numpy as np
import pytest

from mobilegen.errors import MobilegenError
from mobilegen.plan import build_plan
from mobilegen.sim.runner import Simulator
from mobilegen.tflite.reader import read_model
from tests import models as M
from tests.harness import random_input, require, schema

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

EXAMPLE_SECONDS = 5.0
BASES = [
    ("conv_small", M.conv2d, dict(h=6, w=5, cin=3, cout=4, k=3, activation="relu"), "int8"),
    ("dense_softmax_small", M.dense_softmax, dict(in_features=7, units=5), "int8"),
    ("add_small", M.add, dict(h=4, w=4, c=3), "int8_io"),
    ("dw_small", M.depthwise, dict(h=5, w=5, c=3, k=3, stride=2, depth_multiplier=2), "int8_io"),
]
SETTINGS = dict(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@functools.cache
def _bases() -> tuple[bytes, ...]:
    return tuple(M.tflite_model(name, b, kw, mode) for name, b, kw, mode in BASES)


def base_model(i: int) -> bytes:
    try:
        return _bases()[i]
    except ImportError:
        require("tensorflow")
        raise


class Hang(Exception):
    pass


@contextmanager
def time_guard(what: str):
    """Fail an example that runs longer than EXAMPLE_SECONDS: SIGALRM interrupts Python-level
    loops, the elapsed-time check catches long calls into numpy."""

    def on_alarm(signum, frame):
        raise Hang(f"{what} ran for more than {EXAMPLE_SECONDS} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, EXAMPLE_SECONDS)
    t0 = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    elapsed = time.monotonic() - t0
    assert elapsed < EXAMPLE_SECONDS, f"{what} took {elapsed:.1f} s"


def run_model(buf: bytes, what: str) -> None:
    """read -> plan -> simulate; only MobilegenError may escape (numpy warnings are errors)."""
    with time_guard(what), np.errstate(all="raise"):
        try:
            g = read_model(buf)
            plan = build_plan(g)
            xs = [random_input(g.tensors[i], 0) for i in g.inputs]
            values = Simulator(plan).run(xs)
        except MobilegenError as e:
            assert str(e) and "\n" not in str(e), repr(e)
            return
    for i in g.written_tensors():
        assert values[i].shape == g.tensors[i].shape and values[i].dtype == np.dtype(g.tensors[i].dtype)


# -- byte mutations --------------------------------------------------------------------------------
mutation = st.tuples(
    st.sampled_from(["flip", "overwrite", "truncate", "insert", "delete"]),
    st.floats(0.0, 1.0, exclude_max=True),  # position, as a fraction of the length
    st.integers(0, 255),
    st.integers(1, 8),  # run length
)


def mutate(buf: bytes, ops) -> bytes:
    b = bytearray(buf)
    for kind, frac, value, n in ops:
        p = int(frac * len(b)) if b else 0
        if kind == "flip" and b:
            b[p] ^= 1 << (value % 8)
        elif kind == "overwrite":
            b[p : p + n] = bytes([value]) * n
        elif kind == "truncate":
            del b[p:]
        elif kind == "insert":
            b[p:p] = bytes([value]) * n
        elif kind == "delete":
            del b[p : p + n]
    return bytes(b)


@settings(max_examples=4000, **SETTINGS)
@given(base=st.integers(0, len(BASES) - 1), ops=st.lists(mutation, min_size=1, max_size=4))
def test_byte_mutations(base, ops):
    run_model(mutate(base_model(base), ops), f"{BASES[base][0]} with {ops}")


# -- structured mutations through the object API ---------------------------------------------------
def pack(m) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


INT32 = [0, 1, 2, 3, 4, 5, 7, 16, 127, 128, 255, 256, -1, -2, -128, -129, 2**31 - 1, -(2**31), 2**20]
SCALES = [0.0, -1.0, 1e-30, 1e-10, 1e-5, 1 / 256, 0.5, 1.0, 1e10, 3e38, math.inf, -math.inf, math.nan, 1.4e-45]
edit = st.one_of(
    st.tuples(st.just("scale"), st.integers(0, 63), st.integers(0, 7), st.sampled_from(SCALES)),
    st.tuples(st.just("zero_point"), st.integers(0, 63), st.integers(0, 7), st.sampled_from(INT32)),
    st.tuples(st.just("quantized_dimension"), st.integers(0, 63), st.just(0), st.sampled_from(INT32)),
    st.tuples(st.just("shape"), st.integers(0, 63), st.integers(0, 5), st.sampled_from(INT32)),
    st.tuples(st.just("drop_dim"), st.integers(0, 63), st.integers(0, 5), st.just(0)),
    st.tuples(st.just("type"), st.integers(0, 63), st.just(0), st.integers(0, 20)),
    st.tuples(st.just("buffer"), st.integers(0, 63), st.just(0), st.integers(0, 20)),
    st.tuples(st.just("op_input"), st.integers(0, 15), st.integers(0, 3), st.sampled_from(INT32[:14])),
    st.tuples(st.just("op_output"), st.integers(0, 15), st.integers(0, 1), st.sampled_from(INT32[:14])),
    st.tuples(st.just("drop_input"), st.integers(0, 15), st.integers(0, 3), st.just(0)),
    st.tuples(st.just("opcode_index"), st.integers(0, 15), st.just(0), st.integers(0, 6)),
    st.tuples(st.just("builtin_code"), st.integers(0, 15), st.just(0), st.integers(0, 210)),
    st.tuples(st.just("option"), st.integers(0, 15), st.integers(0, 15), st.sampled_from(INT32)),
    st.tuples(st.just("graph_io"), st.integers(0, 1), st.just(0), st.sampled_from(INT32[:14])),
    st.tuples(st.just("swap_ops"), st.integers(0, 15), st.integers(0, 15), st.just(0)),
    st.tuples(st.just("buffer_bytes"), st.integers(0, 63), st.integers(0, 64), st.integers(-8, 8)),
)


def _int_fields(obj) -> list[str]:
    return sorted(k for k, v in vars(obj).items() if isinstance(v, (int, float)) and not isinstance(v, bool))


def apply_edit(m, e) -> None:
    kind, a, b, v = e
    sub = m.subgraphs[0]
    t = sub.tensors[a % len(sub.tensors)]
    op = sub.operators[a % len(sub.operators)]
    if kind in ("scale", "zero_point", "quantized_dimension"):
        if t.quantization is None:
            t.quantization = schema().QuantizationParametersT()
        q = t.quantization
        if kind == "quantized_dimension":
            q.quantizedDimension = v
            return
        field = "scale" if kind == "scale" else "zeroPoint"
        vals = list(getattr(q, field) if getattr(q, field) is not None else [])
        if b < len(vals):
            vals[b] = v
        else:
            vals.append(v)
        setattr(q, field, vals)
    elif kind == "shape":
        shape = list(t.shape if t.shape is not None else [])
        if b < len(shape):
            shape[b] = v
        else:
            shape.append(v)
        t.shape = shape
    elif kind == "drop_dim":
        shape = list(t.shape if t.shape is not None else [])
        if shape:
            del shape[b % len(shape)]
        t.shape = shape
    elif kind == "type":
        t.type = v
    elif kind == "buffer":
        t.buffer = v
    elif kind in ("op_input", "op_output"):
        field = "inputs" if kind == "op_input" else "outputs"
        vals = list(getattr(op, field))
        if vals:
            vals[b % len(vals)] = v
        setattr(op, field, vals)
    elif kind == "drop_input":
        vals = list(op.inputs)
        if vals:
            del vals[b % len(vals)]
        op.inputs = vals
    elif kind == "opcode_index":
        op.opcodeIndex = v
    elif kind == "builtin_code":
        oc = m.operatorCodes[a % len(m.operatorCodes)]
        oc.builtinCode, oc.deprecatedBuiltinCode = v, min(v, 127)
    elif kind == "option":
        if op.builtinOptions is not None:
            fields = _int_fields(op.builtinOptions)
            if fields:
                name = fields[b % len(fields)]
                setattr(op.builtinOptions, name, v)
    elif kind == "graph_io":
        field = "inputs" if a == 0 else "outputs"
        setattr(sub, field, [v])
    elif kind == "swap_ops":
        i, j = a % len(sub.operators), b % len(sub.operators)
        sub.operators[i], sub.operators[j] = sub.operators[j], sub.operators[i]
    elif kind == "buffer_bytes":
        buf = m.buffers[a % len(m.buffers)]
        data = list(buf.data) if buf.data is not None else []
        buf.data = data[: max(len(data) + v, 0)] if v < 0 else data + [b % 256] * v


# Values the flatbuffer fields cannot hold are out of scope: the packer itself rejects them.
_PACK_ERRORS = (OverflowError, TypeError, __import__("struct").error)


@settings(max_examples=2000, **SETTINGS)
@given(base=st.integers(0, len(BASES) - 1), edits=st.lists(edit, min_size=1, max_size=3))
def test_structured_mutations(base, edits):
    s = schema()
    m = s.ModelT.InitFromObj(s.Model.GetRootAs(base_model(base), 0))
    for e in edits:
        apply_edit(m, e)
    try:
        buf = pack(m)
    except _PACK_ERRORS:
        return
    run_model(buf, f"{BASES[base][0]} with {edits}")


def test_unmutated_bases_simulate():
    """The fuzz bases themselves are valid (so mutations start from a model that runs)."""
    for i in range(len(BASES)):
        g = read_model(base_model(i))
        Simulator(build_plan(g)).run([random_input(g.tensors[g.inputs[0]], 0)])


def test_huge_window_is_cheap():
    """A 3x3 conv with dilation 2^20 and SAME padding over a 6x5 input: every tap but the centre
    falls in the padding, so LiteRT's kernel does 6x5 multiply-adds; the simulator should not
    allocate memory in proportion to the dilation."""
    import tracemalloc

    s = schema()
    m = s.ModelT.InitFromObj(s.Model.GetRootAs(base_model(0), 0))
    for op in m.subgraphs[0].operators:
        if isinstance(op.builtinOptions, s.Conv2DOptionsT):
            op.builtinOptions.dilationHFactor = 1 << 20
    buf = pack(m)
    tracemalloc.start()
    try:
        run_model(buf, "conv with dilation 2^20")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20, f"peak {peak >> 20} MiB"
