"""Precision fp16 with per-tensor storage: a precision plan keeps chosen float tensors in float32
(plan.half_storage_plan's keep_fp32) and stores every other float tensor as binary16.

What is checked, for mixed keep sets (every other stored float tensor, the other half, only the
graph input, only the graph output, every tensor) on one-op models and a MobileNet:
- plan and blob: a kernel's float weights and bias are float32 in the blob exactly when its
  output tensor is kept; an empty keep set is today's all-fp16 plan (same blob and hash, same
  model_plan.cpp, same shaders); keeping every tensor gives the fp32 plan's numbers (same
  weights payload, same simulator values); a RESHAPE chain is kept whole; bad keep sets are
  one-line user errors;
- the simulator rounds exactly the tensors the plan stores as half;
- the engine's three backends (GLES on Mesa llvmpipe, the CPU fallback, the iOS Metal backend on
  its host executor) against the simulator under the same plan, with test_fp16's tolerances
  (kernel by kernel FP16_RTOL, 8-bit exact; one-op whole runs FP16_RTOL; MobileNet whole runs
  WHOLE_RUN_RTOL) AND tensor by tensor storage: a tensor stored as half holds binary16 values
  only, a kept tensor whose simulator value is not all binary16 is not rounded by the engine
  either. The tolerances alone could not tell the two storages apart: one rounding to half moves
  a value by at most 2^-11 relative, below FP16_RTOL.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.harness import random_input
from tests.test_fp16 import FP16_RTOL, _check, check_whole_run, kernel_by_kernel

ROOT = Path(__file__).resolve().parents[1]
DEMO_MODEL = ROOT / "examples" / "demo" / "model.tflite"
BACKENDS = ("gpu", "cpu", "metal")
KEEP_SETS = ("alternate", "alternate_odd", "input", "output")


# --------------------------------------------------------------------------------------------------
# Plans and engines
# --------------------------------------------------------------------------------------------------
def keep_set(plan, which: str) -> frozenset[int]:
    """A keep set of the all-fp16 `plan`: "alternate" (every other stored float tensor, in index
    order, from the first), "alternate_odd" (the others), "input" / "output" (the graph's float
    inputs / outputs), "all", "none"."""
    from mobilegen.plan import stored_float_tensors

    stored = sorted(stored_float_tensors(plan))
    g = plan.graph
    sets = {
        "none": (),
        "all": stored,
        "alternate": stored[::2],
        "alternate_odd": stored[1::2],
        "input": [i for i in g.inputs if i in stored],
        "output": [i for i in g.outputs if i in stored],
    }
    keep = frozenset(sets[which])
    assert keep or which == "none", f"keep set {which!r} is empty for this model"
    return keep


def mixed_plan(model: bytes, which: str):
    from mobilegen.export import plan_for_precision
    from mobilegen.tflite.reader import read_model

    g = read_model(model)
    plan16, _ = plan_for_precision(g, "fp16")
    plan, precision = plan_for_precision(g, "fp16", keep_set(plan16, which))
    assert precision == "fp16"
    return plan


def build_host_engine(model: bytes, plan, edit=None):
    """test_engine_cpu.build_engine for a given plan (GLES + CPU backends, host runner).
    `edit(files)`: changes to the generated files (seeded bugs)."""
    from mobilegen.export import export_plan
    from mobilegen.targets.engine_tree import engine_files
    from tests.test_engine_cpu import CACHE, BuiltEngine, _cmake, _locked, _sources_digest, core_library
    from tests.test_engine_cpu import prebuilt_args, require_toolchain

    require_toolchain()
    em = export_plan(plan, "fp16")
    core = core_library()
    files = engine_files(em, "model.tflite", model)
    if edit is not None:
        edit(files)
    generated = "".join(f"{rel}\0{text}\0" for rel, text in sorted(files.items()))
    key = hashlib.sha256(model + b"fp16" + _sources_digest().encode() + generated.encode()).hexdigest()[:20]
    d = CACHE / f"model-mixed-{key}"
    with _locked(d):
        exe = d / "build" / "mobilegen_run"
        if not exe.exists():
            shutil.rmtree(d, ignore_errors=True)
            for rel, text in files.items():
                p = d / "src" / rel
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(text)
            _cmake(d / "src", d / "build", *prebuilt_args(core, files), target="mobilegen_run")
        (d / "model.mgw").write_bytes(em.blob)
    return BuiltEngine(d, em, plan)


def build_metal_host_engine(model: bytes, plan, edit=None):
    """test_metal_engine.build_metal_engine for a given plan (the iOS tree on the host executor)."""
    from mobilegen.export import export_plan
    from mobilegen.targets.engine_tree import engine_files
    from tests.test_engine_cpu import CACHE, _cmake, _locked, prebuilt_args
    from tests.test_metal_engine import MetalEngine, _digest, _write, metal_core_library, require_clang

    clang = require_clang()
    em = export_plan(plan, "fp16")
    core = metal_core_library()
    files = engine_files(em, "model.tflite", model, target="ios")
    if edit is not None:
        edit(files)
    flags = "-DCMAKE_CXX_FLAGS=-Werror"  # as test_metal_engine: the generated sources build without a warning
    key = hashlib.sha256(model + b"fp16" + _digest(files).encode() + str(core).encode() + flags.encode()).hexdigest()[:20]
    d = CACHE / f"metal-mixed-{key}"
    with _locked(d):
        exe = d / "build" / "mobilegen_run"
        if not exe.exists():
            shutil.rmtree(d, ignore_errors=True)
            _write(d / "src", files)
            _cmake(d / "src", d / "build", f"-DCMAKE_CXX_COMPILER={clang}", flags, *prebuilt_args(core, files),
                   target="mobilegen_run")
        (d / "model.mgw").write_bytes(em.blob)
    return MetalEngine(d, d / "build" / "mobilegen_run", d / "model.mgw", em, plan, files)


def build(model: bytes, plan, backend: str, edit=None):
    return build_metal_host_engine(model, plan, edit) if backend == "metal" else build_host_engine(model, plan, edit)


def engine_values(engine, x: np.ndarray, backend: str, work: Path) -> dict[int, np.ndarray]:
    """Every tensor the engine's dump lists, plus the graph input as the engine holds it (the
    host runner writes it to the dump directory, unlisted)."""
    from mobilegen.dump import read_dump
    from mobilegen.numerics.fp16 import round_to_half

    if backend == "gpu":
        from tests.test_glsl import run_gpu

        run_gpu(engine, x, work)
    elif backend == "metal":
        from tests.test_metal_engine import run_gpu

        run_gpu(engine, [x], work)
    else:
        r = engine.run(x, work)
        assert r.returncode == 0, f"mobilegen_run --backend cpu failed ({r.returncode}): {r.stderr}"
    _, got = read_dump(work / "dump")
    i = engine.graph.inputs[0]
    got[i] = np.load(work / "dump" / f"{i}.npy")
    stored = round_to_half(x) if engine.plan.stores_half(i) else x
    assert got[i].shape == stored.shape and got[i].dtype == stored.dtype, (got[i].dtype, list(got[i].shape))
    return got


# --------------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------------
def _not_half(a: np.ndarray) -> int:
    """How many values of float32 `a` are not binary16 numbers."""
    from mobilegen.numerics.fp16 import round_to_half

    return int(np.count_nonzero(a != round_to_half(a)))


def storage_problems(plan, got: dict[int, np.ndarray], want: dict[int, np.ndarray], label: str) -> list[str]:
    """Tensor by tensor: a half tensor holds binary16 values only; a kept tensor whose simulator
    value has values that are not binary16 has such values in the engine too (at least half as
    many: the engine computes in another order, never rounds them all)."""
    problems = []
    for i, a in got.items():
        if a.dtype != np.float32:
            continue
        if plan.stores_half(i):
            if _not_half(a):
                problems.append(f"{label}: tensor {i} is stored as half, the engine holds {_not_half(a)} non-binary16 values")
        elif _not_half(want[i]) and _not_half(a) < _not_half(want[i]) / 2:
            problems.append(
                f"{label}: tensor {i} is kept in float32 (simulator: {_not_half(want[i])} non-binary16 values), "
                f"the engine holds only {_not_half(a)}: it rounded the tensor to half")
    return problems


def check_mixed(engine, backend: str, work: Path, label: str, seeds=(0, 1), whole_model: bool = False) -> None:
    """The engine under a mixed plan against the simulator under the same plan: storage tensor by
    tensor, every kernel on the engine's own inputs within FP16_RTOL, and the whole run (one-op
    models: every tensor within FP16_RTOL, 8-bit within 1 LSB; whole models: WHOLE_RUN_RTOL)."""
    from mobilegen.sim.runner import Simulator

    g = engine.graph
    sim = Simulator(engine.plan)
    for seed in seeds:
        where = f"{label} [{backend}] seed {seed}"
        x = random_input(g.tensors[g.inputs[0]], seed)
        got = engine_values(engine, x, backend, work / f"{backend}-{seed}")
        want = sim.run([x])
        assert sorted(got) == sorted(i for i in want if i not in engine.em.folded), where
        problems = storage_problems(engine.plan, got, want, where)
        assert not problems, "\n".join(problems)
        kernel_by_kernel(engine, got, where)
        if whole_model:
            check_whole_run(engine, got, x, where)
        else:
            found = [_check(f"{where}: tensor {i}", got[i], want[i], 1) for i in got]
            assert not any(found), "\n".join(p for p in found if p)


def _model(name: str, kwargs: dict, mode: str = "float32") -> bytes:
    from tests.test_engine_cpu import _one_op_model

    return _one_op_model(name, kwargs, mode)


# --------------------------------------------------------------------------------------------------
# Plan, blob, simulator (no toolchain)
# --------------------------------------------------------------------------------------------------
def test_empty_keep_set_is_the_all_fp16_plan():
    """keep_fp32 empty: the same plan, blob (hash included), tables and shaders as before."""
    from mobilegen.export import export_plan, plan_for_precision
    from mobilegen.render.engine_plan import render_model_plan
    from mobilegen.render.glsl import render_gpu
    from mobilegen.render.metal import render_metal
    from mobilegen.tflite.reader import read_model

    g = read_model(DEMO_MODEL.read_bytes())
    a, _ = plan_for_precision(g, "fp16")
    b, _ = plan_for_precision(g, "fp16", frozenset())
    assert a.fp32_tensors == b.fp32_tensors == frozenset()
    ea, eb = export_plan(a, "fp16"), export_plan(b, "fp16")
    assert ea.blob == eb.blob and ea.plan_hash == eb.plan_hash
    assert all(t.half == (t.dtype == "float32") for t in ea.tensors)
    assert render_model_plan(ea, "m", "0" * 64) == render_model_plan(eb, "m", "0" * 64)
    assert render_gpu(ea) == render_gpu(eb)
    assert render_metal(ea).library == render_metal(eb).library
    # other precisions: no tensor is half
    for precision in ("int8", "fp32"):
        em = export_plan(*plan_for_precision(g, precision))
        assert not any(t.half for t in em.tensors), precision


def test_keep_everything_gives_fp32_numbers():
    """Every stored float tensor kept: the fp32 plan's weights payload and simulator values."""
    from mobilegen.export import export_plan, plan_for_precision
    from mobilegen.sim.runner import Simulator
    from mobilegen.tflite.reader import read_model

    g = read_model(DEMO_MODEL.read_bytes())
    plan16, _ = plan_for_precision(g, "fp16")
    kept, _ = plan_for_precision(g, "fp16", keep_set(plan16, "all"))
    plan32, _ = plan_for_precision(g, "fp32")
    em_kept, em32 = export_plan(kept, "fp16"), export_plan(plan32, "fp32")
    assert not any(t.half for t in em_kept.tensors)
    from mobilegen.weights import HEADER_SIZE

    # the same payload; the headers differ in the plan hash only
    assert em_kept.blob[HEADER_SIZE:] == em32.blob[HEADER_SIZE:] and em_kept.plan_hash != em32.plan_hash
    x = random_input(g.tensors[g.inputs[0]], 0)
    va, vb = Simulator(kept).run([x]), Simulator(plan32).run([x])
    assert sorted(va) == sorted(vb) and all(np.array_equal(va[i], vb[i]) for i in va)


