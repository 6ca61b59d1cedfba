"""The iOS engine's Metal backend (templates/cpp/engine/metal_backend.cpp), run on the host: the
iOS engine tree (engine_files(target="ios")) built with clang-19 as the host proof (CMake's
MOBILEGEN_GPU=METAL_HOST: the backend over metal_host/host_device.cpp, the generated kernels
compiled as C++ against metal_shim.h), run through the host runner (`mobilegen_run --backend gpu
--dump-dir`) and compared with the simulator on every tensor: integers bit for bit, floats within
harness.ENGINE_FLOAT_RTOL (the tolerance test_glsl uses).

As in test_engine_cpu, the model-independent sources (engine core, Metal backend, host executor)
are compiled once per revision into libmobilegen_core.a and each model's model_plan.cpp and
metal_kernels_host.cpp are linked against it; builds are cached under tests/.model_cache/engine/.

Some tests drive the backend with a handwritten kernel (PAD) instead of mobilegen.render.metal's,
so the backend's own decisions (threadgroup shrinking, Softmax's refusal, slots, dumps, the
pipeline cache) are tested independently of the generated kernels.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.harness import ENGINE_FLOAT_RTOL, random_input, require, require_tool, tensor_mismatches

CLANG = "clang++-19"
CLANG_PACKAGE = "clang-19"
RUN_TIMEOUT_S = 300
MAX_THREADS_KNOB = "MOBILEGEN_METAL_HOST_MAX_THREADS"


def require_clang() -> str:
    require_tool("cmake", "cmake")
    return require_tool(CLANG, CLANG_PACKAGE)


# --------------------------------------------------------------------------------------------------
# Building the host proof
# --------------------------------------------------------------------------------------------------
def _digest(files: dict[str, str]) -> str:
    h = hashlib.sha256()
    for rel, text in sorted(files.items()):
        h.update(rel.encode() + b"\0" + text.encode() + b"\0")
    return h.hexdigest()[:16]


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def metal_core_library() -> Path:
    """libmobilegen_core.a of the iOS tree (core + Metal backend + host executor), built once per
    revision of its sources."""
    from mobilegen.targets.engine_tree import static_files
    from tests.test_engine_cpu import CACHE, _cmake, _locked

    clang = require_clang()
    files = static_files("ios")
    d = CACHE / f"metal-core-{_digest(files)}"
    lib = d / "build" / "libmobilegen_core.a"
    with _locked(d):
        if not lib.exists():
            shutil.rmtree(d, ignore_errors=True)
            _write(d / "src", files)
            # The core target compiles neither; CMake only needs the files to exist.
            for rel in ("engine/model_plan.cpp", "metal_host/metal_kernels_host.cpp"):
                (d / "src" / rel).write_text("// placeholder: not compiled for mobilegen_core\n")
            _cmake(d / "src", d / "build", f"-DCMAKE_CXX_COMPILER={clang}", target=("mobilegen_core", "mobilegen_runner"))
    return lib


@dataclass
class MetalEngine:
    dir: Path
    exe: Path
    blob: Path
    em: object
    plan: object
    files: dict

    @property
    def graph(self):
        return self.plan.graph

    def run(self, x, work: Path, backend: str = "gpu", dump: bool = True, max_threads: int | None = None,
            cache_dir: Path | None = None, extra=()) -> subprocess.CompletedProcess:
        import os

        work.mkdir(parents=True, exist_ok=True)
        xs = x if isinstance(x, list) else [x]
        cmd = [str(self.exe), "--blob", str(self.blob)]
        for n, xi in enumerate(xs):
            np.save(work / f"x{n}.npy", xi)
            cmd += ["--input", str(work / f"x{n}.npy")]
        for n in range(len(self.em.outputs)):
            cmd += ["--output", str(work / f"y{n}.npy")]
        cmd += ["--backend", backend, *extra]
        if dump:
            cmd += ["--dump-dir", str(work / "dump")]
        if cache_dir is not None:
            cmd += ["--cache-dir", str(cache_dir)]
        env = dict(os.environ)
        env.pop(MAX_THREADS_KNOB, None)
        if max_threads is not None:
            env[MAX_THREADS_KNOB] = str(max_threads)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=env)


def build_metal_engine(model: bytes, name: str = "model.tflite", precision: str | None = None,
                       metal_module=None, edit=None) -> MetalEngine:
    """The iOS engine tree of `model` built as the host proof against the cached core.
    `metal_module`: a stand-in for mobilegen.render.metal (handwritten kernels); `edit(files)`:
    changes to the generated files before the build (seeded bugs)."""
    from mobilegen.export import export_plan, plan_for_precision
    from mobilegen.targets.engine_tree import engine_files
    from mobilegen.tflite.reader import read_model
    from tests.test_engine_cpu import CACHE, _cmake, _locked, prebuilt_args

    clang = require_clang()
    plan, precision = plan_for_precision(read_model(model), precision)
    em = export_plan(plan, precision)
    core = metal_core_library()
    saved = sys.modules.get("mobilegen.render.metal")
    if metal_module is not None:
        sys.modules["mobilegen.render.metal"] = metal_module
    try:
        files = engine_files(em, name, model, target="ios")
    finally:
        if metal_module is not None:
            if saved is None:
                sys.modules.pop("mobilegen.render.metal", None)
            else:
                sys.modules["mobilegen.render.metal"] = saved
    if edit is not None:
        edit(files)
    # -Werror: the generated sources (plan tables, kernels as C++) build without a warning under the
    # engine's -Wall -Wextra, as tests/test_metal_kernels.py demands of the demo and MobileNets.
    flags = "-DCMAKE_CXX_FLAGS=-Werror"
    key = hashlib.sha256(model + precision.encode() + _digest(files).encode() + str(core).encode() + flags.encode()).hexdigest()[:20]
    d = CACHE / f"metal-model-{key}"
    with _locked(d):
        exe = d / "build" / "mobilegen_run"
        if not exe.exists():
            shutil.rmtree(d, ignore_errors=True)
            _write(d / "src", files)
            _cmake(d / "src", d / "build", f"-DCMAKE_CXX_COMPILER={clang}", flags, *prebuilt_args(core, files),
                   target="mobilegen_run")
        (d / "model.mgw").write_bytes(em.blob)
    return MetalEngine(d, d / "build" / "mobilegen_run", d / "model.mgw", em, plan, files)


def run_gpu(engine: MetalEngine, x, work: Path, **kw) -> dict:
    r = engine.run(x, work, **kw)
    assert r.returncode == 0, f"mobilegen_run --backend gpu failed ({r.returncode}): {r.stderr}"
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["backend"] == "gpu", info
    return info


def compare_with_simulator(engine: MetalEngine, label: str, work: Path, seeds=(0, 1), **kw) -> dict:
    from mobilegen.dump import read_dump
    from mobilegen.sim.runner import Simulator

    g = engine.graph
    sim = Simulator(engine.plan)
    info = {}
    for seed in seeds:
        xs = [random_input(g.tensors[i], seed + 7 * n) for n, i in enumerate(g.inputs)]
        want = sim.run(xs)
        info = run_gpu(engine, xs, work / f"seed{seed}", **kw)
        records, got = read_dump(work / f"seed{seed}" / "dump")
        listed = [rec["index"] for rec in records]
        assert listed == [i for i in g.written_tensors() if i not in engine.em.folded], label
        if engine.em.precision == "fp16":
            _check_fp16(engine, got, xs, want, f"{label} seed {seed}")
        else:
            where = {i: f"{label} seed {seed}: tensor {i} {g.tensors[i].name!r}" for i in listed}
            problems = tensor_mismatches(got, want, where, ("Metal host", "simulator"), ENGINE_FLOAT_RTOL)
            assert not problems, "\n".join(problems)
        for n, i in enumerate(g.outputs):
            np.testing.assert_array_equal(np.load(work / f"seed{seed}" / f"y{n}.npy"), got[i])
    return info


def _check_fp16(engine: MetalEngine, got: dict, xs: list, want: dict, label: str) -> None:
    """Precision fp16 as test_fp16 holds the GLES and CPU backends to it: kernel by kernel (each
    kernel on the engine's own inputs) within FP16_RTOL, 8-bit tensors exact; a whole one-op run
    every tensor within FP16_RTOL (8-bit within 1 LSB); a whole multi-layer run within
    WHOLE_RUN_RTOL."""
    from mobilegen.numerics.fp16 import round_to_half
    from tests.test_fp16 import _check, check_whole_run, kernel_by_kernel

    g = engine.graph
    got = dict(got)
    for i, x in zip(g.inputs, xs):
        got[i] = round_to_half(x) if x.dtype == np.float32 else x
    kernel_by_kernel(engine, got, label)
    if len(engine.em.kernels) > 4:
        check_whole_run(engine, got, xs[0], label)
    else:
        problems = [_check(f"{label}: tensor {i}", got[i], want[i], 1) for i in got if i in want]
        assert not any(problems), "\n".join(p for p in problems if p)


def _one_op_model(name: str, kwargs: dict, mode: str) -> bytes:
    from tests.test_engine_cpu import _one_op_model as build

    return build(name, kwargs, mode)


# --------------------------------------------------------------------------------------------------
# A handwritten kernel: PAD of 8-bit tensors, rendered for the plan's Pad kernels only
# --------------------------------------------------------------------------------------------------
PAD_KERNEL = """
// PAD of an 8-bit PHWC4 tensor: one invocation per output cell.
kernel void pad_{i}(device uint* out_data [[buffer(0)]], const device uint* inp_data [[buffer(1)]],
                    uint3 gid [[thread_position_in_grid]]) {{
  if (gid.x >= {out_w}u || gid.y >= {out_h}u || gid.z >= {slices}u) return;
  int iy = int(gid.y) - {top};
  int ix = int(gid.x) - {left};
  bool inside = iy >= 0 && iy < {inp_h} && ix >= 0 && ix < {inp_w};
  out_data[(gid.z * {out_h}u + gid.y) * {out_w}u + gid.x] =
      inside ? inp_data[(int(gid.z) * {inp_h} + iy) * {inp_w} + ix] : {value}u;
}}
"""


# The same PAD through threadgroup memory: each invocation computes its cell, and after a barrier
# writes its neighbour's (invocation l ^ 1), then clears its slot after a second barrier. Right
# only when every invocation of a group runs concurrently with a working barrier, and one group at
# a time (the arrays are shared): run one after another, invocation l + 1 finds l's slot cleared.
PAD_TG_KERNEL = """
kernel void pad_{i}(device uint* out_data [[buffer(0)]], const device uint* inp_data [[buffer(1)]],
                    uint3 gid [[thread_position_in_grid]], uint3 lid [[thread_position_in_threadgroup]]) {{
  threadgroup uint value[{n}];
  threadgroup int cell[{n}];
  uint l = lid.x + {tx}u * (lid.y + {ty}u * lid.z);
  value[l] = 0u;
  cell[l] = -1;
  if (gid.x < {out_w}u && gid.y < {out_h}u && gid.z < {slices}u) {{
    int iy = int(gid.y) - {top};
    int ix = int(gid.x) - {left};
    bool inside = iy >= 0 && iy < {inp_h} && ix >= 0 && ix < {inp_w};
    value[l] = inside ? inp_data[(int(gid.z) * {inp_h} + iy) * {inp_w} + ix] : {value}u;
    cell[l] = int((gid.z * {out_h}u + gid.y) * {out_w}u + gid.x);
  }}
  threadgroup_barrier(mem_flags::mem_threadgroup);
  uint o = l ^ 1u;
  if (cell[o] >= 0) out_data[cell[o]] = value[o];
  threadgroup_barrier(mem_flags::mem_threadgroup);
  cell[l] = -1;  // read by nobody in a right execution; an invocation running late finds nothing
}}
"""


def handwritten_pad_module(threads=(4, 4, 4), threadgroup: bool = False) -> types.ModuleType:
    """A stand-in for mobilegen.render.metal that renders the plan's Pad kernels by hand, with
    `threads` per threadgroup (`threadgroup`: the variant through threadgroup memory)."""
    from mobilegen.render.engine_plan import Dispatch, Shader

    @dataclass
    class MetalKernels:
        library: str
        shaders: list
        dispatch: list
        host_table: str

    def render_metal(em):
        library = ["// handwritten test library (tests/test_metal_engine.py)\n"]
        shaders, dispatch, entries = [], [], []
        for k in em.kernels:
            assert k.type == "Pad", "the handwritten library has PAD only"
            inp, out = em.tensors[k.inputs[0]], em.tensors[k.output]
            i = len(shaders)
            slices = (out.c + 3) // 4
            value = (k.params["value"] & 0xFF) * 0x01010101
            source = PAD_TG_KERNEL if threadgroup else PAD_KERNEL
            library.append(source.format(i=i, out_w=out.w, out_h=out.h, slices=slices, top=k.params["pad_top"],
                                         left=k.params["pad_left"], inp_h=inp.h, inp_w=inp.w, value=value,
                                         n=threads[0] * threads[1] * threads[2], tx=threads[0], ty=threads[1]))
            shaders.append(Shader(f"pad_{i}", ""))
            grid = (out.w, out.h, slices)
            groups = tuple(-(-n // t) for n, t in zip(grid, threads))
            dispatch.append(Dispatch(i, groups, tuple(threads)))
            entries.append(f"pad_{i}")
        # Its own few lines of shim, so these tests do not depend on metal_shim.h either.
        host = ["#include <cstdint>", '#include "host_kernels.h"', "typedef unsigned int uint;",
                "typedef uint uint3 __attribute__((ext_vector_type(3)));", "#define kernel", "#define device",
                "#define threadgroup static", "enum class mem_flags { mem_threadgroup = 2 };",
                "inline void threadgroup_barrier(mem_flags) { mobilegen::metal_host::threadgroup_barrier_wait(); }",
                '#include "kernels.metal"', "", "namespace {", "using mobilegen::metal_host::ThreadIds;"]
        for name in entries:
            lid = ", uint3{t[0], t[1], t[2]}" if threadgroup else ""
            host.append(f"void entry_{name}(void* const* b, const ThreadIds& ids) {{\n"
                        f"  const uint* g = ids.thread_position_in_grid;\n"
                        f"  const uint* t = ids.thread_position_in_threadgroup;\n  (void)t;\n"
                        f"  {name}(static_cast<uint*>(b[0]), static_cast<const uint*>(b[1]), uint3{{g[0], g[1], g[2]}}{lid});\n}}")
        host += ["}  // namespace", "", "namespace mobilegen {", "namespace metal_host {",
                 "const HostKernel kHostKernels[] = {"]
        host += [f'    {{"{name}", entry_{name}, {"true" if threadgroup else "false"}}},' for name in entries]
        host += ["};", f"const int kNumHostKernels = {len(entries)};", "}  // namespace metal_host",
                 "}  // namespace mobilegen", ""]
        return MetalKernels("".join(library), shaders, dispatch, "\n".join(host))

    module = types.ModuleType("mobilegen.render.metal")
    module.render_metal = render_metal
    return module


PAD_CASE = dict(h=5, w=7, c=3)


def _pad_engine(threads=(4, 4, 4), edit=None, threadgroup: bool = False) -> MetalEngine:
    model = _one_op_model("pad", PAD_CASE, "int8_io")
    return build_metal_engine(model, metal_module=handwritten_pad_module(threads, threadgroup), edit=edit)


def _full_build(engine: MetalEngine, files: dict, root: Path) -> MetalEngine:
    """`files` built without the prebuilt core (for seeded bugs in the core's sources)."""
    from tests.test_engine_cpu import _cmake

    _write(root / "src", files)
    _cmake(root / "src", root / "build", f"-DCMAKE_CXX_COMPILER={require_clang()}", target="mobilegen_run")
    return MetalEngine(root, root / "build" / "mobilegen_run", engine.blob, engine.em, engine.plan, files)


# --------------------------------------------------------------------------------------------------
# The backend with the handwritten kernel
# --------------------------------------------------------------------------------------------------
def test_engine_tree_ios_layout():
    """The iOS tree has the Metal backend and the host proof, no GLES; the Android tree no Metal."""
    from mobilegen.targets.engine_tree import static_files

    ios, android = static_files("ios"), static_files("android")
    assert "engine/gles_backend.cpp" not in ios and "engine/gles_backend.cpp" in android
    for rel in ("engine/metal_api.h", "engine/metal_backend.cpp", "metal_host/host_device.cpp",
                "metal_host/host_kernels.h", "metal_host/metal_shim.h", "engine/gpu_layout.h", "CMakeLists.txt",
                "host/mobilegen_run.cpp"):
        assert rel in ios, rel
    assert not [rel for rel in android if "metal" in rel], android.keys()
    assert {rel for rel in ios if not rel.startswith("metal_host/")} - {"engine/metal_api.h", "engine/metal_backend.cpp"} \
        == set(android) - {"engine/gles_backend.cpp"}


def test_handwritten_kernel_matches_simulator(tmp_path):
    engine = _pad_engine()
    plan_cpp = engine.files["engine/model_plan.cpp"]
    assert '{"pad_0", nullptr}' in plan_cpp and "kernel void pad_0(" in plan_cpp
    assert engine.files["metal_host/kernels.metal"] in plan_cpp
    compare_with_simulator(engine, "pad (handwritten kernel)", tmp_path)


def test_threadgroup_shrinks_to_the_pipeline_limit(tmp_path):
    """A pipeline allowing fewer threads than the plan's 64: the backend halves the group and grows
    the grid (the same output); the host executor fails a dispatch over the limit, so a backend
    that did not shrink would fail here."""
    engine = _pad_engine((4, 4, 4))
    compare_with_simulator(engine, "pad at 8 threads per group", tmp_path / "8", seeds=(0,), max_threads=8)
    compare_with_simulator(engine, "pad at 1 thread per group", tmp_path / "1", seeds=(0,), max_threads=1)


def test_host_executor_rejects_oversized_threadgroups(tmp_path):
    """Seeded bug: the backend's shrinking disabled; the host executor (like Metal's validation)
    fails the dispatch, and --backend gpu reports it."""
    def no_shrink(files):
        src = files["engine/metal_backend.cpp"]
        guard = "    if (total <= max) return Status::Ok;\n"
        assert src.count(guard) == 1
        files["engine/metal_backend.cpp"] = src.replace(guard, "    if (total <= max || true) return Status::Ok;\n")

    # The core library holds metal_backend.cpp: build this one without it.
    engine = _pad_engine((4, 4, 4))
    files = dict(engine.files)
    no_shrink(files)
    seeded = _full_build(engine, files, tmp_path)
    g = engine.graph
    x = random_input(g.tensors[g.inputs[0]], 0)
    r = seeded.run(x, tmp_path / "run", max_threads=8)
    assert r.returncode != 0 and "GpuError" in r.stderr and "exceed maxTotalThreadsPerThreadgroup 8" in r.stderr, r.stderr
    assert seeded.run(x, tmp_path / "ok").returncode == 0  # at the default limit it fits


def test_threadgroup_memory_and_barriers_on_the_host_executor(tmp_path):
    """A kernel that exchanges values through threadgroup memory across a barrier is right on the
    host executor; seeded bug: an executor that runs such a kernel like the others (invocations
    one after another, the barrier a no-op) gets it wrong, and the comparison says so."""
    engine = _pad_engine((4, 4, 4), threadgroup=True)
    assert '{"pad_0", entry_pad_0, true}' in engine.files["metal_host/metal_kernels_host.cpp"]
    compare_with_simulator(engine, "pad through threadgroup memory", tmp_path / "ok")
    files = dict(engine.files)
    choice = "    if (c.kernel->uses_threadgroup_memory) {\n"
    assert files["metal_host/host_device.cpp"].count(choice) == 1
    files["metal_host/host_device.cpp"] = files["metal_host/host_device.cpp"].replace(choice, "    if (false) {\n")
    seeded = _full_build(engine, files, tmp_path / "seeded")
    with pytest.raises(AssertionError, match="pad through threadgroup memory"):
        compare_with_simulator(seeded, "seeded: pad through threadgroup memory", tmp_path / "bad", seeds=(0,))


def test_pipeline_cache(tmp_path):
    """--cache-dir: the first start writes the binary archive, the second finds every pipeline in
    it and writes nothing; both compute the same."""
    engine = _pad_engine()
    g = engine.graph
    x = random_input(g.tensors[g.inputs[0]], 0)
    cache = tmp_path / "cache"
    cache.mkdir()
    run_gpu(engine, x, tmp_path / "cold", cache_dir=cache, dump=False)
    archives = sorted(cache.glob("*.metalar"))
    assert len(archives) == 1 and "pad_0" in archives[0].read_text()
    stamp = archives[0].stat().st_mtime_ns
    run_gpu(engine, x, tmp_path / "warm", cache_dir=cache, dump=False)
    assert archives[0].stat().st_mtime_ns == stamp, "a warm start rewrote the archive"
    np.testing.assert_array_equal(np.load(tmp_path / "warm" / "y0.npy"), np.load(tmp_path / "cold" / "y0.npy"))
    # Best effort: a cache directory that cannot be written is no error.
    run_gpu(engine, x, tmp_path / "missing", cache_dir=tmp_path / "no" / "cache", dump=False)


def test_runs_allocate_nothing(tmp_path):
    """The runner counts C++ allocations of the warm runs (after the first): none on the Metal backend."""
    engine = _pad_engine()
    g = engine.graph
    info = run_gpu(engine, random_input(g.tensors[g.inputs[0]], 0), tmp_path, dump=False, extra=("--repeat", "5"))
    assert info["runs"] == 5 and info["allocations_after_first_run"] == 0, info


# --------------------------------------------------------------------------------------------------
# The Objective-C++ adapter over real Metal
# --------------------------------------------------------------------------------------------------
ADAPTER = Path(__file__).resolve().parents[1] / "templates" / "ios" / "Sources" / "{{module}}" / "Metal" / "MGMetalDevice.mm"


def _adapter_tree(root: Path, text: str | None = None) -> Path:
    """MGMetalDevice.mm where an iOS project has it, next to the engine's metal_api.h."""
    from mobilegen.targets.engine_tree import static_files

    module = root / "Sources" / "MobilegenClassifier"
    _write(module / "cpp", {"engine/metal_api.h": static_files("ios")["engine/metal_api.h"]})
    (module / "Metal").mkdir(parents=True, exist_ok=True)
    adapter = module / "Metal" / "MGMetalDevice.mm"
    adapter.write_text(text if text is not None else ADAPTER.read_text())
    return adapter


def test_metal_adapter_syntax_checks(tmp_path):
    from tests.objc import syntax_check

    syntax_check([_adapter_tree(tmp_path)], flags=("-Wextra", "-Wconversion", "-Wshadow", "-Wnullable-to-nonnull-conversion"))


def test_metal_adapter_check_catches_a_wrong_call(tmp_path):
    """The stub Metal header is strict enough to catch a misspelt selector (seeded)."""
    from tests.objc import run_clang

    text = ADAPTER.read_text().replace("memoryBarrierWithScope:", "memoryBarrierWithScopes:")
    r = run_clang([_adapter_tree(tmp_path, text)])
    assert r.returncode != 0 and "memoryBarrierWithScopes" in r.stderr, r.stderr


def test_metal_adapter_stays_thin():
    """The adapter forwards; decisions live in metal_backend.cpp (which the host proof runs)."""
    text = ADAPTER.read_text()
    code = [ln for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("//")]
    assert len(code) < 260, len(code)
    for decision in ("KernelType", "ModelPlan", "maxTotalThreadsPerThreadgroup >", "kBindings"):
        assert decision not in text, decision
    assert "MTLMathModeSafe" in text and "fastMathEnabled = NO" in text


# --------------------------------------------------------------------------------------------------
# `mobilegen verify` on an iOS project
# --------------------------------------------------------------------------------------------------
def _ios_project(root: Path, engine: MetalEngine, module: str = "MobilegenClassifier") -> Path:
    """The engine half of an iOS project as `generate --target ios` lays it out."""
    project = root / "ios"
    _write(project / "Sources" / module / "cpp", engine.files)
    (project / "Sources" / module / "Resources").mkdir(parents=True, exist_ok=True)
    (project / "Sources" / module / "Resources" / "model.mgw").write_bytes(engine.blob.read_bytes())
    return project


def test_verify_detects_an_ios_project(tmp_path):
    from typer.testing import CliRunner

    from mobilegen.cli.app import app
    from mobilegen.dump import read_dump
    from mobilegen.sim.runner import Simulator
    from mobilegen.verify.host import detect_project

    engine = _pad_engine()
    project = _ios_project(tmp_path, engine)
    layout = detect_project(project)
    assert layout.target == "ios" and layout.blob.name == "model.mgw"
    g = engine.graph
    x = random_input(g.tensors[g.inputs[0]], 3)
    np.save(tmp_path / "x.npy", x)
    r = CliRunner().invoke(app, ["verify", str(project), "--input", str(tmp_path / "x.npy"), "--output",
                                 str(tmp_path / "y.npy"), "--dump-dir", str(tmp_path / "dump"), "--repeat", "1"])
    assert r.exit_code == 0, r.output
    assert "Metal backend" in r.output and "gpu backend on host" in r.output, r.output
    want = Simulator(engine.plan).run([x])
    records, got = read_dump(tmp_path / "dump")
    where = {rec["index"]: f"verify: tensor {rec['index']}" for rec in records}
    assert not tensor_mismatches(got, want, where, ("verify", "simulator"), ENGINE_FLOAT_RTOL)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), want[g.outputs[0]])
    # --arch: the host proof is built for this machine only; one line.
    r = CliRunner().invoke(app, ["verify", str(project), "--arch", "aarch64", "--backend", "cpu", "--input",
                                 str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")])
    assert r.exit_code != 0 and len(r.output.strip().splitlines()) == 1 and "--arch host" in r.output, r.output


def test_verify_without_clang_is_one_line(tmp_path, monkeypatch):
    import mobilegen.verify.host as host
    from mobilegen.errors import UserInputError

    real = shutil.which
    monkeypatch.setattr(host.shutil, "which", lambda name: None if name == CLANG else real(name))
    with pytest.raises(UserInputError) as e:
        host.require_tools("host", "ios")
    assert "clang++-19 not found" in str(e.value) and "apt-get install clang-19" in str(e.value)
    assert "\n" not in str(e.value)


def test_verify_names_what_a_project_lacks(tmp_path):
    from mobilegen.errors import UserInputError
    from mobilegen.verify.host import detect_project

    with pytest.raises(UserInputError, match="neither"):
        detect_project(tmp_path)
    (tmp_path / "Sources" / "M" / "cpp").mkdir(parents=True)
    (tmp_path / "Sources" / "M" / "cpp" / "CMakeLists.txt").write_text("")
    with pytest.raises(UserInputError, match="Resources/model.mgw"):
        detect_project(tmp_path)


# --------------------------------------------------------------------------------------------------
# The generated kernels (mobilegen.render.metal) through the backend, against the simulator
# --------------------------------------------------------------------------------------------------
DEMO_MODEL = Path(__file__).resolve().parents[1] / "examples" / "demo" / "model.tflite"
CONV_CASE = dict(h=7, w=9, cin=3, cout=13, k=3, stride=2, padding="same")
SOFTMAX_CASE = dict(in_features=37, units=11)


def _build(model: bytes, precision: str | None = None) -> MetalEngine:
    return build_metal_engine(model, precision=precision)


def test_small_model_on_metal(tmp_path):
    engine = _build(_one_op_model("conv2d", CONV_CASE, "int8"))
    compare_with_simulator(engine, "conv2d int8", tmp_path)


def test_softmax_threadgroup_kernel_on_metal(tmp_path):
    """FULLY_CONNECTED then SOFTMAX, whose kernel reduces in threadgroup memory with barriers: the
    host executor runs its invocations concurrently."""
    engine = _build(_one_op_model("dense_softmax", SOFTMAX_CASE, "int8"))
    table = engine.files["metal_host/metal_kernels_host.cpp"]
    assert '{"softmax", softmax_entry, true}' in table, "the softmax kernel no longer uses threadgroup memory"
    compare_with_simulator(engine, "dense_softmax int8", tmp_path, seeds=(0, 1, 2, 3))


def test_softmax_refuses_a_smaller_threadgroup_and_auto_falls_back(tmp_path):
    """A pipeline limit below Softmax's threadgroup (its reduction array is sized for it): --backend
    gpu fails with GpuError naming the kernel and the limit; --backend auto runs on the CPU and
    reports why (Engine::backend_info's fallback reason, printed by the runner)."""
    from mobilegen.sim.runner import Simulator

    engine = _build(_one_op_model("dense_softmax", SOFTMAX_CASE, "int8"))
    softmax = next(i for i, k in enumerate(engine.em.kernels) if k.type == "Softmax")
    threads = int(np.prod(_plan_threads(engine, softmax)))
    limit = threads // 2
    g = engine.graph
    x = random_input(g.tensors[g.inputs[0]], 0)
    gpu = engine.run(x, tmp_path / "gpu", dump=False, max_threads=limit)
    assert gpu.returncode != 0 and "GpuError" in gpu.stderr, gpu.stderr
    assert f"(Softmax) needs {threads} threads per threadgroup" in gpu.stderr and f"allows {limit}" in gpu.stderr, gpu.stderr
    auto = engine.run(x, tmp_path / "auto", backend="auto", dump=False, max_threads=limit)
    assert auto.returncode == 0, auto.stderr
    assert json.loads(auto.stdout.strip().splitlines()[-1])["backend"] == "cpu"
    assert "running on the CPU" in auto.stderr and "(Softmax) needs" in auto.stderr and "host executor" in auto.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "auto" / "y0.npy"), Simulator(engine.plan).run([x])[g.outputs[0]])


