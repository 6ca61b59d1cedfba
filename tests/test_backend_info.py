"""Errors a developer can act on, run for real on the host engine (tests/test_engine_cpu.py's
build): why Backend::Auto left the GPU (Engine::backend_info, which the JNI bridge logs and
Classifier.getBackendInfo() returns), and a failed allocation reported as Status::OutOfMemory.

The GPU is made to fail in two ways Mesa offers: no EGL vendor library at all (glvnd finds none
through __EGL_VENDOR_LIBRARY_FILENAMES, so there is no display), and a driver that offers OpenGL
ES 3.0 only (MESA_GLES_VERSION_OVERRIDE), which reaches a context and so a renderer string.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.harness import random_input
from tests.test_engine_cpu import _one_op_model, build_engine


@pytest.fixture(scope="module")
def engine():
    return build_engine(_one_op_model("conv2d", dict(h=7, w=9, cin=3, cout=13, k=3, stride=2, padding="same"), "int8"))


def _run(engine, tmp_path, backend, env=None, extra=()):
    import subprocess

    g = engine.graph
    x = random_input(g.tensors[g.inputs[0]], 0)
    tmp_path.mkdir(parents=True, exist_ok=True)
    np_path = tmp_path / "x.npy"
    __import__("numpy").save(np_path, x)
    cmd = [str(engine.exe), "--blob", str(engine.blob), "--input", str(np_path), "--output", str(tmp_path / "y.npy"),
           "--backend", backend, *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})


def _gpu_works(engine, tmp_path) -> bool:
    r = _run(engine, tmp_path / "probe", "gpu")
    return r.returncode == 0


def test_auto_without_egl_falls_back_with_the_reason(engine, tmp_path):
    r = _run(engine, tmp_path, "auto", {"__EGL_VENDOR_LIBRARY_FILENAMES": str(tmp_path / "no-such-vendor.json")})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["backend"] == "cpu"
    warning = [ln for ln in r.stderr.splitlines() if "warning" in ln]
    assert len(warning) == 1, r.stderr
    assert "running on the CPU, the GPU backend failed: GpuUnavailable: GPU backend: " in warning[0]
    assert "EGL" in warning[0] and "(renderer: none)" in warning[0]
    # Demanded, the GPU reports the same failure instead.
    r = _run(engine, tmp_path / "gpu", "gpu", {"__EGL_VENDOR_LIBRARY_FILENAMES": str(tmp_path / "no-such-vendor.json")})
    assert r.returncode == 1 and "GpuUnavailable" in r.stderr


def test_auto_on_gles_30_falls_back_naming_the_renderer(engine, tmp_path):
    if not _gpu_works(engine, tmp_path):
        msg = "no working EGL + GLES 3.1 (Mesa llvmpipe) here"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    # The GPU works: Auto takes it, without a warning.
    r = _run(engine, tmp_path / "ok", "auto")
    assert r.returncode == 0 and json.loads(r.stdout.splitlines()[-1])["backend"] == "gpu", r.stderr
    assert "warning" not in r.stderr
    r = _run(engine, tmp_path / "es30", "auto", {"MESA_GLES_VERSION_OVERRIDE": "3.0"})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["backend"] == "cpu"
    assert "GpuUnavailable: GPU backend: OpenGL ES 3.1 is required, the driver offers OpenGL ES 3.0" in r.stderr
    renderer = r.stderr.split("(renderer: ", 1)[1].rstrip().rstrip(")")
    assert renderer and renderer != "none" and "llvmpipe" in renderer.lower(), r.stderr


@pytest.mark.parametrize("backend", ["cpu", "auto"])
def test_bad_alloc_is_out_of_memory(engine, tmp_path, backend):
    """Every allocation over 2 KB made while the engine is created throws std::bad_alloc (the
    runner's hook): create() reports OutOfMemory, not InvalidArgument."""
    r = _run(engine, tmp_path, backend, extra=("--fail-allocations-over", "2048"))
    assert r.returncode == 1, r.stdout
    assert ": OutOfMemory: out of memory while setting up the engine" in r.stderr, r.stderr
    # Without the hook the same run succeeds.
    assert _run(engine, tmp_path / "ok", "cpu").returncode == 0
