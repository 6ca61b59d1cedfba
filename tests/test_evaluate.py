"""mobilegen evaluate: scoring checked by hand, the batched simulator bit-identical to one image at a
time, .tflite predictions equal to LiteRT's BUILTIN_REF through the same preprocessing, the Keras
path equal to keras predict, class mapping errors, --split val, --json, and a console-script run.

The committed demo model (examples/demo: MobileNet V1 0.25/128 int8, float I/O, 10 classes) needs no
TensorFlow; the op sweep and the Keras tests build models with it (tests/models.py, cached)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mobilegen.cli.app import app
from mobilegen.evaluate import Evaluation, agreement, comparison_table, evaluate_tflite, format_evaluation, score
from mobilegen.export import plan_for_precision
from mobilegen.inputs import image_to_input
from mobilegen.numerics.fixedpoint import mbqm
from mobilegen.sim.kernels import requantize_in_place
from mobilegen.sim.runner import Simulator
from mobilegen.tflite.reader import read_model
from tests.harness import random_input, require

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo" / "model.tflite"
DEMO_LABELS = (ROOT / "examples" / "demo" / "labels.txt").read_text().split()
BATCH_IMAGES = 3


# --------------------------------------------------------------------------------------------------
# Fixtures: image folders whose images differ enough for the demo model to predict several classes
# --------------------------------------------------------------------------------------------------
def make_folder(root: Path, classes: list[str], per_class: int, seed: int = 0, size=(40, 52)) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for li, c in enumerate(classes):
        d = root / c
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            h, w = size[0] + i, size[1] - i  # varied sizes: the resize is part of what is compared
            a = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
            a[..., li % 3] = np.uint8(255 - 20 * i)
            a[: h // 2] //= np.uint8(1 + (li + i) % 4)
            Image.fromarray(a).save(d / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return make_folder(tmp_path_factory.mktemp("data"), DEMO_LABELS[:4], per_class=5)


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def scan(root: Path):
    from mobilegen.data.folder import scan_folder

    return scan_folder(root)


def demo_samples(root: Path, samples=None):
    """The folder's samples (or `samples` of it) labelled by the demo model's class indices."""
    from mobilegen.evaluate import map_samples

    data = scan(root)
    return map_samples(data.samples if samples is None else samples, data.classes, DEMO_LABELS)


# --------------------------------------------------------------------------------------------------
# Scoring, by hand
# --------------------------------------------------------------------------------------------------
def test_score_hand_checked():
    classes = [f"c{i}" for i in range(7)]
    scores = np.array([
        [9, 1, 0, 0, 0, 0, 0],  # true 0, predicted 0
        [1, 9, 0, 0, 0, 0, 0],  # true 0, predicted 1; 0 ranks second: in the top 5
        [5, 5, 0, 0, 0, 0, 0],  # true 1, a tie: the lower index (0) wins; 1 is second
        [0, 0, 0, 0, 0, 1, 9],  # true 2, predicted 6; 2 ranks third (ties 0..4 by index): top 5
        [0, 0, 1, 2, 3, 4, 5],  # true 0, predicted 6; 0 ranks 7th: not in the top 5
        [0, 0, 0, 9, 0, 0, 0],  # true 3, predicted 3
    ], dtype=np.float64)
    labels = np.array([0, 0, 1, 2, 0, 3])
    e = score(scores, labels, classes, seconds=2.0)
    assert e.predictions.tolist() == [0, 1, 0, 6, 6, 3]
    assert e.top1 == pytest.approx(2 / 6) and e.top5 == pytest.approx(5 / 6)
    want = np.zeros((7, 7), int)
    for t, p in [(0, 0), (0, 1), (1, 0), (2, 6), (0, 6), (3, 3)]:
        want[t, p] += 1
    assert np.array_equal(e.confusion, want)
    assert e.n == 6 and e.images_per_second == 3.0
    text = format_evaluation(e)
    assert text.startswith("top-1 33.3% (2/6)   top-5 83.3% (5/6)")
    assert "c0  " in text and text.splitlines()[3].split() == ["c0", "1", "1", "0", "0", "0", "0", "1"]
    other = score(scores[:, ::-1].copy(), labels, classes, seconds=1.0)
    assert agreement(e, e) == 1.0 and agreement(e, other) == pytest.approx(1 / 6)  # only the last sample agrees
    table = comparison_table([("a", e), ("b", other)], e).splitlines()
    assert table[1].split()[:4] == ["a", "33.3%", "83.3%", "100.0%"]


def test_many_classes_list_the_top_confusions():
    classes = [f"class{i}" for i in range(30)]
    labels = np.arange(30).repeat(2)
    scores = np.eye(30)[labels]
    scores[0] = np.eye(30)[7]  # class0 -> class7 twice, class5 -> class9 once
    scores[1] = np.eye(30)[7]
    scores[10] = np.eye(30)[9]
    text = format_evaluation(score(scores, labels, classes, 1.0))
    assert "confusion matrix" not in text
    lines = text.splitlines()
    i = lines.index("most frequent confusions (true -> predicted: images):")
    assert lines[i + 1 :] == ["  class0 -> class7: 2", "  class5 -> class9: 1"]
    assert "  class0: 0.0% (0/2)" in lines and "  class5: 50.0% (1/2)" in lines


# --------------------------------------------------------------------------------------------------
# The batched simulator
# --------------------------------------------------------------------------------------------------
def test_requantize_is_mbqm_bit_for_bit():
    rng = np.random.default_rng(0)
    for trial in range(200):
        c = int(rng.integers(1, 9))
        acc = rng.integers(-(2**31), 2**31, (int(rng.integers(1, 60)), c), dtype=np.int64)
        if trial % 2:
            acc = rng.integers(-5000, 5000, acc.shape, dtype=np.int64)
        acc.flat[0] = -(2**31)
        m = rng.integers(2**30, 2**31, c, dtype=np.int64)
        m[rng.random(c) < 0.2] = 0
        shift = rng.integers(-31, 1, c, dtype=np.int64)
        shift[rng.random(c) < 0.3] = 0
        zp = rng.integers(-128, 256, c if trial % 3 else 1, dtype=np.int64)
        assert np.array_equal(requantize_in_place(acc.copy(), m, shift), mbqm(acc, m, shift))
        assert np.array_equal(requantize_in_place(acc.copy(), m, shift, zp), mbqm(acc, m, shift) + zp)
        a32 = acc.astype(np.int32)
        assert np.array_equal(requantize_in_place(a32.copy(), m, shift, zp), mbqm(a32, m, shift) + zp)
    # Every rounding tie for small exponents, and the fallbacks (a left shift, acc beyond int32).
    acc = np.arange(-700, 700, dtype=np.int64)
    for e in range(9):
        for m in (2**30, 2**31 - 1, 1234567890):
            assert np.array_equal(requantize_in_place(acc.copy(), m, -e), mbqm(acc, m, -e))
            assert np.array_equal(requantize_in_place(acc.copy(), m, -e, -128), mbqm(acc, m, -e) - 128)
    shift = np.array([2, 0, -3, 1])
    acc = rng.integers(-(2**20), 2**20, (50, 4))
    assert np.array_equal(requantize_in_place(acc.copy(), 2**30 + 5, shift, 3), mbqm(acc, 2**30 + 5, shift) + 3)
    big = np.array([2**33, -(2**33) - 7])
    assert np.array_equal(requantize_in_place(big.copy(), 2**30, -3), mbqm(big, 2**30, -3))


def assert_batch_matches_run(plan, label: str, seed: int = 0, n: int = BATCH_IMAGES):
    """run_batch of n images == n run() calls, every tensor, bit for bit (dtype and NaNs too)."""
    g = plan.graph
    xs = [[random_input(g.tensors[i], seed + 17 * j + k) for k, i in enumerate(g.inputs)] for j in range(n)]
    single = [Simulator(plan).run(x) for x in xs]
    sim = Simulator(plan)
    batched = sim.run_batch([np.concatenate([x[k] for x in xs]) for k in range(len(g.inputs))])
    assert sim.batchable(), f"{label}: expected a batchable plan"
    assert set(batched) == set(single[0]), label
    for i, v in batched.items():
        assert v.shape == Simulator.batch_shape(g.tensors[i].shape, n), f"{label}: tensor {i} {v.shape}"
        for j in range(n):
            want = single[j][i]
            got = v[j : j + 1].reshape(want.shape)
            assert got.dtype == want.dtype and np.array_equal(got, want, equal_nan=True), (
                f"{label}: {g.tensors[i].describe()} differs for image {j} of {n}")
    outs = sim.outputs_batch([np.concatenate([x[k] for x in xs]) for k in range(len(g.inputs))])
    assert all(np.array_equal(o, batched[i], equal_nan=True) for o, i in zip(outs, g.outputs))


@pytest.mark.parametrize("precision", ["int8", "fp16", "fp32"])
def test_batch_equals_run_mobilenet(precision):
    plan, _ = plan_for_precision(read_model(DEMO.read_bytes()), precision)
    assert_batch_matches_run(plan, f"demo MobileNet V1 0.25/128 at {precision}")


def test_unbatchable_plan_runs_image_by_image(monkeypatch):
    plan, _ = plan_for_precision(read_model(DEMO.read_bytes()), "int8")
    monkeypatch.setattr(Simulator, "batchable", lambda self: False)
    assert_batch_matches_run_fallback = Simulator(plan).run_batch([np.zeros((2, 128, 128, 3), np.float32)], keep="outputs")
    want = Simulator(plan).run([np.zeros((1, 128, 128, 3), np.float32)])[plan.graph.outputs[0]]
    got = assert_batch_matches_run_fallback[plan.graph.outputs[0]]
    assert got.shape == (2, 10) and np.array_equal(got[1:2], want)


def test_batch_input_errors():
    from mobilegen.errors import UserInputError

    sim = Simulator(plan_for_precision(read_model(DEMO.read_bytes()), None)[0])
    with pytest.raises(UserInputError, match=r"expected \[2, 128, 128, 3\]"):
        sim.run_batch([np.zeros((2, 128, 127, 3), np.float32)])
    with pytest.raises(UserInputError, match="dtype"):
        sim.run_batch([np.zeros((2, 128, 128, 3), np.float64)])


def _sweep():
    from tests.test_ops import CONV_CASES, DEPTHWISE_CASES, OTHER_CASES

    cases = [("conv2d", k) for k in CONV_CASES] + [("depthwise", k) for k in DEPTHWISE_CASES] + list(OTHER_CASES)
    return [(name, kwargs, mode) for name, kwargs in cases for mode in ("int8", "uint8", "float32", "float16")]


SWEEP = _sweep()
# Quick ones (also run without -m slow): a strided conv, a depthwise with multiplier, the softmax of
# many rows with an ADD, and a standalone activation, over all four modes.
QUICK = {"conv2d": 0, "depthwise": 2, "add_softmax_rows": 0, "relu6": 0}


def _quick(name, kwargs, mode):
    first = [k for n, k, m in SWEEP if n == name and m == mode]
    return name in QUICK and first.index(kwargs) == min(QUICK[name], len(first) - 1)


def _sweep_params(quick: bool):
    return [pytest.param(name, kwargs, mode, id=f"{name}-{'-'.join(str(v) for v in kwargs.values())}-{mode}")
            for name, kwargs, mode in SWEEP if _quick(name, kwargs, mode) == quick]


def _check_sweep_case(name, kwargs, mode):
    require("tensorflow")
    from tests import models

    g = read_model(models.tflite_model(name, models.BUILDERS[name], kwargs, mode))
    precisions = [None, "fp16"] + (["fp32"] if mode in ("int8", "uint8") else [])
    for precision in precisions:
        plan, _ = plan_for_precision(g, precision)
        assert_batch_matches_run(plan, f"{name}({kwargs}) [{mode}] at {precision or 'own'} precision")


@pytest.mark.parametrize("name,kwargs,mode", _sweep_params(quick=True))
def test_batch_equals_run_sweep_quick(name, kwargs, mode):
    _check_sweep_case(name, kwargs, mode)


@pytest.mark.slow
@pytest.mark.parametrize("name,kwargs,mode", _sweep_params(quick=False))
def test_batch_equals_run_sweep(name, kwargs, mode):
    _check_sweep_case(name, kwargs, mode)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["uint8", "float32", "float16"])
def test_batch_equals_run_converted_mobilenet(mode):
    from tests.test_mobilenet import mobilenet_tflite

    g = read_model(mobilenet_tflite("v1", 0.25, 128, 10, mode))
    assert_batch_matches_run(plan_for_precision(g, None)[0], f"MobileNet V1 0.25/128 [{mode}]")


# --------------------------------------------------------------------------------------------------
# evaluate_tflite against LiteRT's reference kernels
# --------------------------------------------------------------------------------------------------
def test_tflite_predictions_equal_litert_one_image_at_a_time(folder):
    require("ai_edge_litert")
    from mobilegen.verify.reference import run_reference

    samples = demo_samples(folder)
    buf = DEMO.read_bytes()
    e = evaluate_tflite(buf, samples, DEMO_LABELS, batch=4)  # 20 images: batches of 4
    g = read_model(buf)
    t_in, out = g.tensors[g.inputs[0]], g.outputs[0]
    ref = np.stack([run_reference(buf, image_to_input(s.path, t_in, 127.5, 127.5))[out].reshape(-1)
                    for s in samples])
    assert np.array_equal(e.predictions, np.argsort(-ref, axis=1, kind="stable")[:, 0])
    assert len(set(e.predictions.tolist())) >= 2, "the fixture should make the model predict several classes"
    top5 = np.argsort(-ref, axis=1, kind="stable")[:, :5]
    assert e.top5 == pytest.approx(np.mean([s.label in row for s, row in zip(samples, top5)]))
    assert e.top1 == pytest.approx(np.mean(e.predictions == e.labels)) and e.n == 20
    assert e.confusion.sum() == 20 and e.confusion.shape == (10, 10)
    # Another batch size, and precision fp32 (the model dequantized) agree with themselves.
    assert np.array_equal(evaluate_tflite(DEMO, samples, DEMO_LABELS, batch=7, workers=1).predictions, e.predictions)
    assert np.array_equal(evaluate_tflite(DEMO, samples, DEMO_LABELS, batch=3, workers=3).predictions, e.predictions)
    fp32 = evaluate_tflite(DEMO, samples, DEMO_LABELS, precision="fp32", batch=3, workers=1)
    fp32_threads = evaluate_tflite(DEMO, samples, DEMO_LABELS, precision="fp32", batch=3, workers=3)
    assert fp32.n == 20 and np.array_equal(fp32.predictions, fp32_threads.predictions)


def test_tflite_class_count_must_match():
    from mobilegen.errors import UserInputError

    with pytest.raises(UserInputError, match="10 output classes; the labels name 3"):
        evaluate_tflite(DEMO, [], ["a", "b", "c"])


# --------------------------------------------------------------------------------------------------
# The CLI
# --------------------------------------------------------------------------------------------------
def test_cli_text_and_json(folder, tmp_path):
    r = cli("evaluate", DEMO, folder)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("top-1 ") and "confusion matrix (rows: true class, columns: predicted)" in r.stdout
    assert all(name in r.stdout for name in DEMO_LABELS)
    r = cli("evaluate", DEMO, folder, "--json", "--batch", "6")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    want_keys = {"model", "data", "split", "val_split", "seed", "precision", "mean", "std", "labels_from", "skipped",
                 "classes", "n", "top1", "top5", "confusion", "per_class", "seconds", "images_per_second"}
    assert set(out) == want_keys
    assert out["classes"] == DEMO_LABELS and out["n"] == 20 and out["split"] == "all"
    e = evaluate_tflite(DEMO, demo_samples(folder), DEMO_LABELS)
    assert out["top1"] == e.top1 and out["top5"] == e.top5 and out["confusion"] == e.confusion.tolist()
    assert [p["n"] for p in out["per_class"]] == [5, 5, 5, 5] + [0] * 6
    assert out["per_class"][4]["recall"] is None


def test_cli_split_val_is_the_data_split(folder):
    from mobilegen.data.folder import split

    data = scan(folder)
    _, val = split(data, 0.4, seed=3)
    r = cli("evaluate", DEMO, folder, "--split", "val", "--val-split", "0.4", "--seed", "3", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    e = evaluate_tflite(DEMO, demo_samples(folder, val), DEMO_LABELS)
    assert out["n"] == len(val) == 8 and out["confusion"] == e.confusion.tolist()
    assert (out["val_split"], out["seed"]) == (0.4, 3)
    other = json.loads(cli("evaluate", DEMO, folder, "--split", "val", "--val-split", "0.4", "--seed", "4", "--json").stdout)
    _, val4 = split(data, 0.4, seed=4)
    assert other["confusion"] == evaluate_tflite(DEMO, demo_samples(folder, val4), DEMO_LABELS).confusion.tolist()
    assert val4 != val


def test_cli_maps_classes_by_name(folder, tmp_path):
    # Labels in another order: the folder's classes map by name, so the result is the same.
    order = DEMO_LABELS[::-1]
    labels = tmp_path / "reversed.txt"
    labels.write_text("\n".join(order) + "\n")
    want = evaluate_tflite(DEMO, demo_samples(folder), DEMO_LABELS)
    out = json.loads(cli("evaluate", DEMO, folder, "--labels", labels, "--json").stdout)
    # The reversed names do not rename the model's outputs: output i is now called order[i]. The
    # true labels move, so the counts per true class follow the names.
    for cls in DEMO_LABELS[:4]:
        assert out["per_class"][order.index(cls)]["n"] == 5
    assert out["n"] == want.n


def test_cli_class_mapping_errors(folder, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(DEMO_LABELS[1:] + ["zebra"]) + "\n")
    r = cli("evaluate", DEMO, folder, "--labels", labels)
    assert r.exit_code != 0 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [f"error: {folder}: class folder 'tabby' not among the model's 10 labels"]
    short = tmp_path / "short.txt"
    short.write_text("\n".join(DEMO_LABELS[:4]) + "\n")
    r = cli("evaluate", DEMO, folder, "--labels", short)
    assert r.exit_code != 0 and len(r.stderr.strip().splitlines()) == 1
    assert "has 10 output classes" in r.stderr and "names 4" in r.stderr
    lone = tmp_path / "lone" / "model.tflite"  # no labels.txt beside it, no metadata
    lone.parent.mkdir()
    lone.write_bytes(DEMO.read_bytes())
    r = cli("evaluate", lone, folder)
    assert r.exit_code != 0 and "pass --labels FILE" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = cli("evaluate", DEMO, tmp_path / "nowhere")
    assert r.exit_code != 0 and len(r.stderr.strip().splitlines()) == 1


def test_console_script(folder):
    exe = Path(sys.executable).with_name("mobilegen")
    if not exe.exists():
        pytest.skip(f"no console script next to {sys.executable}")
    r = subprocess.run([str(exe), "evaluate", str(DEMO), str(folder), "--json", "--split", "val"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["n"] == 4 and out["split"] == "val" and "images/s" in r.stderr


def test_tflite_evaluation_needs_no_tensorflow(folder):
    from tests.test_core_without_tensorflow import BLOCKER

    script = BLOCKER + (
        "from mobilegen.cli.app import app\n"
        f"sys.argv = ['mobilegen', 'evaluate', {str(DEMO)!r}, {str(folder)!r}, '--json']\n"
        "try:\n    app()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "assert not any(m in sys.modules for m in ('tensorflow', 'keras', 'ai_edge_litert'))\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["n"] == 20


# --------------------------------------------------------------------------------------------------
# Keras
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keras_model(tmp_path_factory):
    require("tensorflow")
    from mobilegen.convert import tensorflow

    tensorflow()
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((24, 20, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(4, activation="softmax")(x))
    path = tmp_path_factory.mktemp("keras") / "model.keras"
    model.save(path)
    (path.parent / "labels.txt").write_text("\n".join(DEMO_LABELS[:4]) + "\n")
    return model, path


def test_keras_equals_predict(keras_model, folder):
    from mobilegen.evaluate import evaluate_keras
    from mobilegen.ir.graph import Tensor

    model, path = keras_model
    data = scan(folder)
    from mobilegen.evaluate import map_samples

    samples = map_samples(data.samples, data.classes, DEMO_LABELS[:4])
    e = evaluate_keras(model, samples, DEMO_LABELS[:4], batch=8)
    t = Tensor(0, "x", (1, 24, 20, 3), "float32")
    y = model.predict(np.concatenate([image_to_input(s.path, t, 127.5, 127.5) for s in samples]), verbose=0)
    assert np.array_equal(e.predictions, np.argsort(-y.astype(np.float64), axis=1, kind="stable")[:, 0])
    assert e.top1 == pytest.approx(np.mean(e.predictions == e.labels))
    # The CLI on the saved file (labels.txt beside it) gives the same numbers.
    out = json.loads(cli("evaluate", path, folder, "--json").stdout)
    assert out["confusion"] == e.confusion.tolist() and out["precision"] == "keras"
    r = cli("evaluate", path, folder, "--precision", "int8")
    assert r.exit_code != 0 and "--precision applies to a .tflite" in r.stderr


# --------------------------------------------------------------------------------------------------
# TFLite metadata: labels and normalization travel in the model
# --------------------------------------------------------------------------------------------------
def test_cli_takes_labels_and_normalization_from_metadata(folder, tmp_path):
    from mobilegen.tflite.metadata import write_metadata

    names = [f"{c}_m" for c in DEMO_LABELS]
    names[:4] = DEMO_LABELS[:4][::-1]  # the folder's classes sit at other outputs than in labels.txt
    model = tmp_path / "meta" / "model.tflite"  # no labels.txt beside it
    model.parent.mkdir()
    model.write_bytes(write_metadata(DEMO.read_bytes(), labels=names, mean=100.0, std=50.0))
    r = cli("evaluate", model, folder, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["labels_from"] == f"{model} metadata" and out["classes"] == names
    assert (out["mean"], out["std"]) == (100.0, 50.0)
    data = scan(folder)
    from mobilegen.evaluate import map_samples

    samples = map_samples(data.samples, data.classes, names)
    want = evaluate_tflite(DEMO, samples, names, mean=100.0, std=50.0)
    assert out["confusion"] == want.confusion.tolist()
    assert want.confusion.tolist() != evaluate_tflite(DEMO, samples, names).confusion.tolist(), (
        "the fixture should be sensitive to the normalization")
    # Explicit options win over the metadata.
    out = json.loads(cli("evaluate", model, folder, "--json", "--mean", "127.5", "--std", "127.5",
                         "--labels", ROOT / "examples" / "demo" / "labels.txt").stdout)
    assert (out["mean"], out["std"]) == (127.5, 127.5) and out["classes"] == DEMO_LABELS
