"""The generated C++ engine's CPU backend against the simulator, every tensor, plus the engine's
checks of the weights blob and the input.

Each model's engine tree is generated, built with CMake and run through the host runner
(`mobilegen_run --backend cpu --dump-dir`); every dumped tensor must equal the simulator's:
integers bit for bit, floats within harness.ENGINE_FLOAT_RTOL. The model-independent engine sources are
compiled once per template revision into libmobilegen_core.a and each model's model_plan.cpp is
linked against it; builds are cached under tests/.model_cache/engine/ (keyed by the sources).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from tests.harness import ENGINE_FLOAT_RTOL, random_input, tensor_mismatches

ROOT = Path(__file__).resolve().parents[1]
CPP_TEMPLATES = ROOT / "templates" / "cpp"
CACHE = Path(__file__).parent / ".model_cache" / "engine"
TOOLCHAIN_HINT = "apt-get install cmake g++ libegl-dev libgles-dev"
GL_HEADERS = (Path("/usr/include/EGL/egl.h"), Path("/usr/include/GLES3/gl31.h"))
BUILD_TIMEOUT_S = 600
RUN_TIMEOUT_S = 120

SWEEP_MODES = ("float32", "float16", "int8", "int8_io", "uint8")


# --------------------------------------------------------------------------------------------------
# Building and running engines
# --------------------------------------------------------------------------------------------------
def require_toolchain(arch: str = "host") -> None:
    """Skip (fail under CI=true) when the host cannot build the engine, naming what to install;
    for an Arm `arch` (mobilegen.verify.host.CROSS): its cross g++ and qemu-user."""
    if arch == "host":
        missing = [tool for tool in ("cmake", "c++") if shutil.which(tool) is None]
        missing += [str(h) for h in GL_HEADERS if not h.exists()]
        hint = TOOLCHAIN_HINT
    else:
        from mobilegen.verify.host import CROSS, QEMU_PACKAGE

        t = CROSS[arch]
        missing = [tool for tool in ("cmake", t.compiler, t.qemu) if shutil.which(tool) is None]
        hint = f"apt-get install cmake {t.compiler_package} {QEMU_PACKAGE}"
    if missing:
        msg = f"building the C++ engine needs {', '.join(missing)}; install with: {hint}"
        from tests.harness import missing as skip_or_fail  # `missing` is the list here

        skip_or_fail(msg)


def _sources_digest() -> str:
    """Digest of every static engine source (and this file's build recipe), for cache keys."""
    h = hashlib.sha256()
    for p in sorted(CPP_TEMPLATES.rglob("*")):
        if p.is_file() and p.suffix != ".j2":
            h.update(p.relative_to(CPP_TEMPLATES).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _locked(directory: Path):
    """Exclusive lock on `directory` across processes (pytest-xdist workers share the cache)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.with_name(directory.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _cmake(source: Path, build: Path, *extra: str, target: str | tuple[str, ...] | None = None) -> None:
    targets = (target,) if isinstance(target, str) else tuple(target or ())
    steps = [
        ["cmake", "-S", str(source), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release", *extra],
        ["cmake", "--build", str(build), "-j2"] + (["--target", *targets] if targets else []),
    ]
    for cmd in steps:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"


def _copy_static_sources(dest: Path) -> None:
    for p in CPP_TEMPLATES.rglob("*"):
        if p.is_file() and p.suffix != ".j2":
            target = dest / p.relative_to(CPP_TEMPLATES)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, target)


_core_libs: dict[str, Path] = {}


def _arch_key(arch: str) -> str:
    """Cache-key part of a build for `arch`: its name and toolchain file (empty for the host)."""
    if arch == "host":
        return ""
    from mobilegen.verify.host import toolchain_text

    return f"{arch}-{hashlib.sha256(toolchain_text(arch).encode()).hexdigest()[:8]}-"


def _arch_cmake_args(arch: str, build: Path) -> list[str]:
    from mobilegen.verify.host import cmake_args

    return cmake_args(arch, build)


def core_library(arch: str = "host") -> Path:
    """libmobilegen_core.a built once per revision of the engine sources (and target `arch`)."""
    lib = _core_libs.get(arch)
    if lib is not None and lib.exists():
        return lib
    d = CACHE / f"core-{_arch_key(arch)}{_sources_digest()}"
    lib = d / "build" / "libmobilegen_core.a"
    with _locked(d):
        if not lib.exists():
            shutil.rmtree(d, ignore_errors=True)
            _copy_static_sources(d / "src")
            # The core target does not compile the model plan; CMake only needs the file to exist.
            (d / "src" / "engine" / "model_plan.cpp").write_text("// placeholder: not compiled for mobilegen_core\n")
            _cmake(d / "src", d / "build", *_arch_cmake_args(arch, d / "build"), target=("mobilegen_core", "mobilegen_runner"))
    _core_libs[arch] = lib
    return lib


def prebuilt_args(core: Path, files: dict[str, str], runner: str = "host/mobilegen_run.cpp") -> list[str]:
    """CMake arguments linking the cached core, and the cached runner (built next to the core)
    when `files` carry the runner unchanged (a seeded edit of it is compiled)."""
    args = [f"-DMOBILEGEN_PREBUILT_CORE={core}"]
    prebuilt = core.parent / "libmobilegen_runner.a"
    if prebuilt.exists() and files.get(runner) == (CPP_TEMPLATES / runner).read_text():
        args.append(f"-DMOBILEGEN_PREBUILT_RUNNER={prebuilt}")
    return args


class BuiltEngine:
    def __init__(self, directory: Path, em, plan, arch: str = "host"):
        from mobilegen.verify.host import launcher

        self.dir = directory
        self.exe = directory / "build" / "mobilegen_run"
        self.blob = directory / "model.mgw"
        self.em = em
        self.plan = plan  # what the engine runs (a float plan for an integer model at fp32)
        self.graph = plan.graph
        self.arch = arch
        self.launcher = launcher(arch)  # qemu-user for an Arm build

    def run(self, x: np.ndarray, work: Path, backend: str = "cpu", blob: Path | None = None, dump: bool = True,
            repeat: int = 1) -> subprocess.CompletedProcess:
        work.mkdir(parents=True, exist_ok=True)
        np.save(work / "x.npy", x)
        cmd = [*self.launcher, str(self.exe), "--blob", str(blob or self.blob), "--input", str(work / "x.npy"),
               "--output", str(work / "y.npy"), "--backend", backend, "--repeat", str(repeat)]
        if dump:
            cmd += ["--dump-dir", str(work / "dump")]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)


def build_engine(model: bytes, name: str = "model.tflite", precision: str | None = None,
                 arch: str = "host") -> BuiltEngine:
    """Generate the engine tree for `model`, build mobilegen_run (for `arch`: the host, or an Arm
    target run under qemu-user) against the cached core."""
    require_toolchain(arch)
    from mobilegen.export import export_plan, plan_for_precision
    from mobilegen.targets.engine_tree import engine_files
    from mobilegen.tflite.reader import read_model

    plan, precision = plan_for_precision(read_model(model), precision)
    em = export_plan(plan, precision)
    core = core_library(arch)
    files = engine_files(em, name, model)
    # Keyed by the generated sources too: they change with the GLSL templates and the renderers.
    generated = "".join(f"{rel}\0{text}\0" for rel, text in sorted(files.items()))
    key = hashlib.sha256(model + precision.encode() + _sources_digest().encode() + generated.encode()).hexdigest()[:20]
    d = CACHE / f"model-{_arch_key(arch)}{key}"
    with _locked(d):
        exe = d / "build" / "mobilegen_run"
        if not exe.exists():
            shutil.rmtree(d, ignore_errors=True)
            for rel, text in files.items():
                p = d / "src" / rel
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(text)
            _cmake(d / "src", d / "build", *prebuilt_args(core, files), *_arch_cmake_args(arch, d / "build"),
                   target="mobilegen_run")
        (d / "model.mgw").write_bytes(em.blob)
    return BuiltEngine(d, em, plan, arch)


# --------------------------------------------------------------------------------------------------
# Comparison with the simulator
# --------------------------------------------------------------------------------------------------
def compare_with_simulator(engine: BuiltEngine, label: str, work: Path, seeds=(0, 1)) -> None:
    from mobilegen.dump import read_dump
    from mobilegen.sim.runner import Simulator

    g = engine.graph
    sim = Simulator(engine.plan)
    for seed in seeds:
        x = random_input(g.tensors[g.inputs[0]], seed)
        want = sim.run([x])
        r = engine.run(x, work / f"seed{seed}")
        assert r.returncode == 0, f"{label}: mobilegen_run failed ({r.returncode}): {r.stderr}"
        assert json.loads(r.stdout)["backend"] == "cpu"
        records, got = read_dump(work / f"seed{seed}" / "dump")
        listed = [rec["index"] for rec in records]
        # Tensors folded at generation (float16 weights) are constants, not engine kernels.
        assert listed == [i for i in g.written_tensors() if i not in engine.em.folded], label
        for rec in records:
            t = g.tensors[rec["index"]]
            assert rec["shape"] == list(t.shape) and rec["dtype"] == t.dtype and rec["name"] == t.name
        where = {i: f"{label} seed {seed}: tensor {i} {g.tensors[i].name!r}" for i in listed}
        problems = tensor_mismatches(got, want, where, ("engine", "simulator"), ENGINE_FLOAT_RTOL)
        assert not problems, "\n".join(problems)
        y = np.load(work / f"seed{seed}" / "y.npy")
        out = want[g.outputs[0]]
        assert y.shape == out.shape and y.dtype == out.dtype
        np.testing.assert_array_equal(y, got[g.outputs[0]])


def _sweep_cases():
    from tests.test_ops import CONV_CASES, DEPTHWISE_CASES, OTHER_CASES

    cases = [("conv2d", k) for k in CONV_CASES] + [("depthwise", k) for k in DEPTHWISE_CASES] + list(OTHER_CASES)
    return [
        pytest.param(name, kwargs, mode, id=f"{name}-{'-'.join(str(v) for v in kwargs.values())}-{mode}")
        for name, kwargs in cases
        for mode in SWEEP_MODES
    ]


def _one_op_model(name: str, kwargs: dict, mode: str) -> bytes:
    from tests.harness import require

    require("tensorflow")
    from tests import models

    return models.tflite_model(name, models.BUILDERS[name], kwargs, mode)


# --------------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------------
DEMO_MODEL = ROOT / "examples" / "demo" / "model.tflite"  # committed: the model android_sample/ is made from


@pytest.fixture(scope="module")
def small_engine() -> BuiltEngine:
    """An int8 conv model with float input (QUANTIZE / DEQUANTIZE around it)."""
    return build_engine(_one_op_model("conv2d", dict(h=7, w=9, cin=3, cout=13, k=3, stride=2, padding="same"), "int8"))


def test_small_model_matches_simulator(small_engine, tmp_path):
    compare_with_simulator(small_engine, "conv2d int8", tmp_path)


def test_demo_model_matches_simulator(tmp_path):
    compare_with_simulator(build_engine(DEMO_MODEL.read_bytes(), DEMO_MODEL.name), "demo model", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name,kwargs,mode", _sweep_cases())
def test_one_op_models(name, kwargs, mode, tmp_path):
    engine = build_engine(_one_op_model(name, kwargs, mode))
    compare_with_simulator(engine, f"{name}({kwargs}) [{mode}]", tmp_path)


MOBILENET_CASES = [
    # family, alpha, resolution, mode, engine precision (None: the model's own)
    ("v1", 0.25, 128, "int8", None),
    ("v2", 0.35, 96, "int8", None),
    ("v2", 0.35, 96, "uint8", None),
    ("v1", 0.25, 128, "float32", None),
    ("v2", 0.35, 96, "float16", None),
    ("v1", 0.25, 128, "int8", "fp32"),  # an integer model run dequantized, as the GPU delegate does
]


@pytest.mark.slow
@pytest.mark.parametrize("family,alpha,resolution,mode,precision", MOBILENET_CASES,
                         ids=lambda v: str(v))
def test_mobilenet(family, alpha, resolution, mode, precision, tmp_path):
    from tests.test_mobilenet import mobilenet_tflite

    engine = build_engine(mobilenet_tflite(family, alpha, resolution, 10, mode), precision=precision)
    compare_with_simulator(engine, f"MobileNet {family} {alpha} {resolution} {mode} at {precision}", tmp_path)


# --- blob and input validation -------------------------------------------------------------------
HEADER = struct.Struct("<4sIIIQII16s16s")


def _reheader(payload: bytes, plan_hash: bytes) -> bytes:
    """A well-formed blob (sizes, checksum) around `payload`."""
    return HEADER.pack(b"MGWB", 1, HEADER.size, 0, len(payload), zlib.crc32(payload), 0, plan_hash, b"\0" * 16) + payload


def _expect_error(engine: BuiltEngine, tmp_path: Path, blob: bytes | None, x: np.ndarray | None, *needles: str):
    path = None
    if blob is not None:
        path = tmp_path / "bad.mgw"
        path.write_bytes(blob)
    if x is None:
        g = engine.graph
        x = random_input(g.tensors[g.inputs[0]], 0)
    r = engine.run(x, tmp_path / "run", blob=path, dump=False)
    assert r.returncode == 1, f"exit {r.returncode}, stderr {r.stderr!r}"
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mobilegen_run: "), r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not (tmp_path / "run" / "y.npy").exists()
    return lines[0]


def test_blob_wrong_magic(small_engine, tmp_path):
    blob = bytearray(small_engine.em.blob)
    blob[:4] = b"XXXX"
    _expect_error(small_engine, tmp_path, bytes(blob), None, "InvalidBlob", "magic")


def test_blob_truncated(small_engine, tmp_path):
    blob = small_engine.em.blob
    _expect_error(small_engine, tmp_path, blob[:-16], None, "InvalidBlob", "header says")
    _expect_error(small_engine, tmp_path, blob[:20], None, "InvalidBlob", "shorter than")
    _expect_error(small_engine, tmp_path, b"", None, "InvalidBlob")


def test_blob_wrong_version(small_engine, tmp_path):
    blob = bytearray(small_engine.em.blob)
    blob[4:8] = struct.pack("<I", 2)
    _expect_error(small_engine, tmp_path, bytes(blob), None, "InvalidBlob", "version 2")


def test_blob_flipped_payload_byte(small_engine, tmp_path):
    blob = bytearray(small_engine.em.blob)
    blob[HEADER.size + len(blob[HEADER.size:]) // 2] ^= 0x01
    _expect_error(small_engine, tmp_path, bytes(blob), None, "InvalidBlob", "checksum")


def test_blob_of_another_model(small_engine, tmp_path):
    other = build_engine(_one_op_model("depthwise", dict(h=7, w=9, c=13, k=3, stride=2, padding="same"), "int8"))
    _expect_error(small_engine, tmp_path, other.em.blob, None, "InvalidBlob", "plan hash")


def test_blob_refs_outside_payload(small_engine, tmp_path):
    """A consistent header around a shortened payload: the kernels' BlobRefs no longer fit."""
    blob = small_engine.em.blob
    plan_hash = blob[32:48]
    payload = blob[HEADER.size:]
    _expect_error(small_engine, tmp_path, _reheader(payload[: len(payload) // 2], plan_hash), None,
                  "InvalidBlob", "refers to bytes")


def test_wrong_input_shape_and_type(small_engine, tmp_path):
    g = small_engine.graph
    t = g.tensors[g.inputs[0]]
    bad_shape = np.zeros((1, t.shape[1] + 1, *t.shape[2:]), np.float32)
    msg = _expect_error(small_engine, tmp_path, None, bad_shape, "expected float32[1, 7, 9, 3]")
    assert f"float32[1, {t.shape[1] + 1}, 9, 3]" in msg
    _expect_error(small_engine, tmp_path / "dtype", None, np.zeros(t.shape, np.int8), "int8[1, 7, 9, 3]",
                  "expected float32[1, 7, 9, 3]")


def test_bad_arguments(small_engine, tmp_path):
    x = random_input(small_engine.graph.tensors[small_engine.graph.inputs[0]], 0)
    np.save(tmp_path / "x.npy", x)
    base = [str(small_engine.exe), "--blob", str(small_engine.blob), "--input", str(tmp_path / "x.npy"),
            "--output", str(tmp_path / "y.npy")]
    for extra, needle in ((["--backend", "npu"], "--backend npu"), (["--repeat", "0"], "--repeat 0"),
                          (["--bogus", "1"], "unknown option")):
        r = subprocess.run(base + extra, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        assert r.returncode == 1 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    r = subprocess.run(base[:4] + [str(tmp_path / "junk.npy")] + base[5:], capture_output=True, text=True)
    assert r.returncode == 1 and "not a .npy file" in r.stderr