def _plan_threads(engine: MetalEngine, kernel: int) -> tuple[int, int, int]:
    """Kernel `kernel`'s threads per threadgroup as model_plan.cpp carries them."""
    from mobilegen.render.metal import render_metal

    return tuple(render_metal(engine.em).dispatch[kernel].threads)


def test_generated_kernels_shrink_to_the_pipeline_limit(tmp_path):
    """Every kernel but Softmax at a limit of 4 threads per threadgroup: the same numbers."""
    engine = _build(_one_op_model("conv2d", CONV_CASE, "int8"))
    compare_with_simulator(engine, "conv2d int8 at 4 threads per group", tmp_path, seeds=(0,), max_threads=4)


@pytest.mark.parametrize("precision", ["int8", "fp32", "fp16"])
def test_demo_model_on_metal(precision, tmp_path):
    engine = _build(DEMO_MODEL.read_bytes(), precision)
    compare_with_simulator(engine, f"demo model at {precision}", tmp_path, seeds=(0,))


def test_demo_model_runs_allocate_nothing(tmp_path):
    engine = _build(DEMO_MODEL.read_bytes())
    g = engine.graph
    info = run_gpu(engine, random_input(g.tensors[g.inputs[0]], 0), tmp_path, dump=False, extra=("--repeat", "3"))
    assert info["allocations_after_first_run"] == 0, info


