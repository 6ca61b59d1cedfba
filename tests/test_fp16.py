"""Precision fp16 (mobilegen.numerics.fp16): float kernels computing in float32 on float16 storage.

The numbers:
- the engine's half.h conversions equal numpy's float16 casts (every half, millions of floats);
- plan, blob and simulator agree on one definition: float weights and biases rounded to float16
  once in the plan and stored as float16, every stored float tensor a float16 value;
- the generated engine at fp16 on Mesa llvmpipe (GLES) and on the CPU backend against the fp16
  simulator, for float32, float16-weights and int8 models:
    * kernel by kernel: each kernel, fed the engine's own input tensors, gives the simulator's
      output within FP16_RTOL = 1e-3 of max|b| per tensor (8-bit tensors exactly). One rounding
      to float16 moves a value by at most half a unit in the last place; a different float32
      accumulation order can move it by one unit to the neighbouring half (a relative 2^-10 at
      worst), which is what the tolerance allows;
    * whole runs of one-op models: every tensor within FP16_RTOL (8-bit tensors within 1 LSB: a
      float that lands on the other side of a quantization boundary);
    * whole runs of MobileNets are held to WHOLE_RUN_RTOL = 6e-3, not FP16_RTOL: a value that
      rounds to the neighbouring half feeds the next layers, and over 20-50 layers these
      differences spread (measured below WHOLE_RUN_RTOL; storing truncated halves gives 9e-3).
- the tolerance is meaningful: kernel by kernel, the engine's difference from the fp16 simulator
  is more than 10x smaller (relative L2) than the difference between float32 and float16 storage.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.harness import random_input
from tests.test_engine_cpu import BuiltEngine, build_engine, require_toolchain
from tests.test_glsl import require_glslang, run_gpu, validate_shaders

ROOT = Path(__file__).resolve().parents[1]
DEMO_MODEL = ROOT / "examples" / "demo" / "model.tflite"
ENGINE_DIR = ROOT / "templates" / "cpp" / "engine"
FP16_RTOL = 1e-3
# Whole runs of MobileNets: engine vs fp16 simulator, max|a - b| / max|b| on every float tensor of
# the run. Measured on both backends: the demo (V1 0.25 int8) 2.4e-3 to 3.1e-3 over three inputs,
# V1 0.25 float32 2.3e-3, V2 0.35 float32 and float16 3.6e-3, V2 0.35 int8 3.8e-3 (the README's
# "about 4e-3"); with every stored half truncated instead of rounded (half.h or pack_half4) the
# demo gives 8.6e-3 to 9.0e-3. 6e-3 is 1.6x the largest measured value and 1.4x below truncation.
WHOLE_RUN_RTOL = 6e-3
FP16_MODES = ("float32", "float16", "int8")  # float16: the .tflite's weights are float16
BACKENDS = ("gpu", "cpu")


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------
def _model(name: str, kwargs: dict, mode: str) -> bytes:
    from tests.test_engine_cpu import _one_op_model

    return _one_op_model(name, kwargs, mode)


def _fp16_engine(model: bytes) -> BuiltEngine:
    engine = build_engine(model, precision="fp16")
    assert engine.em.precision == "fp16" and engine.plan.float_storage == "float16"
    return engine


def engine_values(engine: BuiltEngine, x: np.ndarray, backend: str, work: Path) -> dict[int, np.ndarray]:
    """Every tensor the engine's dump lists, plus the graph input as the simulator stores it."""
    from mobilegen.dump import read_dump
    from mobilegen.numerics.fp16 import round_to_half

    if backend == "gpu":
        run_gpu(engine, x, work)
    else:
        r = engine.run(x, work)
        assert r.returncode == 0, f"mobilegen_run --backend cpu failed ({r.returncode}): {r.stderr}"
    _, got = read_dump(work / "dump")
    g = engine.graph
    got[g.inputs[0]] = round_to_half(x) if x.dtype == np.float32 else x
    return got


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    """max|a - b| / max|b|."""
    den = float(np.abs(b.astype(np.float64)).max(initial=0.0))
    return float(np.abs(a.astype(np.float64) - b).max(initial=0.0)) / max(den, 1e-30)


