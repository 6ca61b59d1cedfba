"""fp16 precision planning (mobilegen.precision_plan, `generate --precision fp16 --calibration`).

The model under test (fp16_trouble) is a small float network built to break fp16 storage twice,
everything else healthy:
- CONV_2D "tiny" writes values of about 3e-6, in binary16's subnormal range (spacing 6e-8): stored
  as fp16 it loses about 2%, and the next conv (weights scaled back up) carries that loss on;
- FULLY_CONNECTED "logits" writes values up to about 2.6e5: as fp16 they become inf, and the
  SOFTMAX reading them returns NaN.
The plan must keep exactly those two tensors (the layers after "tiny" are measured from exact
inputs, so they are not dragged in), the planned simulator must stay close to float32 where
all-fp16 gives NaN, and the generated engine (CPU and GLES backends) must follow the same plan.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.harness import random_input

ROOT = Path(__file__).resolve().parents[1]
DEMO_MODEL = ROOT / "examples" / "demo" / "model.tflite"
# The planned fp16 run against float32, max|a - b| / max|b| on every float tensor: the kept tensors
# exact, the rest one fp16 rounding (4.9e-4) plus what fp16 weights and inputs add (measured 6.7e-4
# at worst on fp16_trouble).
PLANNED_RTOL = 2e-3
SAMPLES = 8


def fp16_trouble(seed: int = 0, rev: int = 3):
    """The Keras model described in the module docstring. `rev` is part of the cache key
    (tests.models caches by builder name and arguments): bump it when the body changes."""
    import keras

    from tests.models import _model

    L = keras.layers

    def body(x):
        x = L.Conv2D(8, 3, padding="same", activation="relu", name="c1")(x)
        x = L.Conv2D(8, 1, padding="same", name="tiny")(x)  # ~3e-6: fp16 subnormals
        x = L.Conv2D(8, 3, padding="same", activation="relu", name="c3")(x)  # back to ~0.2
        x = L.GlobalAveragePooling2D()(x)
        x = L.Dense(8, name="pre")(x)
        x = L.Dense(10, name="logits")(x)  # up to ~2.6e5: inf in fp16
        return L.Softmax()(x)

    m = _model((8, 8, 3), body, seed)
    # Weights stay well inside fp16's range (|w| < 3e4) and normal range where it matters.
    for name, scale, bias_scale in (("tiny", 2.5e-6, 2.5e-6), ("c3", 1e5, 1.0), ("pre", 120.0, 120.0),
                                    ("logits", 2e4, 2e4)):
        layer = m.get_layer(name)
        w, b = layer.get_weights()
        layer.set_weights([w * scale, b * bias_scale])
    return m


@pytest.fixture(scope="module")
def trouble() -> bytes:
    from tests.models import tflite_model

    return tflite_model("fp16_trouble", fp16_trouble, {"seed": 0, "rev": 3}, "float32")


def _graph(model: bytes):
    from mobilegen.tflite.reader import read_model

    return read_model(model)


def _samples(g, n: int = SAMPLES, seed: int = 0) -> list[list[np.ndarray]]:
    return [[random_input(g.tensors[g.inputs[0]], seed + j)] for j in range(n)]


def _named(g, part: str) -> int:
    """The tensor a layer named `part` writes: the output of the op whose output name holds it."""
    found = [op.outputs[0] for op in g.ops if f"/{part}_1/" in g.tensors[op.outputs[0]].name]
    assert len(found) == 1, (part, [g.tensors[op.outputs[0]].name for op in g.ops])
    return found[0]


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    den = float(np.abs(b).max(initial=0.0))
    with np.errstate(invalid="ignore"):
        d = np.abs(a - b)
    if np.isnan(d).any():
        return math.inf
    return float(d.max(initial=0.0)) / max(den, 1e-30)


def _runs(g, keep: frozenset[int], x: np.ndarray):
    """(float32, all-fp16, planned fp16) simulator values on input x."""
    from mobilegen.export import plan_for_precision
    from mobilegen.sim.runner import Simulator

    with np.errstate(over="ignore", invalid="ignore"):
        return tuple(Simulator(plan_for_precision(g, p, keep_fp32=k)[0]).run([x])
                     for p, k in (("fp32", frozenset()), ("fp16", frozenset()), ("fp16", keep)))


# --------------------------------------------------------------------------------------------------
# The analysis
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def planned(trouble):
    from mobilegen.precision_plan import plan_fp16

    g = _graph(trouble)
    return g, plan_fp16(g, _samples(g))


def test_plan_keeps_exactly_the_overflowing_and_the_lossy_tensor(planned):
    from mobilegen.precision_plan import DEFAULT_TOLERANCE, format_plan

    g, pp = planned
    tiny, logits = _named(g, "tiny"), _named(g, "logits")
    assert pp.keep_fp32 == {tiny, logits}, format_plan(pp, verbose=True)
    by = {d.index: d for d in pp.decisions}
    # every stored float tensor has a decision: the input and each op's output
    assert sorted(by) == sorted([g.inputs[0], *(op.outputs[0] for op in g.ops)])
    assert by[logits].reason.startswith("overflow: max |x| ") and "SOFTMAX" in by[logits].reason, by[logits].reason
    assert by[logits].max_abs >= 65520
    assert by[tiny].reasons[0].startswith("error ") and f"> tolerance {DEFAULT_TOLERANCE:g}" in by[tiny].reason
    assert by[tiny].own_error > 3 * DEFAULT_TOLERANCE and by[tiny].op == "CONV_2D" and by[tiny].op_index == 1
    for d in pp.decisions:
        if not d.kept:
            assert d.error <= DEFAULT_TOLERANCE and not d.reasons and d.max_abs < 65504 / 2, d
    text = format_plan(pp)
    assert f"keep fp32  tensor {tiny} " in text and f"keep fp32  tensor {logits} " in text
    assert text.startswith(f"fp16 precision plan: 2 of {len(pp.decisions)} float tensors kept in fp32")


def test_all_fp16_breaks_and_the_plan_stays_close_to_fp32(planned):
    """All-fp16: NaN at the output, and the layer after "tiny" off by more than the tolerance.
    Planned: every float tensor within PLANNED_RTOL of float32, the kept ones float32."""
    from mobilegen.numerics.fp16 import round_to_half
    from mobilegen.precision_plan import DEFAULT_TOLERANCE

    g, pp = planned
    tiny, after_tiny, logits = _named(g, "tiny"), _named(g, "c3"), _named(g, "logits")
    out = g.outputs[0]
    for (x,) in _samples(g, 3, seed=100):  # inputs the plan has not seen
        want, all16, plan16 = _runs(g, pp.keep_fp32, x)
        assert np.isnan(all16[out]).any() and np.isinf(all16[logits]).any()
        # The loss at "tiny" carries on into the next layer: measured cumulatively, c3 would be
        # kept too. The plan measures locally and keeps c3 in fp16.
        assert _relative(all16[after_tiny], want[after_tiny]) > DEFAULT_TOLERANCE
        assert after_tiny not in pp.keep_fp32
        for i in (tiny, logits):  # stored as float32: not binary16 values
            with np.errstate(over="ignore"):
                assert not np.array_equal(plan16[i], round_to_half(plan16[i])), i
        for i, v in want.items():
            if v.dtype == np.float32:
                assert _relative(plan16[i], v) < PLANNED_RTOL, (i, _relative(plan16[i], v))
        assert np.isfinite(plan16[out]).all()
    fp16, run = pp.runs["fp16"], pp.runs["planned"]
    assert fp16.nonfinite > 0 and fp16.top1_agreement == 0.0 and not math.isfinite(fp16.output_error)
    assert run.nonfinite == 0 and run.top1_agreement == 1.0 and run.worst_tensor_error < PLANNED_RTOL


def test_plan_json_is_standard_deterministic_and_reads_back(planned, trouble):
    from mobilegen.precision_plan import keep_set_from_json, plan_fp16

    g, pp = planned
    text = pp.to_json()

    def no_constants(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    doc = json.loads(text, parse_constant=no_constants)
    assert doc["keep_fp32"] == sorted(pp.keep_fp32) and doc["precision"] == "fp16"
    assert doc["whole_run_vs_fp32"]["fp16"]["output_error"] == "inf"
    assert {t["index"]: t["kept"] for t in doc["tensors"]} == {d.index: d.kept for d in pp.decisions}
    assert keep_set_from_json(text) == pp.keep_fp32
    assert plan_fp16(_graph(trouble), _samples(g)).to_json() == text  # same samples, same bytes
    from mobilegen.errors import UserInputError

    with pytest.raises(UserInputError, match="not a mobilegen precision plan"):
        keep_set_from_json('{"keep_fp32": "all"}')


def test_tolerance_decides_the_lossy_tensor(planned, trouble):
    """A tolerance above the lossy layer's error keeps only the overflow; a tiny one keeps all."""
    from mobilegen.precision_plan import plan_fp16

    g, pp = planned
    tiny, logits = _named(g, "tiny"), _named(g, "logits")
    loose = plan_fp16(g, _samples(g), tolerance=1.0)
    assert loose.keep_fp32 == {logits}
    strict = plan_fp16(g, _samples(g), tolerance=1e-9)
    assert strict.keep_fp32 == {d.index for d in pp.decisions if d.error > 0}
    assert len(strict.keep_fp32) >= len(pp.decisions) - 1  # the SOFTMAX output (0s and 1s) is exact
    assert strict.runs["planned"].worst_tensor_error == 0.0
    assert tiny in pp.keep_fp32