def _sweep():
    """Every op case of test_glsl's sweep through each Metal kernel path: the integer kernels (int8,
    int8 I/O, legacy uint8), the fp32 kernels (float32) and fp16 storage (float32 and int8 models at
    fp16). Float16-weights models and int8 models at fp32 run the same float kernels as float32
    ones (their differences are in the plan and the export, which test_glsl / test_fp16 sweep)."""
    from tests.test_ops import CONV_CASES, DEPTHWISE_CASES, OTHER_CASES

    runs = [("int8", None), ("int8_io", None), ("uint8", None), ("float32", None), ("float32", "fp16"), ("int8", "fp16")]
    cases = [("conv2d", k) for k in CONV_CASES] + [("depthwise", k) for k in DEPTHWISE_CASES] + list(OTHER_CASES)
    params = []
    for name, kwargs in cases:
        for mode, precision in runs:
            ident = f"{name}-{'-'.join(str(v) for v in kwargs.values())}-{mode}" + (f"-{precision}" if precision else "")
            params.append(pytest.param(name, kwargs, mode, precision, id=ident))
    return params


@pytest.mark.slow
@pytest.mark.parametrize("name,kwargs,mode,precision", _sweep())
def test_one_op_models_on_metal(name, kwargs, mode, precision, tmp_path):
    from mobilegen.render.metal import render_metal
    from tests.test_metal_kernels import check_structure

    engine = _build(_one_op_model(name, kwargs, mode), precision)
    check_structure(engine.em, render_metal(engine.em), f"{name}({kwargs}) [{mode}] at {precision}")
    compare_with_simulator(engine, f"{name}({kwargs}) [{mode}] at {precision}", tmp_path)


