"""Shared test machinery: gating on optional modules and tools (skip locally, fail under CI=true)
and the simulator-vs-LiteRT check."""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

# Float tensors: max|sim - ref| / max|ref| per tensor (DESIGN.md's numerical contract). 2e-5 is 3x
# the float32 noise floor measured on the tests' models in benchmarks/FLOAT_NOISE.md
# (benchmarks/float_noise.py; MobileNet V1/V2, widths 0.25-1.0, seeds, inputs): simulator vs
# BUILTIN_REF <= 6.5e-6, LiteRT's optimized kernels vs BUILTIN_REF <= 6.8e-6.
FLOAT_RTOL = 2e-5
# Float tensors of the generated engines (CPU fallback, GLES) against the simulator, same measure.
# DESIGN.md allows 1e-4; measured (FLOAT_NOISE.md, MobileNet V1/V2 1.0/224) <= 5.7e-6 on the CPU
# and <= 5.4e-6 on GLES, so the engines are held as tight as the simulator: 2e-5.
ENGINE_FLOAT_RTOL = 2e-5

INSTALL_HINT = {
    "tensorflow": "make setup (or pip install -e '.[train]')",
    "ai_edge_litert": "make setup (or pip install -e '.[verify]')",
    "yaml": "make setup (or pip install -e '.[test]')",
}


def missing(msg: str):
    """What a test does when something it needs is not installed: skip locally with `msg` (which
    says what to install); under CI=true fail. Every requirement below goes through here."""
    if os.environ.get("CI") == "true":
        pytest.fail(msg)
    pytest.skip(msg)


def require(module: str):
    """Import `module`, or skip with what to install; under CI=true a missing module fails."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        missing(f"{module} is not installed ({e}); install it with: {INSTALL_HINT.get(module, 'pip install ' + module)}")


def require_tool(name: str, apt_package: str) -> str:
    """The path of the executable `name`, or skip naming the apt package to install; under CI=true
    a missing tool fails."""
    path = shutil.which(name)
    if path is None:
        missing(f"{name} is not installed; install it with: apt-get install {apt_package} (make setup does)")
    return path


def require_file(path: Path, apt_package: str) -> None:
    """Skip (fail under CI=true) when `path`, a header or library an apt package provides, is missing."""
    if not Path(path).exists():
        missing(f"{path} is missing; install it with: apt-get install {apt_package} (make setup does)")


def schema():
    """TensorFlow's generated TFLite schema bindings (object API), for tests that rewrite models."""
    require("tensorflow")
    from mobilegen.convert.quantize import schema as tflite_schema

    return tflite_schema()


def model_bytes(case, mode: str) -> bytes:
    """The cached .tflite of a (name, builder, kwargs) case from tests/models.py in `mode`."""
    from tests import models

    require("tensorflow")
    name, builder, kwargs = case
    return models.tflite_model(name, builder, kwargs, mode)


def random_input(t, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if t.dtype == "float32":
        return rng.uniform(-1.0, 1.0, t.shape).astype(np.float32)
    info = np.iinfo(t.dtype)
    return rng.integers(info.min, info.max, t.shape, endpoint=True).astype(t.dtype)


def check_against_reference(model: bytes, label: str, seed: int = 0, x: np.ndarray | None = None) -> dict:
    """Simulate `model` and LiteRT BUILTIN_REF on the same input; assert every tensor an operator
    writes matches (integers exactly, floats within FLOAT_RTOL). Returns the simulator's values."""
    require("ai_edge_litert")
    from mobilegen.plan import build_plan
    from mobilegen.sim.runner import Simulator
    from mobilegen.tflite.reader import read_model
    from mobilegen.verify.reference import run_reference

    g = read_model(model)
    if x is None:
        x = random_input(g.tensors[g.inputs[0]], seed)
    ours = Simulator(build_plan(g)).run([x])
    ref = run_reference(model, x)
    where = {i: f"{label}: {op.describe()} output {g.tensors[i].describe()}" for op in g.ops for i in op.outputs}
    problems = tensor_mismatches(ours, ref, where, ("sim", "reference"))
    assert not problems, "\n".join(problems)
    return ours


def tensor_mismatches(
    got: dict, want: dict, where: dict[int, str], names: tuple[str, str], float_rtol: float = FLOAT_RTOL
) -> list[str]:
    """One line per tensor of `where` (index -> description) on which `got` and `want` differ:
    integers at all, floats by more than float_rtol of max|want|."""
    problems = []
    for i, place in where.items():
        a, b = got[i], want[i]
        if a.shape != b.shape or a.dtype != b.dtype:
            problems.append(f"{place}: {names[0]} {a.dtype}{list(a.shape)} vs {names[1]} {b.dtype}{list(b.shape)}")
        elif a.dtype.kind in "iu":
            d = np.abs(a.astype(np.int64) - b.astype(np.int64))
            if d.max(initial=0):
                problems.append(f"{place}: max {int(d.max())} LSB, {int((d > 0).sum())}/{d.size} differ")
        elif not (np.isfinite(a).all() and np.isfinite(b).all()):
            # NaN or inf: the relative error below would compare NaN and pass; demand the same
            # non-finite values in the same places (and finite values within tolerance elsewhere).
            same = np.array_equal(np.isfinite(a), np.isfinite(b)) and np.array_equal(a[~np.isfinite(a)], b[~np.isfinite(b)], equal_nan=True)
            if not same:
                problems.append(f"{place}: non-finite values differ ({int((~np.isfinite(a)).sum())} vs {int((~np.isfinite(b)).sum())})")
            else:
                fa, fb = a[np.isfinite(a)].astype(np.float64), b[np.isfinite(b)].astype(np.float64)
                rel = float(np.abs(fa - fb).max(initial=0.0)) / max(float(np.abs(fb).max(initial=0.0)), 1e-30)
                if rel > float_rtol:
                    problems.append(f"{place}: relative error {rel:.3g} > {float_rtol}")
        else:
            den = float(np.abs(b.astype(np.float64)).max(initial=0.0))
            rel = float(np.abs(a.astype(np.float64) - b).max(initial=0.0)) / max(den, 1e-30)
            if rel > float_rtol:
                problems.append(f"{place}: relative error {rel:.3g} > {float_rtol}")
    return problems


def load_benchmark(name: str):
    """benchmarks/<name>.py as a module, loaded once per process: the benchmarks are scripts run
    from the repository root, not a package, and some tests reuse their data generators."""
    key = f"mobilegen_bench_{name}"
    if key not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(key, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module  # before exec: dataclasses look their module up by name
        spec.loader.exec_module(module)
    return sys.modules[key]