def test_healthy_model_keeps_nothing():
    """The demo MobileNet (int8, run dequantized at fp16): every tensor stays fp16."""
    from mobilegen.precision_plan import format_plan, plan_fp16

    g = _graph(DEMO_MODEL.read_bytes())
    pp = plan_fp16(g, _samples(g, 4))
    assert pp.keep_fp32 == frozenset(), format_plan(pp, verbose=True)
    assert pp.runs["planned"] == pp.runs["fp16"] and pp.runs["fp16"].nonfinite == 0
    assert "every float tensor is stored as fp16" in format_plan(pp)


def test_bad_samples_and_tolerance(trouble):
    from mobilegen.errors import UserInputError
    from mobilegen.precision_plan import plan_fp16

    g = _graph(trouble)
    with pytest.raises(UserInputError, match="at least one calibration sample"):
        plan_fp16(g, [])
    with pytest.raises(UserInputError, match=r"expected float32\[1, 8, 8, 3\]"):
        plan_fp16(g, [[np.zeros((1, 4, 4, 3), np.float32)]])
    with pytest.raises(UserInputError, match="tolerance"):
        plan_fp16(g, _samples(g, 1), tolerance=0)


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------
def _invoke(*args):
    from typer.testing import CliRunner

    from mobilegen.cli.app import app

    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture()