METAL_MOBILENETS = [
    # family, alpha, resolution, classes, mode, engine precision (None: the model's own)
    ("v1", 0.25, 128, 10, "int8", None),
    ("v1", 0.5, 96, 7, "int8", None),
    ("v2", 0.35, 96, 10, "int8", None),
    ("v2", 0.5, 128, 5, "int8", None),
    ("v2", 0.35, 96, 10, "uint8", None),
    ("v2", 0.35, 96, 10, "float32", None),
    ("v1", 0.25, 128, 10, "int8", "fp16"),
]


@pytest.mark.slow
@pytest.mark.parametrize("family,alpha,resolution,classes,mode,precision", METAL_MOBILENETS, ids=str)
def test_mobilenet_on_metal(family, alpha, resolution, classes, mode, precision, tmp_path):
    from tests.test_mobilenet import mobilenet_tflite

    engine = _build(mobilenet_tflite(family, alpha, resolution, classes, mode), precision)
    compare_with_simulator(engine, f"MobileNet {family} a{alpha} {resolution} {classes} classes {mode} at {precision}",
                           tmp_path, seeds=(0,))


def test_generate_ios_then_verify_is_bit_exact(tmp_path):
    """The whole path a user takes: `generate --target ios`, then `verify` (the host proof of the
    project's own engine tree, built by CMake with clang++-19): every tensor bit for bit with the
    simulator, through the engine's Metal backend."""
    from typer.testing import CliRunner

    from mobilegen.cli.app import app
    from mobilegen.dump import read_dump
    from mobilegen.export import plan_for_precision
    from mobilegen.sim.runner import Simulator
    from mobilegen.tflite.reader import read_model

    require_clang()
    runner = CliRunner()
    r = runner.invoke(app, ["generate", str(DEMO_MODEL), "--target", "ios", "--out", str(tmp_path / "p")])
    assert r.exit_code == 0, r.output
    plan, _ = plan_for_precision(read_model(DEMO_MODEL.read_bytes()), None)
    g = plan.graph
    x = random_input(g.tensors[g.inputs[0]], 5)
    np.save(tmp_path / "x.npy", x)
    r = runner.invoke(app, ["verify", str(tmp_path / "p"), "--input", str(tmp_path / "x.npy"), "--output",
                            str(tmp_path / "y.npy"), "--dump-dir", str(tmp_path / "dump"), "--repeat", "1"])
    assert r.exit_code == 0, r.output
    want = Simulator(plan).run([x])
    records, got = read_dump(tmp_path / "dump")
    assert [rec["index"] for rec in records] == g.written_tensors()
    where = {rec["index"]: f"demo via verify: tensor {rec['index']}" for rec in records}
    problems = tensor_mismatches(got, want, where, ("verify", "simulator"), 0.0)
    assert not problems, "\n".join(problems)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), want[g.outputs[0]])