def _check(where: str, a: np.ndarray, b: np.ndarray, lsb: int) -> str | None:
    if a.shape != b.shape or a.dtype != b.dtype:
        return f"{where}: engine {a.dtype}{list(a.shape)} vs simulator {b.dtype}{list(b.shape)}"
    if a.dtype.kind in "iu":
        d = int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max(initial=0))
        return f"{where}: {d} LSB (allowed {lsb})" if d > lsb else None
    rel = _relative(a, b)
    return f"{where}: relative error {rel:.3g} > {FP16_RTOL}" if rel > FP16_RTOL else None


def kernel_by_kernel(engine: BuiltEngine, got: dict[int, np.ndarray], label: str) -> dict[str, float]:
    """Each kernel on the engine's own inputs against the engine's output (FP16_RTOL, 8-bit exact).
    Returns the squared L2 norms summed over float kernel outputs: engine - fp16 simulator,
    fp32 kernel - fp16 simulator (the same kernel with float32 storage), and the fp16 values."""
    from mobilegen.plan import ConstantKernel, build_plan
    from mobilegen.sim.runner import Simulator

    sim = Simulator(engine.plan)
    plan32 = build_plan(engine.graph)  # the same kernels (of a dequantized graph, for int8 models)
    sim32 = Simulator(plan32)
    assert [type(k) for k in plan32.kernels] == [type(k) for k in engine.plan.kernels]
    sums = {"engine": 0.0, "fp32": 0.0, "norm": 0.0}
    problems = []
    for k, k32 in zip(engine.plan.kernels, plan32.kernels):
        if isinstance(k, ConstantKernel):  # folded at generation (float16 weights): not run
            continue
        args = [got[i] for i in k.inputs]
        want, a = sim.step(k, args), got[k.output]
        problem = _check(f"{label}: kernel {k.name} (op {k.op}) output {k.output}", a, want, 0)
        if problem:
            problems.append(problem)
        elif want.dtype == np.float32:
            b = want.astype(np.float64)
            sums["engine"] += float(np.sum((a - b) ** 2))
            sums["fp32"] += float(np.sum((sim32.step(k32, args) - b) ** 2))
            sums["norm"] += float(np.sum(b**2))
    assert not problems, "\n".join(problems)
    return sums


def whole_run(engine: BuiltEngine, got: dict[int, np.ndarray], x: np.ndarray) -> dict[int, tuple[float, float]]:
    """tensor index -> (engine vs fp16 simulator, fp32 simulator vs fp16 simulator), max|a-b|/max|b|."""
    from mobilegen.plan import build_plan
    from mobilegen.sim.runner import Simulator

    want = Simulator(engine.plan).run([x])
    want32 = Simulator(build_plan(engine.graph)).run([x])
    return {i: (_relative(got[i], want[i]), _relative(want32[i], want[i])) for i in got if i in want}


def check_whole_run(engine: BuiltEngine, got: dict[int, np.ndarray], x: np.ndarray, label: str) -> None:
    """Every float tensor of a whole run within WHOLE_RUN_RTOL of the fp16 simulator."""
    errors = {i: e for i, e in whole_run(engine, got, x).items() if got[i].dtype == np.float32}
    assert errors, label
    worst = max(errors, key=lambda i: errors[i][0])
    engine_err, storage_err = errors[worst]
    assert engine_err <= WHOLE_RUN_RTOL, (
        f"{label}: whole run, tensor {worst}: engine vs fp16 simulator {engine_err:.2e} > {WHOLE_RUN_RTOL} "
        f"(fp32 vs fp16 storage {storage_err:.2e})")


def check_one_op(engine: BuiltEngine, label: str, backend: str, work: Path, seeds=(0, 1)) -> None:
    from mobilegen.sim.runner import Simulator

    g = engine.graph
    for seed in seeds:
        x = random_input(g.tensors[g.inputs[0]], seed)
        got = engine_values(engine, x, backend, work / f"{backend}-{seed}")
        kernel_by_kernel(engine, got, f"{label} [{backend}] seed {seed}")
        want = Simulator(engine.plan).run([x])
        assert sorted(got) == sorted(i for i in want if i not in engine.em.folded), label
        problems = [_check(f"{label} [{backend}] seed {seed}: tensor {i}", got[i], want[i], 1) for i in got]
        assert not any(problems), "\n".join(p for p in problems if p)