def model_file(trouble, tmp_path) -> Path:
    p = tmp_path / "trouble.tflite"
    p.write_bytes(trouble)
    return p


@pytest.fixture()
def npy_dir(trouble, tmp_path) -> Path:
    g = _graph(trouble)
    d = tmp_path / "calib"
    d.mkdir()
    for j, (x,) in enumerate(_samples(g)):
        np.save(d / f"x{j}.npy", x)
    return d


def test_generate_with_calibration_writes_and_follows_the_plan(model_file, npy_dir, tmp_path):
    from mobilegen.export import plan_for_precision
    from mobilegen.precision_plan import PLAN_FILE, plan_fp16
    from mobilegen.sim.runner import Simulator

    g = _graph(model_file.read_bytes())
    pp = plan_fp16(g, _samples(g))
    out = tmp_path / "proj"
    r = _invoke("generate", model_file, "--target", "all", "--out", out, "--precision", "fp16", "--calibration", npy_dir)
    assert r.exit_code == 0, r.output
    for d in pp.kept:
        assert f"keep fp32  tensor {d.index} {d.name!r} ({d.op} op {d.op_index}): {d.reason}" in r.output
    assert "whole run vs fp32" in r.output
    for platform in ("android", "ios"):
        root = out / platform
        assert (root / PLAN_FILE).read_text() == pp.to_json()
        prov = json.loads((root / "mobilegen.json").read_text())
        assert prov["files"][PLAN_FILE] == hashlib.sha256(pp.to_json().encode()).hexdigest()
        assert prov["options"]["fp32_tensors"] == sorted(pp.keep_fp32)
        assert f"created  {PLAN_FILE}" in r.output
    # The generated golden output is the planned simulator's: finite (all-fp16 would be NaN).
    plan, _ = plan_for_precision(g, "fp16", keep_fp32=pp.keep_fp32)
    t_in, t_out = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    assets = out / "android/sdk/src/androidTest/assets"
    x = np.frombuffer((assets / "golden_input0.bin").read_bytes(), np.float32).reshape(t_in.shape)
    y = np.frombuffer((assets / "golden_output0.bin").read_bytes(), np.float32)
    assert np.isfinite(y).all() and np.array_equal(Simulator(plan).run([x])[t_out.index].reshape(-1), y)

    # Again: identical; a hand-edited plan file is a conflict.
    r = _invoke("generate", model_file, "--target", "android", "--out", out / "android", "--precision", "fp16",
                "--calibration", npy_dir)
    assert r.exit_code == 0 and "created" not in r.output and "updated" not in r.output, r.output
    (out / "android" / PLAN_FILE).write_text("{}\n")
    r = _invoke("generate", model_file, "--target", "android", "--out", out / "android", "--precision", "fp16",
                "--calibration", npy_dir)
    assert r.exit_code != 0 and PLAN_FILE in r.output and "changed since they were generated" in r.output