@pytest.mark.parametrize("which", KEEP_SETS)
def test_mixed_plan_blob_and_simulator(which):
    """Weights and bias in float32 exactly for the kernels whose output is kept; the simulator
    rounds exactly the half tensors; the plan hash tells the storages apart."""
    from mobilegen.export import export_plan, plan_for_precision
    from mobilegen.numerics.fp16 import round_to_half
    from mobilegen.plan import Conv2D, DepthwiseConv2D, FullyConnected
    from mobilegen.sim.runner import Simulator
    from mobilegen.tflite.reader import read_model

    g = read_model(DEMO_MODEL.read_bytes())
    plan16, _ = plan_for_precision(g, "fp16")
    plan32, _ = plan_for_precision(g, "fp32")
    keep = keep_set(plan16, which)
    plan, _ = plan_for_precision(g, "fp16", keep)
    assert keep <= plan.fp32_tensors
    weighted = 0
    for k, k16, k32 in zip(plan.kernels, plan16.kernels, plan32.kernels):
        if isinstance(k, (Conv2D, DepthwiseConv2D, FullyConnected)):
            weighted += 1
            ref = k16 if plan.stores_half(k.output) else k32
            assert np.array_equal(k.weights, ref.weights) and np.array_equal(k.bias, ref.bias), (k.name, k.op)
    assert weighted
    em, em16 = export_plan(plan, "fp16"), export_plan(plan16, "fp16")
    assert em.plan_hash != em16.plan_hash
    assert {t.index for t in em.tensors if t.dtype == "float32" and not t.half} == plan.fp32_tensors & {
        t.index for t in em.tensors}
    for r, r16 in zip(em.kernels, em16.kernels):
        if r.type in ("Conv2D", "DepthwiseConv2D", "FullyConnected"):
            half = em.tensors[r.output].half
            for ref in ("weights", "bias"):  # float16: half the float32 bytes
                assert r.params[ref][1] == r16.params[ref][1] * (1 if half else 2), (r.type, ref, half)
    x = random_input(g.tensors[g.inputs[0]], 0)
    values = Simulator(plan).run([x])
    exact32 = Simulator(plan32).run([x])
    for i, v in values.items():
        if v.dtype != np.float32:
            continue
        if plan.stores_half(i):
            assert np.array_equal(v, round_to_half(v)), i
    assert any(not np.array_equal(values[i], round_to_half(values[i])) for i in keep), "kept tensors are not rounded"
    if which == "input":  # the first kernel reads the exact input
        i = g.inputs[0]
        assert np.array_equal(values[i], exact32[i])