# --------------------------------------------------------------------------------------------------
# One definition: half.h, plan, blob, simulator
# --------------------------------------------------------------------------------------------------
HALF_CHECK = r"""
#include <cstdio>
#include "half.h"
// argv[1]: float32 bit patterns; writes their float_to_half to argv[2], then half_to_float of all
// 65536 halves.
int main(int, char** argv) {
  FILE* in = std::fopen(argv[1], "rb");
  FILE* out = std::fopen(argv[2], "wb");
  if (!in || !out) return 1;
  float f;
  while (std::fread(&f, sizeof f, 1, in) == 1) {
    const uint16_t h = mobilegen::float_to_half(f);
    std::fwrite(&h, sizeof h, 1, out);
  }
  for (uint32_t h = 0; h < 65536; ++h) {
    const float g = mobilegen::half_to_float(static_cast<uint16_t>(h));
    std::fwrite(&g, sizeof g, 1, out);
  }
  return std::fclose(out) == 0 ? 0 : 1;
}
"""


def test_half_conversions_match_numpy(tmp_path):
    """half.h against numpy: every half widened, 2M random float32 bit patterns and the edges
    (subnormals, the rounding ties, overflow to infinity, NaN) narrowed."""
    require_toolchain()
    (tmp_path / "check.cpp").write_text(HALF_CHECK)
    exe = tmp_path / "check"
    subprocess.run(["c++", "-std=c++17", "-O2", "-I", str(ENGINE_DIR), str(tmp_path / "check.cpp"), "-o", str(exe)],
                   check=True, capture_output=True)
    rng = np.random.default_rng(0)
    edges = np.concatenate([
        np.arange(0x33000000 - 64, 0x38800000 + 64, 3, dtype=np.uint32),  # around and in the subnormals
        np.arange(0x477fe000 - 4096, 0x47800000 + 4096, dtype=np.uint32),  # up to and past 65504
        np.array([0, 0x7F800000, 0x7FC00000, 0x7F800001, 0x33000000, 0x33000001, 0x477FF000, 0x477FEFFF], np.uint32),
    ])
    # float32 values halfway between two halves (ties) and next to them, normal and subnormal
    halves = np.arange(0x0001, 0x7BFF, dtype=np.uint16).view(np.float16).astype(np.float64)
    ties = ((halves[:-1] + halves[1:]) / 2).astype(np.float32).view(np.uint32)
    bits = np.concatenate([rng.integers(0, 2**32, 2_000_000, dtype=np.uint64).astype(np.uint32), edges, ties,
                           ties - 1, ties + 1])
    bits = np.concatenate([bits, bits ^ np.uint32(0x80000000)])  # both signs
    bits.tofile(tmp_path / "in.bin")
    subprocess.run([str(exe), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")], check=True)
    out = np.fromfile(tmp_path / "out.bin", np.uint8)
    narrowed = out[: 2 * bits.size].view(np.uint16)
    floats = bits.view(np.float32)
    with np.errstate(over="ignore"):
        want = floats.astype(np.float16)
    nan = np.isnan(floats)
    assert np.array_equal(narrowed[~nan], want[~nan].view(np.uint16))
    assert np.isnan(narrowed[nan].view(np.float16)).all()
    widened = out[2 * bits.size :].view(np.float32)
    assert np.array_equal(widened, np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32),
                          equal_nan=True)


def test_fp16_plan_blob_and_simulator_share_one_rounding():
    from mobilegen.export import export_plan, plan_for_precision
    from mobilegen.numerics.fp16 import round_to_half
    from mobilegen.plan import Conv2D, DepthwiseConv2D, FullyConnected
    from mobilegen.sim.runner import Simulator
    from mobilegen.tflite.reader import read_model

    g = read_model(DEMO_MODEL.read_bytes())  # an int8 model: at fp16 it runs dequantized
    plan16, p16 = plan_for_precision(g, "fp16")
    plan32, p32 = plan_for_precision(g, "fp32")
    assert (p16, plan16.float_storage, plan32.float_storage) == ("fp16", "float16", "float32")
    weighted = [(a, b) for a, b in zip(plan16.kernels, plan32.kernels) if isinstance(a, (Conv2D, DepthwiseConv2D, FullyConnected))]
    assert weighted
    for a, b in weighted:  # rounded once, in the plan
        for name in ("weights", "bias"):
            assert np.array_equal(getattr(a, name), round_to_half(getattr(b, name))), (a.name, name)
    em16, em32 = export_plan(plan16, "fp16"), export_plan(plan32, "fp32")
    assert em16.plan_hash != em32.plan_hash
    for k16, k32 in zip(em16.kernels, em32.kernels):
        if k16.type in ("Conv2D", "DepthwiseConv2D", "FullyConnected"):
            for ref in ("weights", "bias"):  # float16 in the blob: half the float32 bytes
                assert 2 * k16.params[ref][1] == k32.params[ref][1], (k16.type, ref)
    with pytest.raises(ValueError):
        export_plan(plan32, "fp16")
    with pytest.raises(ValueError):
        export_plan(plan16, "fp32")

    x = random_input(g.tensors[g.inputs[0]], 0)
    values = Simulator(plan16).run([x])
    floats = [v for v in values.values() if v.dtype == np.float32]
    assert floats and all(np.array_equal(v, round_to_half(v)) for v in floats)
    assert any(not np.array_equal(v, round_to_half(v)) for v in Simulator(plan32).run([x]).values() if v.dtype == np.float32)


def test_fp16_precision_errors():
    from mobilegen.errors import UserInputError
    from mobilegen.export import plan_for_precision
    from mobilegen.tflite.reader import read_model

    with pytest.raises(UserInputError, match="available: int8, fp16, fp32"):
        plan_for_precision(read_model(DEMO_MODEL.read_bytes()), "fp8")


# --------------------------------------------------------------------------------------------------
# Shaders
# --------------------------------------------------------------------------------------------------
def test_demo_fp16_shaders_validate(tmp_path):
    from mobilegen.render.glsl import render_gpu

    assert validate_shaders(DEMO_MODEL.read_bytes(), "demo fp16", tmp_path, "fp16") > 0
    _, shaders, _ = render_gpu(_fp16_engine_model(DEMO_MODEL.read_bytes()))
    assert any("{ uvec2 out_data[]; }" in s.source for s in shaders)
    assert not any("{ vec4 " in s.source for s in shaders), "a float32 buffer at fp16"


def _fp16_engine_model(model: bytes):
    from mobilegen.export import export_plan, plan_for_precision
    from mobilegen.tflite.reader import read_model

    return export_plan(*plan_for_precision(read_model(model), "fp16"))


def _sweep():
    from tests.test_ops import CONV_CASES, DEPTHWISE_CASES, OTHER_CASES

    cases = [("conv2d", k) for k in CONV_CASES] + [("depthwise", k) for k in DEPTHWISE_CASES] + list(OTHER_CASES)
    return [pytest.param(name, kwargs, mode, id=f"{name}-{'-'.join(str(v) for v in kwargs.values())}-{mode}")
            for name, kwargs in cases for mode in FP16_MODES]


@pytest.mark.slow
@pytest.mark.parametrize("name,kwargs,mode", _sweep())
def test_one_op_fp16_shaders_validate(name, kwargs, mode, tmp_path):
    validate_shaders(_model(name, kwargs, mode), f"{name}({kwargs}) [{mode}] fp16", tmp_path, "fp16")


# --------------------------------------------------------------------------------------------------
# The engine at fp16 against the fp16 simulator
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", FP16_MODES)
def test_small_model_fp16(mode, backend, tmp_path):
    model = _model("conv2d", dict(h=7, w=9, cin=3, cout=13, k=3, stride=2, padding="same"), mode)
    check_one_op(_fp16_engine(model), f"conv2d {mode} at fp16", backend, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,kwargs,mode", _sweep())
def test_one_op_models_fp16(name, kwargs, mode, backend, tmp_path):
    check_one_op(_fp16_engine(_model(name, kwargs, mode)), f"{name}({kwargs}) [{mode}] at fp16", backend, tmp_path)


FP16_MOBILENETS = [
    ("v1", 0.25, 128, "int8"),
    ("v1", 0.25, 128, "float32"),
    ("v2", 0.35, 96, "float32"),
    ("v2", 0.35, 96, "float16"),
    ("v2", 0.35, 96, "int8"),
]


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("family,alpha,resolution,mode", FP16_MOBILENETS, ids=str)
def test_mobilenet_fp16(family, alpha, resolution, mode, backend, tmp_path):
    """Every kernel of a MobileNet within FP16_RTOL, every tensor of the whole run within WHOLE_RUN_RTOL."""
    from tests.test_mobilenet import mobilenet_tflite

    model = mobilenet_tflite(family, alpha, resolution, 10, mode)
    label = f"MobileNet {family} {alpha} {resolution} {mode} at fp16 [{backend}]"
    if backend == "gpu":
        require_glslang()
        validate_shaders(model, label, tmp_path, "fp16")
    engine = _fp16_engine(model)
    g = engine.graph
    x = random_input(g.tensors[g.inputs[0]], 0)
    got = engine_values(engine, x, backend, tmp_path / "run")
    kernel_by_kernel(engine, got, label)
    check_whole_run(engine, got, x, label)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fp16_tolerance_is_meaningful(backend, tmp_path):
    """On the demo MobileNet (int8, run at fp16), kernel by kernel: the engine's difference from
    the fp16 simulator is a small fraction of what float32 instead of float16 storage changes, so
    an engine that stored float32 (or rounded differently) would fail; the whole run within
    WHOLE_RUN_RTOL."""
    engine = _fp16_engine(DEMO_MODEL.read_bytes())
    g = engine.graph
    x = random_input(g.tensors[g.inputs[0]], 0)
    got = engine_values(engine, x, backend, tmp_path / "run")
    sums = kernel_by_kernel(engine, got, f"demo at fp16 [{backend}]")
    engine_l2 = (sums["engine"] / sums["norm"]) ** 0.5
    storage_l2 = (sums["fp32"] / sums["norm"]) ** 0.5
    print(f"demo at fp16 [{backend}], kernel by kernel, relative L2: engine vs fp16 simulator {engine_l2:.2e}, "
          f"float32 vs float16 storage {storage_l2:.2e}")
    assert storage_l2 > 1e-4, "float16 storage should change the numbers"
    assert engine_l2 < storage_l2 / 10
    check_whole_run(engine, got, x, f"demo at fp16 [{backend}]")


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------
def test_simulate_and_generate_at_fp16(tmp_path):
    from typer.testing import CliRunner

    from mobilegen.cli.app import app
    from mobilegen.dump import read_dump
    from mobilegen.export import plan_for_precision
    from mobilegen.numerics.fp16 import round_to_half
    from mobilegen.sim.runner import Simulator
    from mobilegen.tflite.reader import read_model_file

    g = read_model_file(DEMO_MODEL)
    plan, _ = plan_for_precision(g, "fp16")
    x = random_input(g.tensors[g.inputs[0]], 0)
    np.save(tmp_path / "x.npy", x)
    runner = CliRunner()
    r = runner.invoke(app, ["simulate", str(DEMO_MODEL), "--input", str(tmp_path / "x.npy"), "--precision", "fp16",
                            "--dump-dir", str(tmp_path / "dump"), "--top", "0"])
    assert r.exit_code == 0, r.output
    _, dumped = read_dump(tmp_path / "dump")
    want = Simulator(plan).run([x])
    floats = [i for i, v in dumped.items() if v.dtype == np.float32]
    assert floats and all(np.array_equal(dumped[i], want[i]) for i in dumped)
    assert all(np.array_equal(dumped[i], round_to_half(dumped[i])) for i in floats)

    out = tmp_path / "android"
    r = runner.invoke(app, ["generate", str(DEMO_MODEL), "--target", "android", "--out", str(out), "--precision", "fp16"])
    assert r.exit_code == 0, r.output
    assert "Precision::Fp16" in (out / "sdk/src/main/cpp/engine/model_plan.cpp").read_text()
    java = next(out.rglob("ModelInfo.java")).read_text()
    assert 'PRECISION = "fp16"' in java
    assert "TOLERANCE = 0.01;" in next(out.rglob("ClassifierTest.java")).read_text()
    assert json.loads((out / "mobilegen.json").read_text())["options"]["precision"] == "fp16"
    t_in, t_out = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    golden_x = np.frombuffer((out / "sdk/src/androidTest/assets/golden_input0.bin").read_bytes(), t_in.dtype)
    golden_y = np.frombuffer((out / "sdk/src/androidTest/assets/golden_output0.bin").read_bytes(), t_out.dtype)
    assert np.array_equal(Simulator(plan).run([golden_x.reshape(t_in.shape)])[t_out.index].reshape(-1), golden_y)