@pytest.mark.filterwarnings("ignore:overflow encountered in cast", "ignore:invalid value encountered in subtract")
def test_simulate_follows_a_projects_precision_plan(model_file, npy_dir, tmp_path):
    """`simulate --precision-plan precision_plan.json` runs fp16 as the project does: its dump is the
    planned simulator's, finite where all-fp16 gives NaN; a plan at another precision is an error."""
    from mobilegen.export import plan_for_precision
    from mobilegen.precision_plan import PLAN_FILE, plan_fp16
    from mobilegen.sim.runner import Simulator

    g = _graph(model_file.read_bytes())
    out = tmp_path / "proj"
    assert _invoke("generate", model_file, "--target", "android", "--out", out, "--precision", "fp16",
                   "--calibration", npy_dir).exit_code == 0
    x = next(iter(sorted(npy_dir.glob("*.npy"))))
    t_out = g.outputs[0]
    r = _invoke("simulate", model_file, "--input", x, "--precision-plan", out / PLAN_FILE, "--dump-dir", tmp_path / "d")
    assert r.exit_code == 0, r.output
    keep = plan_fp16(g, _samples(g)).keep_fp32
    expected = Simulator(plan_for_precision(g, "fp16", keep_fp32=keep)[0]).run([np.load(x)])
    got = np.load(tmp_path / "d" / f"{t_out}.npy")
    assert np.isfinite(got).all() and np.array_equal(got, expected[t_out])
    r = _invoke("simulate", model_file, "--input", x, "--precision", "fp16", "--dump-dir", tmp_path / "all")
    assert r.exit_code == 0 and not np.isfinite(np.load(tmp_path / "all" / f"{t_out}.npy")).all()
    r = _invoke("simulate", model_file, "--input", x, "--precision", "fp32", "--precision-plan", out / PLAN_FILE)
    assert r.exit_code != 0 and "a plan for precision fp16, not fp32" in r.output


def test_generate_calibration_from_images(model_file, tmp_path):
    """An image folder: decoded and normalized as the SDK does (the model has no metadata: the
    default mean and std), the tensors kept are those of the .npy route's analysis of the same pixels."""
    from PIL import Image

    from mobilegen.inputs import DEFAULT_MEAN, DEFAULT_STD
    from mobilegen.precision_plan import PLAN_FILE, calibration_inputs, plan_fp16

    rng = np.random.default_rng(3)
    data = tmp_path / "images"
    for cls in ("a", "b"):
        (data / cls).mkdir(parents=True)
        for j in range(3):
            Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(data / cls / f"{j}.png")
    out = tmp_path / "proj"
    r = _invoke("generate", model_file, "--target", "android", "--out", out, "--precision", "fp16", "--calibration", data,
                "--fp16-tolerance", "0.004")
    assert r.exit_code == 0, r.output
    g = _graph(model_file.read_bytes())
    samples = calibration_inputs(g, data, mean=DEFAULT_MEAN, std=DEFAULT_STD)
    assert len(samples) == 6 and samples[0][0].shape == (1, 8, 8, 3)
    assert (out / PLAN_FILE).read_text() == plan_fp16(g, samples, tolerance=0.004).to_json()
    assert json.loads((out / PLAN_FILE).read_text())["tolerance"] == 0.004