def test_reshape_chains_share_storage():
    """A keep set naming a RESHAPE's output keeps its input too (they are one buffer on the GPU)."""
    from mobilegen.export import export_plan, plan_for_precision
    from mobilegen.plan import Reshape
    from mobilegen.tflite.reader import read_model

    g = read_model(DEMO_MODEL.read_bytes())
    plan16, _ = plan_for_precision(g, "fp16")
    reshapes = [k for k in plan16.kernels if isinstance(k, Reshape)]
    assert reshapes
    k = reshapes[-1]
    for named in (k.output, k.inputs[0]):
        plan, _ = plan_for_precision(g, "fp16", frozenset([named]))
        assert {k.output, k.inputs[0]} <= plan.fp32_tensors
        em = export_plan(plan, "fp16")
        ids = {t.index: t for t in em.tensors}
        assert not ids[k.output].half and not ids[k.inputs[0]].half


def test_bad_keep_sets_are_user_errors():
    from mobilegen.errors import UserInputError
    from mobilegen.export import plan_for_precision
    from mobilegen.tflite.reader import read_model

    g = read_model(DEMO_MODEL.read_bytes())
    weight = next(op for op in g.ops if op.opcode == "CONV_2D").inputs[1]  # a constant: its storage follows the kernel reading it
    for bad, needle in ((weight, "expected a float tensor the engine stores"), (len(g.tensors) + 3, "the graph has")):
        with pytest.raises(UserInputError, match=needle):
            plan_for_precision(g, "fp16", frozenset([bad]))
    plan16, _ = plan_for_precision(g, "fp16")
    with pytest.raises(UserInputError, match="need precision fp16"):
        plan_for_precision(g, "fp32", keep_set(plan16, "output"))


