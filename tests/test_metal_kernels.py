"""The Metal kernels (mobilegen/render/metal.py, templates/kernels/metal): every kernel of the demo
model and of small MobileNets, at every precision the model runs at, renders and its library
compiles without a warning as C++ through the host shim (clang-19 -fsyntax-only of metal_kernels_host.cpp,
the file the host proof builds); the render's structure (one Dispatch per kernel, aliases,
shared kernels, unique names, the host table) and the decisions it shares with GLSL
(kernel_rules: same kernels, names, grids and threads per group on both languages).

Running the kernels (the engine's Metal backend on the host device) is test_metal_engine.py's,
over the whole one-op sweep, whose builds (-Werror) and render structure (check_structure) stand
in for a separate compile of each.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.harness import require_tool
from tests.test_glsl import DEMO_MODEL, engine_model

ROOT = Path(__file__).resolve().parents[1]
SHIM_DIR = ROOT / "templates" / "cpp" / "metal_host"
TIMEOUT_S = 300
MAX_THREADS = 512  # an iPhone's maxTotalThreadsPerThreadgroup at most


def compile_host_table(kernels, work: Path, label: str) -> None:
    """clang-19 -fsyntax-only of the host table over the library, as the host proof compiles it."""
    clang = require_tool("clang-19", "clang-19")
    work.mkdir(parents=True, exist_ok=True)
    (work / "kernels.metal").write_text(kernels.library)
    (work / "metal_kernels_host.cpp").write_text(kernels.host_table)
    cmd = [clang, "-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-attributes",
           "-Wno-unused-parameter", "-ffp-contract=off", "-Xclang", "-ffloat16-excess-precision=none",
           "-I", str(SHIM_DIR), "-x", "c++", str(work / "metal_kernels_host.cpp")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert r.returncode == 0, f"{label}: clang-19 failed:\n{r.stderr[-6000:]}"


def check_structure(em, kernels, label: str) -> None:
    shaders, dispatch = kernels.shaders, kernels.dispatch
    assert len(dispatch) == len(em.kernels), label
    for k, d in zip(em.kernels, dispatch):
        if k.type == "Reshape" and k.alias:
            assert d.shader == -1, (label, d)
            continue
        assert 0 <= d.shader < len(shaders), (label, k.type, d)
        assert all(g >= 1 for g in d.groups) and all(t >= 1 for t in d.threads), (label, k.type, d)
        assert d.threads[0] * d.threads[1] * d.threads[2] <= MAX_THREADS, (label, k.type, d)
    names = [s.name for s in shaders]
    assert len(set(names)) == len(names), f"{label}: kernel names are unique"
    assert all(s.source == "" for s in shaders), "Metal kernels live in the library only"
    for name in names:
        assert kernels.library.count(f"\nkernel void {name}(") == 1, (label, name)
        assert f'{{"{name}", {name}_entry, ' in kernels.host_table, (label, name)
    assert len(re.findall(r"^kernel void ", kernels.library, re.M)) == len(names), label
    assert f"kNumHostKernels = {len(names)};" in kernels.host_table
    # Bodies are unique: kernels that render alike share one function.
    bodies = re.split(r"\n// mobilegen: ", kernels.library)[1:]
    normalized = [re.sub(r"\b" + re.escape(n) + r"\b", "NAME", b) for n, b in zip(names, bodies)]
    assert len(set(normalized)) == len(normalized), f"{label}: identical kernels are shared"


def check_model(model: bytes, label: str, work: Path, precision: str | None = None) -> None:
    from mobilegen.render.metal import render_metal

    em = engine_model(model, precision)
    kernels = render_metal(em)
    check_structure(em, kernels, label)
    compile_host_table(kernels, work, label)


# --------------------------------------------------------------------------------------------------
# Rendering and compiling
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["int8", "fp32", "fp16"])
def test_demo_kernels_compile(precision, tmp_path):
    check_model(DEMO_MODEL.read_bytes(), f"demo {precision}", tmp_path, precision)


# The one-op sweep's kernels: tests/test_metal_engine.py builds (with -Werror) and runs every one of
# them, at every precision, and checks its structure with check_structure.


@pytest.mark.slow
@pytest.mark.parametrize("family,alpha,resolution,mode,precision", [
    ("v1", 0.25, 128, "int8", None), ("v1", 0.25, 128, "uint8", None), ("v1", 0.25, 128, "float32", "fp16"),
    ("v2", 0.35, 96, "int8", None), ("v2", 0.35, 96, "uint8", None), ("v2", 0.35, 96, "int8_io", None),
    ("v2", 0.35, 96, "float32", None), ("v2", 0.35, 96, "int8", "fp32"), ("v2", 0.35, 96, "int8", "fp16"),
], ids=str)
def test_mobilenet_kernels_compile(family, alpha, resolution, mode, precision, tmp_path):
    from tests.test_mobilenet import mobilenet_tflite

    check_model(mobilenet_tflite(family, alpha, resolution, 10, mode), f"MobileNet {family} {mode} {precision}",
                tmp_path, precision)


# --------------------------------------------------------------------------------------------------
# The render itself
# --------------------------------------------------------------------------------------------------
def test_rendering_is_deterministic_and_shared():
    from mobilegen.render.metal import render_metal

    em = engine_model(DEMO_MODEL.read_bytes())
    a, b = render_metal(em), render_metal(em)
    assert a == b
    assert len(a.shaders) < sum(1 for k in em.kernels if not (k.type == "Reshape" and k.alias))
    names = [s.name for s in a.shaders]
    assert "conv2d_3x3_s2" in names and "conv2d_1x1_s1" in names and "depthwise_3x3_s1" in names


@pytest.mark.parametrize("precision", ["int8", "fp32", "fp16"])
def test_same_decisions_as_glsl(precision):
    """kernel_rules decides once for both languages: the same kernels (shared alike), names,
    groups and threads per group."""
    from mobilegen.render.glsl import render_gpu
    from mobilegen.render.metal import render_metal

    em = engine_model(DEMO_MODEL.read_bytes(), precision)
    _, glsl_shaders, glsl_dispatch = render_gpu(em)
    metal = render_metal(em)
    assert metal.dispatch == glsl_dispatch
    assert [s.name for s in metal.shaders] == [s.name for s in glsl_shaders]


def test_buffers_and_ids_follow_the_binding_contract():
    """Slot n is GLES binding n; SOFTMAX alone reads its threadgroup ids and shares memory."""
    from mobilegen.render.metal import render_metal

    kernels = render_metal(engine_model(DEMO_MODEL.read_bytes(), "int8"))
    lib = kernels.library
    conv = lib[lib.index("kernel void conv2d_3x3_s2("):]
    conv = conv[:conv.index("{")]
    assert re.findall(r"\[\[buffer\((\d)\)\]\]", conv) == ["0", "1", "2", "3"]
    assert "device uint* out_data [[buffer(0)]]" in conv and "const device int4* channel [[buffer(2)]]" in conv
    softmax = lib[lib.index("kernel void softmax("):]
    assert "uint3 lid [[thread_position_in_threadgroup]]" in softmax[:softmax.index("{")]
    assert "threadgroup int reduction[THREADS];" in softmax
    assert '{"softmax", softmax_entry, true}' in kernels.host_table
    assert '{"conv2d_3x3_s2", conv2d_3x3_s2_entry, false}' in kernels.host_table
    fp16 = render_metal(engine_model(DEMO_MODEL.read_bytes(), "fp16")).library
    assert "device half4* out_data [[buffer(0)]]" in fp16 and "const device half4* weights [[buffer(3)]]" in fp16


def test_float_literals_are_float():
    """Every float literal carries the f suffix (MSL has no double; the host C++ would use one)."""
    from mobilegen.render.metal import render_metal

    for precision in ("fp32", "fp16"):
        lib = render_metal(engine_model(DEMO_MODEL.read_bytes(), precision)).library
        code = "\n".join(line.split("//")[0] for line in lib.splitlines())
        bare = re.findall(r"(?<![\w.])(\d+\.\d*(?:e[+-]?\d+)?|\d+e[+-]?\d+)(?![\w.])", code)
        assert not bare, bare[:5]