@pytest.mark.filterwarnings("ignore:overflow encountered in cast", "ignore:invalid value encountered in subtract")
def test_generate_fp16_without_calibration_and_errors(model_file, npy_dir, tmp_path):
    from mobilegen.precision_plan import PLAN_FILE

    out = tmp_path / "plain"
    r = _invoke("generate", model_file, "--target", "android", "--out", out, "--precision", "fp16")
    assert r.exit_code == 0, r.output
    assert "every float tensor is stored as fp16" in r.output and not (out / PLAN_FILE).exists()
    assert "fp32_tensors" not in json.loads((out / "mobilegen.json").read_text())["options"]

    for args, needle in (
        (("--precision", "fp32", "--calibration", npy_dir), "--calibration plans fp16 storage: it needs --precision fp16, not fp32"),
        (("--calibration", npy_dir), "needs --precision fp16, not the model default"),
        (("--precision", "fp16", "--fp16-tolerance", "0.01"), "--fp16-tolerance applies with --calibration"),
        (("--precision", "fp16", "--calibration", npy_dir, "--fp16-tolerance", "-1"), "--fp16-tolerance -1.0: expected a positive number"),
        (("--precision", "fp16", "--calibration", tmp_path / "nowhere"), "no such directory"),
    ):
        r = _invoke("generate", model_file, "--target", "android", "--out", tmp_path / "x", *args)
        assert r.exit_code != 0, (args, r.output)
        lines = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
        assert len(lines) == 1 and needle in lines[0], (args, r.output)
        assert not (tmp_path / "x").exists()


def test_project_jobs_refuses_a_plan_at_another_precision(planned, tmp_path):
    from mobilegen.errors import UserInputError
    from mobilegen.targets.jobs import project_jobs

    _, pp = planned
    with pytest.raises(UserInputError, match="applies to precision fp16, not fp32"):
        project_jobs(["android"], lambda p: tmp_path, precision="fp32", precision_plan=pp)
    (job,) = project_jobs(["ios"], lambda p: tmp_path, precision="fp16", precision_plan=pp)
    assert job.options.keep_fp32 == pp.keep_fp32 and job.options.precision_plan == pp.to_json()


# --------------------------------------------------------------------------------------------------
# The engines follow the plan
# --------------------------------------------------------------------------------------------------
def _planned(build, model: bytes, keep: frozenset[int], monkeypatch):
    """An engine builder of the engine tests (tests.test_engine_cpu.build_engine,
    tests.test_metal_engine.build_metal_engine) at fp16 under the precision plan `keep`: their
    plan_for_precision is given the keep set (their caches are keyed by the generated sources, which
    carry each tensor's storage)."""
    import functools

    import mobilegen.export

    monkeypatch.setattr(mobilegen.export, "plan_for_precision",
                        functools.partial(mobilegen.export.plan_for_precision, keep_fp32=keep))
    engine = build(model, precision="fp16")
    monkeypatch.undo()
    assert {t.index for t in engine.em.tensors if t.dtype == "float32" and not t.half} == set(keep)
    return engine


def _check_engine(engine, pp, got: dict, x: np.ndarray, label: str) -> None:
    """The planned engine's tensors: within test_fp16's tolerances of the planned simulator, the
    kept tensors float32 values (not binary16), the output finite and close to fp32."""
    from tests.test_fp16 import check_whole_run, kernel_by_kernel

    from mobilegen.numerics.fp16 import round_to_half

    g = engine.graph
    kernel_by_kernel(engine, got, label)
    check_whole_run(engine, got, x, label)
    want, _, _ = _runs(g, pp.keep_fp32, x)
    for i in pp.keep_fp32:
        with np.errstate(over="ignore"):
            assert not np.array_equal(got[i], round_to_half(got[i])), f"{label}: tensor {i} stored as fp16"
    out = g.outputs[0]
    assert np.isfinite(got[out]).all() and _relative(got[out], want[out]) < PLANNED_RTOL, label


@pytest.mark.parametrize("backend", ("cpu", "gpu"))
def test_engine_follows_the_plan(planned, trouble, backend, tmp_path, monkeypatch):
    """The Android engine tree on the host: the CPU backend and GLES (Mesa llvmpipe)."""
    from tests.test_engine_cpu import build_engine
    from tests.test_fp16 import engine_values

    g, pp = planned
    engine = _planned(build_engine, trouble, pp.keep_fp32, monkeypatch)
    for seed in (100, 101):
        x = random_input(g.tensors[g.inputs[0]], seed)
        got = engine_values(engine, x, backend, tmp_path / f"{backend}-{seed}")
        _check_engine(engine, pp, got, x, f"fp16_trouble planned [{backend}] seed {seed}")


