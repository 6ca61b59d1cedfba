"""The GLES 3.1 path: every rendered compute shader passes glslangValidator, and the generated
engine's GPU backend, run headless on Mesa (EGL surfaceless + llvmpipe) through the host runner
(`mobilegen_run --backend gpu --dump-dir`), matches the simulator on every tensor: integers bit for
bit, floats within harness.ENGINE_FLOAT_RTOL.

Engines are built as in test_engine_cpu (CMake, the engine core compiled once, cached under
tests/.model_cache/engine/). Missing tools skip locally with what to install and fail under CI=true.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.harness import ENGINE_FLOAT_RTOL, missing, random_input, require_tool, tensor_mismatches

ROOT = Path(__file__).resolve().parents[1]
DEMO_MODEL = ROOT / "examples" / "demo" / "model.tflite"  # committed: the model android_sample/ is made from
EGL_HINT = "apt-get install libegl-mesa0 libgl1-mesa-dri libegl-dev libgles-dev"
VALIDATE_TIMEOUT_S = 120

# The one-op sweep runs every mode (float16 models become float32 engines, their weights folded at
# generation) and, for int8 models, also the fp32 precision (the model run dequantized).
GPU_MODES = ("float32", "float16", "int8", "int8_io", "uint8")


_missing = missing  # skip locally, fail under CI=true (tests.harness)


def require_glslang() -> str:
    return require_tool("glslangValidator", "glslang-tools")


def engine_model(model: bytes, precision: str | None = None):
    from mobilegen.export import export_plan, plan_for_precision
    from mobilegen.tflite.reader import read_model

    plan, precision = plan_for_precision(read_model(model), precision)
    return export_plan(plan, precision)


def validate_shaders(model: bytes, label: str, tmp_path: Path, precision: str | None = None) -> int:
    """Render every shader of `model` and run glslangValidator on each program as the engine
    compiles it (the shared library, then the shader's source); returns the shader count."""
    from mobilegen.render.glsl import render_gpu

    exe = require_glslang()
    em = engine_model(model, precision)
    library, shaders, dispatch = render_gpu(em)
    assert len(dispatch) == len(em.kernels)
    for k, d in zip(em.kernels, dispatch):
        if k.type == "Reshape" and k.alias:
            assert d.shader == -1
        else:
            assert 0 <= d.shader < len(shaders) and all(g >= 1 for g in d.groups), (label, k.type, d)
    assert len({s.source for s in shaders}) == len(shaders), "identical shaders are shared"
    assert len({s.name for s in shaders}) == len(shaders), "shader names are unique"
    assert library.startswith("#version 310 es\n")
    paths = []
    for s in shaders:
        assert "#version" not in s.source, s.name
        p = tmp_path / f"{s.name}.comp"
        p.write_text(library + s.source)
        paths.append(str(p))
    if paths:
        r = subprocess.run([exe, *paths], capture_output=True, text=True, timeout=VALIDATE_TIMEOUT_S)
        assert r.returncode == 0, f"{label}: glslangValidator failed:\n{r.stdout[-6000:]}{r.stderr[-2000:]}"
    return len(shaders)


# --------------------------------------------------------------------------------------------------
# Running on Mesa
# --------------------------------------------------------------------------------------------------
def run_gpu(engine, x: np.ndarray, work: Path, cache_dir: Path | None = None, dump: bool = True, repeat: int = 1):
    """mobilegen_run --backend gpu; skips (fails under CI) when EGL / GLES 3.1 is unavailable."""
    work.mkdir(parents=True, exist_ok=True)
    np.save(work / "x.npy", x)
    cmd = [str(engine.exe), "--blob", str(engine.blob), "--input", str(work / "x.npy"),
           "--output", str(work / "y.npy"), "--backend", "gpu", "--repeat", str(repeat)]
    if dump:
        cmd += ["--dump-dir", str(work / "dump")]
    if cache_dir is not None:
        cmd += ["--cache-dir", str(cache_dir)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if r.returncode != 0 and "GpuUnavailable" in r.stderr:
        _missing(f"no EGL / OpenGL ES 3.1 compute on this host ({r.stderr.strip()}); install Mesa: {EGL_HINT}")
    assert r.returncode == 0, f"mobilegen_run --backend gpu failed ({r.returncode}): {r.stderr}"
    info = json.loads(r.stdout)
    assert info["backend"] == "gpu", info
    return info


def compare_gpu_with_simulator(engine, label: str, work: Path, seeds=(0, 1)) -> dict:
    from mobilegen.dump import read_dump
    from mobilegen.sim.runner import Simulator

    g = engine.graph
    sim = Simulator(engine.plan)
    info = {}
    for seed in seeds:
        x = random_input(g.tensors[g.inputs[0]], seed)
        want = sim.run([x])
        info = run_gpu(engine, x, work / f"seed{seed}")
        records, got = read_dump(work / f"seed{seed}" / "dump")
        listed = [rec["index"] for rec in records]
        assert listed == [i for i in g.written_tensors() if i not in engine.em.folded], label
        where = {i: f"{label} seed {seed}: tensor {i} {g.tensors[i].name!r}" for i in listed}
        problems = tensor_mismatches(got, want, where, ("GPU", "simulator"), ENGINE_FLOAT_RTOL)
        assert not problems, "\n".join(problems)
        y = np.load(work / f"seed{seed}" / "y.npy")
        np.testing.assert_array_equal(y, got[g.outputs[0]])
    return info


def _build(model: bytes, name: str = "model.tflite", precision: str | None = None):
    from tests.test_engine_cpu import build_engine

    return build_engine(model, name, precision)


def _one_op_model(name: str, kwargs: dict, mode: str) -> bytes:
    from tests.test_engine_cpu import _one_op_model as build

    return build(name, kwargs, mode)


def _sweep(modes=GPU_MODES, with_fp32=True):
    from tests.test_ops import CONV_CASES, DEPTHWISE_CASES, OTHER_CASES

    cases = [("conv2d", k) for k in CONV_CASES] + [("depthwise", k) for k in DEPTHWISE_CASES] + list(OTHER_CASES)
    params = []
    for name, kwargs in cases:
        for mode in modes:
            precisions = [None] + (["fp32"] if with_fp32 and mode == "int8" else [])
            for precision in precisions:
                marks = []
                ident = f"{name}-{'-'.join(str(v) for v in kwargs.values())}-{mode}" + (f"-{precision}" if precision else "")
                params.append(pytest.param(name, kwargs, mode, precision, id=ident, marks=marks))
    return params


# --------------------------------------------------------------------------------------------------
# Shader validation
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_demo_shaders_validate(precision, tmp_path):
    n = validate_shaders(DEMO_MODEL.read_bytes(), f"demo {precision}", tmp_path, precision)
    assert n > 0


def test_rendering_is_deterministic_and_shared():
    from mobilegen.render.glsl import render_gpu

    em = engine_model(DEMO_MODEL.read_bytes())
    la, a, da = render_gpu(em)
    lb, b, db = render_gpu(em)
    assert la == lb and [(s.name, s.source) for s in a] == [(s.name, s.source) for s in b] and da == db
    # MobileNet V1's repeated 14x14-style blocks share programs.
    assert len(a) < sum(1 for k in em.kernels if not (k.type == "Reshape" and k.alias))
    names = [s.name for s in a]
    assert "conv2d_3x3_s2" in names and "conv2d_1x1_s1" in names and "depthwise_3x3_s1" in names


@pytest.mark.slow
@pytest.mark.parametrize("name,kwargs,mode,precision", _sweep())
def test_one_op_shaders_validate(name, kwargs, mode, precision, tmp_path):
    validate_shaders(_one_op_model(name, kwargs, mode), f"{name}({kwargs}) [{mode}]", tmp_path, precision)


@pytest.mark.slow
@pytest.mark.parametrize("family,alpha,resolution,mode,precision", [
    ("v1", 0.25, 128, "int8", None), ("v1", 0.25, 128, "uint8", None), ("v1", 0.25, 128, "float32", None),
    ("v2", 0.35, 96, "int8", None), ("v2", 0.35, 96, "uint8", None), ("v2", 0.35, 96, "int8_io", None),
    ("v2", 0.35, 96, "float32", None), ("v2", 0.35, 96, "int8", "fp32"),
], ids=str)
def test_mobilenet_shaders_validate(family, alpha, resolution, mode, precision, tmp_path):
    from tests.test_mobilenet import mobilenet_tflite

    validate_shaders(mobilenet_tflite(family, alpha, resolution, 10, mode), f"MobileNet {family} {mode}", tmp_path,
                     precision)


# --------------------------------------------------------------------------------------------------
# The GPU backend on Mesa against the simulator
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_demo_model_on_gpu(precision, tmp_path):
    engine = _build(DEMO_MODEL.read_bytes(), DEMO_MODEL.name, precision)
    compare_gpu_with_simulator(engine, f"demo model at {precision}", tmp_path)


def test_small_model_on_gpu(tmp_path):
    model = _one_op_model("conv2d", dict(h=7, w=9, cin=3, cout=13, k=3, stride=2, padding="same"), "int8")
    compare_gpu_with_simulator(_build(model), "conv2d int8", tmp_path)


def test_fully_connected_double_rescale_on_gpu(tmp_path):
    """FULLY_CONNECTED's double-precision rescale, emulated in 32-bit integer GLSL, then SOFTMAX."""
    model = _one_op_model("dense_softmax", dict(in_features=37, units=11), "int8")
    compare_gpu_with_simulator(_build(model), "dense_softmax int8", tmp_path, seeds=(0, 1, 2, 3))


def test_auto_falls_back_to_cpu_when_a_shader_fails(tmp_path):
    """A driver whose compiler rejects a program (GpuError, common on phones): Backend::Auto runs
    on the CPU, Backend::Gpu reports the error. The failure is staged by breaking one shader of the
    generated plan."""
    from mobilegen.sim.runner import Simulator
    from mobilegen.targets.engine_tree import engine_files
    from tests.test_engine_cpu import _cmake, core_library, require_toolchain

    require_toolchain()
    model = _one_op_model("conv2d", dict(h=7, w=9, cin=3, cout=13, k=3, stride=2, padding="same"), "int8")
    engine = _build(model)  # the working engine: its plan, blob and simulator
    files = engine_files(engine.em, "model.tflite", model)
    plan_cpp = files["engine/model_plan.cpp"]
    assert plan_cpp.count("void main() {") >= 1
    files["engine/model_plan.cpp"] = plan_cpp.replace("void main() {", "void main() {\n  not_a_function();", 1)
    for rel, text in files.items():
        (tmp_path / "src" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / rel).write_text(text)
    _cmake(tmp_path / "src", tmp_path / "build", f"-DMOBILEGEN_PREBUILT_CORE={core_library()}", target="mobilegen_run")
    g = engine.graph
    x = random_input(g.tensors[g.inputs[0]], 0)
    np.save(tmp_path / "x.npy", x)

    def run(backend: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(tmp_path / "build" / "mobilegen_run"), "--blob", str(engine.blob), "--input",
                               str(tmp_path / "x.npy"), "--output", str(tmp_path / f"{backend}.npy"), "--backend",
                               backend], capture_output=True, text=True, timeout=300)

    gpu = run("gpu")
    if "GpuUnavailable" in gpu.stderr:
        _missing(f"no EGL / OpenGL ES 3.1 compute on this host ({gpu.stderr.strip()}); install Mesa: {EGL_HINT}")
    assert gpu.returncode != 0 and "GpuError" in gpu.stderr and "does not compile" in gpu.stderr, gpu.stderr
    auto = run("auto")
    assert auto.returncode == 0, auto.stderr
    assert json.loads(auto.stdout)["backend"] == "cpu"
    want = Simulator(engine.plan).run([x])[g.outputs[0]]
    np.testing.assert_array_equal(np.load(tmp_path / "auto.npy"), want)


@pytest.mark.slow
def test_stale_storage_bindings_are_detected(tmp_path):
    """Between dispatches every SSBO slot a kernel does not use is unbound. The GPU backend's
    debug path (--dump-dir) reads the bindings back (glGetIntegeri_v) before each dispatch; this
    test seeds the old bug (binding only the slots a kernel uses, so the previous kernel's buffers
    stay bound) into the generated gles_backend.cpp, builds the whole engine from it and expects
    that check to report it; the unseeded engine passes it in every dump run of this file."""
    from tests.test_engine_cpu import _cmake, require_toolchain
    from mobilegen.targets.engine_tree import engine_files

    require_toolchain()
    model = DEMO_MODEL.read_bytes()
    engine = _build(model, DEMO_MODEL.name)
    files = engine_files(engine.em, DEMO_MODEL.name, model)
    fixed = "for (int j = 0; j < kBindings; ++j) glBindBufferBase(GL_SHADER_STORAGE_BUFFER, j, b[j]);"
    seeded = "for (int j = 0; j < kBindings; ++j) { if (b[j] != 0) glBindBufferBase(GL_SHADER_STORAGE_BUFFER, j, b[j]); }"
    assert files["engine/gles_backend.cpp"].count(fixed) == 1
    files["engine/gles_backend.cpp"] = files["engine/gles_backend.cpp"].replace(fixed, seeded)
    for rel, text in files.items():
        (tmp_path / "src" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / rel).write_text(text)
    _cmake(tmp_path / "src", tmp_path / "build", target="mobilegen_run")  # no prebuilt core: it has the fix
    g = engine.graph
    np.save(tmp_path / "x.npy", random_input(g.tensors[g.inputs[0]], 0))
    r = subprocess.run([str(tmp_path / "build" / "mobilegen_run"), "--blob", str(engine.blob), "--input",
                        str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"), "--backend", "gpu",
                        "--dump-dir", str(tmp_path / "dump")], capture_output=True, text=True, timeout=300)
    if "GpuUnavailable" in r.stderr:
        _missing(f"no EGL / OpenGL ES 3.1 compute on this host ({r.stderr.strip()}); install Mesa: {EGL_HINT}")
    assert r.returncode != 0 and "GpuError" in r.stderr and "storage buffer binding" in r.stderr, r.stderr


def test_program_binary_cache(tmp_path):
    """A second engine start loads every program from the cache and computes the same output; a
    corrupt cache file falls back to compiling; an unwritable cache directory only skips caching."""
    model = _one_op_model("conv2d", dict(h=7, w=9, cin=3, cout=13, k=3, stride=2, padding="same"), "int8")
    engine = _build(model)
    g = engine.graph
    x = random_input(g.tensors[g.inputs[0]], 0)
    cache = tmp_path / "cache"
    cache.mkdir()
    run_gpu(engine, x, tmp_path / "cold", cache_dir=cache, dump=False)
    files = sorted(cache.glob("*.glbin"))
    if not files:
        _missing("the GL driver offers no program binary formats (Mesa's llvmpipe does); install Mesa: " + EGL_HINT)
    assert not list(cache.glob("*.tmp"))
    cold = np.load(tmp_path / "cold" / "y.npy")
    stamps = {p: p.stat().st_mtime_ns for p in files}
    run_gpu(engine, x, tmp_path / "warm", cache_dir=cache, dump=False)
    np.testing.assert_array_equal(np.load(tmp_path / "warm" / "y.npy"), cold)
    assert {p: p.stat().st_mtime_ns for p in sorted(cache.glob("*.glbin"))} == stamps, "a warm start rewrote the cache"
    for p in files:
        p.write_bytes(p.read_bytes()[:40] + b"garbage" * 10)
    run_gpu(engine, x, tmp_path / "corrupt", cache_dir=cache, dump=False)
    np.testing.assert_array_equal(np.load(tmp_path / "corrupt" / "y.npy"), cold)
    # The cache is best effort: a directory that cannot be written (here: missing) is no error.
    run_gpu(engine, x, tmp_path / "unwritable", cache_dir=tmp_path / "missing" / "cache", dump=False)
    np.testing.assert_array_equal(np.load(tmp_path / "unwritable" / "y.npy"), cold)
    assert not (tmp_path / "missing").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name,kwargs,mode,precision", _sweep())
def test_one_op_models_on_gpu(name, kwargs, mode, precision, tmp_path):
    engine = _build(_one_op_model(name, kwargs, mode), precision=precision)
    compare_gpu_with_simulator(engine, f"{name}({kwargs}) [{mode}] at {precision}", tmp_path)


GPU_MOBILENETS = [
    # family, alpha, resolution, mode, engine precision (None: the model's own)
    ("v1", 0.25, 128, "int8", None),
    ("v1", 0.25, 128, "uint8", None),
    ("v2", 0.35, 96, "int8", None),
    ("v2", 0.35, 96, "int8_io", None),
    ("v2", 0.35, 96, "uint8", None),
    ("v2", 0.35, 96, "float32", None),
    ("v1", 0.25, 128, "int8", "fp32"),
]


@pytest.mark.slow
@pytest.mark.parametrize("family,alpha,resolution,mode,precision", GPU_MOBILENETS, ids=str)
def test_mobilenet_on_gpu(family, alpha, resolution, mode, precision, tmp_path):
    from tests.test_mobilenet import mobilenet_tflite

    engine = _build(mobilenet_tflite(family, alpha, resolution, 10, mode), precision=precision)
    compare_gpu_with_simulator(engine, f"MobileNet {family} {alpha} {resolution} {mode} at {precision}", tmp_path)


def test_quantize_rounding_ties_on_gpu(tmp_path):
    """QUANTIZE of inputs on and next to the rounding ties (k + 1/2) * scale, and extremes: the
    GPU's exact integer division rounds like the reference's float32 division."""
    model = _one_op_model("conv2d", dict(h=7, w=9, cin=3, cout=13, k=3, stride=2, padding="same"), "int8")
    engine = _build(model)
    g = engine.graph
    t = g.tensors[g.inputs[0]]
    assert engine.em.kernels[0].type == "Quantize"
    scale = np.float32(engine.em.kernels[0].params["scale"])
    n = int(np.prod(t.shape))
    k = np.arange(n, dtype=np.float32) % 64 - 32
    ties = (k + np.float32(0.5)) * scale
    # Ties and their float32 neighbours, both signs, plus zeros, subnormals and large values (not
    # beyond int32 after the division: the reference's float -> int32 cast is undefined there).
    values = np.stack([ties, np.nextafter(ties, np.float32(np.inf)), np.nextafter(ties, np.float32(-np.inf))])
    x = values.reshape(-1)[:n].copy()
    x[:8] = [0.0, -0.0, 1e-40, -1e-40, 1e6 * scale, -1e6 * scale, 1e9 * scale, -1e9 * scale]
    x = x.reshape(t.shape).astype(np.float32)
    from mobilegen.dump import read_dump
    from mobilegen.sim.runner import Simulator

    for i, xs in enumerate((x, np.roll(x, 1), np.roll(x, 2))):
        want = Simulator(engine.plan).run([xs])
        run_gpu(engine, xs, tmp_path / f"run{i}")
        _, got = read_dump(tmp_path / f"run{i}" / "dump")
        q = engine.plan.kernels[0].output
        np.testing.assert_array_equal(got[q], want[q])