# --------------------------------------------------------------------------------------------------
# The engines under mixed plans against the simulator
# --------------------------------------------------------------------------------------------------
ONE_OP_CASES = [
    ("conv2d", dict(h=7, w=9, cin=3, cout=13, k=3, stride=2, padding="same")),
    ("depthwise", dict(h=7, w=9, c=13, k=3, stride=2, padding="same")),
    ("dense_softmax", dict(in_features=37, units=11)),  # FULLY_CONNECTED then SOFTMAX
    ("add", dict(h=7, w=5, c=13)),  # two convs joined by ADD: mixed-storage inputs
    ("concat", dict(h=5, w=6, c1=3, c2=5)),  # a conv and the input: mixed-storage inputs
    ("mean", dict(h=7, w=5, c=13, keepdims=True)),
    ("avg_pool", dict(h=9, w=7, c=5, pool=3, stride=2, padding="same")),
    ("max_pool", dict(h=9, w=7, c=5, pool=3, stride=2, padding="same")),
    ("pad", dict(h=5, w=7, c=3)),
    ("relu6", dict(h=6, w=7, c=5)),  # CONV, PAD, RELU6
    ("reshape", dict(h=4, w=6, c=5)),
]


def _one_op_params(keep_sets=KEEP_SETS, cases=ONE_OP_CASES):
    return [pytest.param(name, kwargs, which, id=f"{name}-{which}") for name, kwargs in cases for which in keep_sets]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("which", ("alternate", "input"))