def test_metal_host_engine_follows_the_plan(planned, trouble, tmp_path, monkeypatch):
    """The iOS engine tree's Metal backend on the host executor."""
    from tests.test_metal_engine import build_metal_engine, run_gpu

    from mobilegen.dump import read_dump
    from mobilegen.numerics.fp16 import round_to_half

    g, pp = planned
    engine = _planned(build_metal_engine, trouble, pp.keep_fp32, monkeypatch)
    for seed in (100, 101):
        x = random_input(g.tensors[g.inputs[0]], seed)
        run_gpu(engine, x, tmp_path / f"metal-{seed}")
        _, got = read_dump(tmp_path / f"metal-{seed}" / "dump")
        got[g.inputs[0]] = round_to_half(x)
        _check_engine(engine, pp, got, x, f"fp16_trouble planned [metal host] seed {seed}")


def test_near_overflow_keeps_headroom(trouble):
    """The model is positively homogeneous (no biases): inputs scaled by 0.2 put the logits' max
    near 5e4, finite in fp16 but within 2x of 65504: kept as a near overflow."""
    from mobilegen.precision_plan import FP16_MAX, plan_fp16

    g = _graph(trouble)
    logits = _named(g, "logits")
    samples = [[(x * np.float32(0.2)).astype(np.float32)] for (x,) in _samples(g)]
    pp = plan_fp16(g, samples)
    d = next(d for d in pp.decisions if d.index == logits)
    assert FP16_MAX / 2 < d.max_abs < 65504, d.max_abs
    assert d.kept and d.reason.startswith("near overflow: max |x| ") and "within 2x of the fp16 maximum 65504" in d.reason
    assert pp.keep_fp32 == {_named(g, "tiny"), logits}


def test_calibration_inputs_from_arrays_and_folders(trouble, tmp_path):
    from mobilegen.data.folder import scan_folder
    from mobilegen.errors import UserInputError
    from mobilegen.precision_plan import calibration_inputs

    from PIL import Image

    g = _graph(trouble)
    xs = [x for (x,) in _samples(g, 5)]
    d = tmp_path / "arrays"
    d.mkdir()
    np.save(d / "a.npy", np.concatenate(xs[:3]))  # [3][8][8][3]: three samples
    np.save(d / "b.npy", xs[3])  # [1][8][8][3]
    np.save(d / "c.npy", xs[4][0])  # [8][8][3]: the batch 1 left out
    got = calibration_inputs(g, d, mean=0.0, std=1.0)
    assert len(got) == 5 and all(np.array_equal(a[0], b) for a, b in zip(got, xs))
    np.save(d / "d.npy", np.zeros((1, 4, 4, 3), np.float32))
    with pytest.raises(UserInputError, match="d.npy: array is float32"):
        calibration_inputs(g, d, mean=0.0, std=1.0)
    (d / "e.npy").write_bytes(b"not numpy")
    (d / "d.npy").unlink()
    with pytest.raises(UserInputError, match="e.npy: not a readable .npy file"):
        calibration_inputs(g, d, mean=0.0, std=1.0)

    images = tmp_path / "images"
    for cls in ("a", "b", "c"):
        (images / cls).mkdir(parents=True)
        for j in range(4):
            Image.new("RGB", (9, 7), (60 * j, 10, 200)).save(images / cls / f"{j}.png")
    folder = scan_folder(images)
    got = calibration_inputs(g, folder, mean=127.5, std=127.5, limit=6)
    assert len(got) == 6  # spread evenly: two of each class
    assert got[0][0].shape == (1, 8, 8, 3) and got[0][0].dtype == np.float32
    assert np.allclose(got[0][0][0, 0, 0], (np.array([0, 10, 200]) - 127.5) / 127.5)
    assert [len(x) for x in calibration_inputs(g, images, mean=127.5, std=127.5, limit=100)] == [1] * 12