IOS_REFERENCE_MOBILENETS = [
    # family, alpha, resolution, classes: int8 models, through the CLI against LiteRT itself
    ("v1", 0.5, 128, 7),
    ("v2", 0.35, 96, 10),
]


@pytest.mark.slow
@pytest.mark.parametrize("family,alpha,resolution,classes", IOS_REFERENCE_MOBILENETS, ids=str)
def test_generate_ios_then_verify_matches_litert_reference(family, alpha, resolution, classes, tmp_path):
    """The issue's "done when" in one chain, with no simulator in between: `generate --target ios`
    and `verify` (the engine's own Metal backend on the host executor) against LiteRT's
    BUILTIN_REF kernels, bit for bit on every tensor an operator writes."""
    require("ai_edge_litert")
    from typer.testing import CliRunner

    from mobilegen.cli.app import app
    from mobilegen.dump import read_dump
    from mobilegen.tflite.reader import read_model
    from mobilegen.verify.reference import run_reference
    from tests.test_mobilenet import mobilenet_tflite

    require_clang()
    model = mobilenet_tflite(family, alpha, resolution, classes, "int8")
    (tmp_path / "m.tflite").write_bytes(model)
    runner = CliRunner()
    r = runner.invoke(app, ["generate", str(tmp_path / "m.tflite"), "--target", "ios", "--out", str(tmp_path / "p")])
    assert r.exit_code == 0, r.output
    g = read_model(model)
    x = random_input(g.tensors[g.inputs[0]], 3)
    np.save(tmp_path / "x.npy", x)
    r = runner.invoke(app, ["verify", str(tmp_path / "p"), "--input", str(tmp_path / "x.npy"), "--output",
                            str(tmp_path / "y.npy"), "--dump-dir", str(tmp_path / "dump"), "--repeat", "1"])
    assert r.exit_code == 0, r.output
    ref = run_reference(model, x)
    records, got = read_dump(tmp_path / "dump")
    written = [i for i in ref if i not in g.inputs]
    assert set(written) <= set(got), f"tensors missing from the dump: {sorted(set(written) - set(got))}"
    label = f"MobileNet {family} a{alpha} {resolution}px {classes} classes int8 via generate --target ios + verify"
    where = {i: f"{label}: tensor {i} {g.tensors[i].name!r}" for i in written}
    problems = tensor_mismatches(got, ref, where, ("Metal", "BUILTIN_REF"), 0.0)
    assert not problems, "\n".join(problems)