def test_small_model_mixed(which, backend, tmp_path):
    """Two convs joined by ADD with every other tensor (or only the input) kept in float32."""
    from mobilegen.plan import Add

    model = _model("add", dict(h=7, w=5, c=13))
    plan = mixed_plan(model, which)
    add = next(k for k in plan.kernels if isinstance(k, Add))
    storages = {plan.stores_half(i) for i in add.inputs}
    assert storages == ({True, False} if which == "alternate" else {True}), storages  # mixed-storage ADD inputs
    engine = build(model, plan, backend)
    check_mixed(engine, backend, tmp_path, f"add {which}")


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,kwargs,which", _one_op_params())
def test_one_op_models_mixed(name, kwargs, which, backend, tmp_path):
    model = _model(name, kwargs)
    try:
        plan = mixed_plan(model, which)
    except AssertionError as e:  # a keep set this model cannot have (one stored tensor)
        pytest.skip(str(e))
    engine = build(model, plan, backend)
    check_mixed(engine, backend, tmp_path, f"{name}({kwargs}) keep {which}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("which", ("alternate", "output"))
def test_demo_mobilenet_mixed(which, backend, tmp_path):
    """The demo MobileNet (V1 0.25/128, int8, run at fp16) with a mixed plan: every kernel within
    FP16_RTOL, the whole run within WHOLE_RUN_RTOL, every tensor with the plan's storage."""
    model = DEMO_MODEL.read_bytes()
    engine = build(model, mixed_plan(model, which), backend)
    check_mixed(engine, backend, tmp_path, f"demo keep {which}", seeds=(0,), whole_model=True)


# --------------------------------------------------------------------------------------------------
# The checks catch an engine that ignores the per-tensor storage
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_an_engine_ignoring_the_keep_set_is_caught(backend, tmp_path):
    """An engine generated as if the keep set were empty (every float tensor stored as half: the
    whole-plan rule), checked against the mixed plan: within the tolerances everywhere, but the
    storage check names the kept tensors it rounded."""
    model = _model("add", dict(h=7, w=5, c=13))
    plan = mixed_plan(model, "alternate")
    engine = build(model, mixed_plan(model, "none"), backend)
    engine.plan = plan  # what the engine should have run
    with pytest.raises(AssertionError, match="it rounded the tensor to half"):
        check_mixed(engine, backend, tmp_path, "add alternate (engine ignoring the keep set)")


def test_engine_rejects_a_reshape_between_storages(tmp_path):
    """Engine::create checks the compiled-in storage: a RESHAPE (its output may be its input's
    memory) between float16 and float32 tensors is refused with a one-line error."""
    from mobilegen.export import export_plan, plan_for_precision
    from mobilegen.plan import Reshape
    from mobilegen.tflite.reader import read_model

    model = DEMO_MODEL.read_bytes()
    g = read_model(model)
    plan16, _ = plan_for_precision(g, "fp16")
    k = next(k for k in reversed(plan16.kernels) if isinstance(k, Reshape))
    plan, _ = plan_for_precision(g, "fp16", frozenset([k.output]))
    em = export_plan(plan, "fp16")
    out = next(t.id for t in em.tensors if t.index == k.output)

    def flip(files: dict) -> None:  # the RESHAPE output's row says float16, its input's float32
        rel = next(r for r in files if r.endswith("engine/model_plan.cpp"))
        lines = files[rel].split("\n")
        row = next(n for n, line in enumerate(lines) if line.startswith(f"    /* {out} */ {{"))
        assert lines[row].endswith(", false},")
        lines[row] = lines[row].removesuffix(", false},") + ", true},"
        files[rel] = "\n".join(lines)

    engine = build_host_engine(model, plan, edit=flip)
    r = engine.run(random_input(g.tensors[g.inputs[0]], 0), tmp_path)
    assert r.returncode != 0
    assert "(Reshape) between float16 and float32 storage" in r.stderr, r.stderr