def fp16_shared_storage(seed: int = 0, rev: int = 2):
    """A float network whose CONV_2D "subw" has weights of about 1e-6 (binary16 subnormals: 1%
    off) on inputs of about 1e4, so its output (about 0.03) is lossy through its weights, not its
    storage; a RESHAPE (Flatten) then shares that output's storage."""
    import keras

    from tests.models import _model

    L = keras.layers

    def body(x):
        x = L.Conv2D(8, 3, padding="same", activation="relu", name="big")(x)
        x = L.Conv2D(4, 1, padding="same", name="subw")(x)
        x = L.Flatten()(x)
        x = L.Dense(10, name="head")(x)
        return L.Softmax()(x)

    m = _model((4, 4, 3), body, seed)
    for name, scale in (("big", 1e4), ("subw", 2e-6)):
        layer = m.get_layer(name)
        w, b = layer.get_weights()
        layer.set_weights([w * scale, b * scale])
    return m


@pytest.mark.parametrize("backend", ("cpu", "gpu"))
def test_reshape_chain_is_kept_whole(backend, tmp_path, monkeypatch):
    """The RESHAPE's output is fine alone (one rounding) but shares storage with the lossy conv
    output: both kept, said why; the engine, whose RESHAPE aliases its input, runs the plan."""
    from tests.models import tflite_model
    from tests.test_engine_cpu import build_engine
    from tests.test_fp16 import engine_values

    from mobilegen.precision_plan import DEFAULT_TOLERANCE, plan_fp16

    model = tflite_model("fp16_shared_storage", fp16_shared_storage, {"seed": 0, "rev": 2}, "float32")
    g = _graph(model)
    (reshape,) = [op for op in g.ops if op.opcode == "RESHAPE"]
    conv, flat = reshape.inputs[0], reshape.outputs[0]
    pp = plan_fp16(g, _samples(g))
    by = {d.index: d for d in pp.decisions}
    assert pp.keep_fp32 == {conv, flat}
    assert by[conv].reason.startswith("error ") and "(fp16 weights and storage)" in by[conv].reason
    assert by[flat].error <= DEFAULT_TOLERANCE and by[flat].reason == f"shares storage with tensor {conv} (a RESHAPE chain), which is kept"
    engine = _planned(build_engine, model, pp.keep_fp32, monkeypatch)
    x = random_input(g.tensors[g.inputs[0]], 100)
    got = engine_values(engine, x, backend, tmp_path / backend)
    _check_engine(engine, pp, got, x, f"fp16_shared_storage planned [{backend}]")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:overflow encountered in cast", "ignore:invalid value encountered in subtract")
def test_build_at_fp16_plans_on_its_dataset_and_verifies_the_plan(model_file, tmp_path):
    """`mobilegen build` at targets.precision = "fp16" with a dataset: the plan is made from the
    dataset's images (the same decisions as plan_model_fp16 on that folder), the project carries
    it, and the engine's run matches the simulator under the same keep set (a simulator that
    ignored the plan would hold NaN where the engine holds finite values)."""
    from PIL import Image

    from mobilegen.precision_plan import PLAN_FILE, plan_model_fp16
    from tests.test_engine_cpu import require_toolchain

    require_toolchain()
    rng = np.random.default_rng(5)
    data = tmp_path / "images"
    for cls in (f"class_{i}" for i in range(10)):  # the model's 10 outputs, unnamed
        (data / cls).mkdir(parents=True)
        for j in range(3):
            Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(data / cls / f"{j}.png")
    config = tmp_path / "mobilegen.toml"
    config.write_text(f'[model]\nfile = "{model_file}"\ndata = "{data}"\n\n[targets]\nplatforms = ["android"]\n'
                      'precision = "fp16"\nfp16_tolerance = 0.004\n\n[verify]\nbackends = ["cpu"]\n')
    out = tmp_path / "out"
    r = _invoke("build", config, "--out", out)
    assert r.exit_code == 0, r.output
    expected = plan_model_fp16(model_file, data, tolerance=0.004)
    assert len(expected.keep_fp32) == 2
    assert (out / "android" / PLAN_FILE).read_text() == expected.to_json()
    report = json.loads((out / "build.json").read_text())
    assert report["precision"] == "fp16" and report["fp32_tensors"] == sorted(expected.keep_fp32)
    row = next(v for v in report["verification"] if v["target"] == "android")
    assert row["ok"], row
    manifest = json.loads((out / "dist" / "manifest.json").read_text())
    assert manifest["fp32_tensors"] == sorted(expected.keep_fp32)
    assert "2 tensors kept in float32" in r.output
