"""`mobilegen train`: a tiny dataset through every path (from scratch, bottleneck cache, transfer
learning from given base weights, fine-tuning the top blocks), the outputs, the cache's hits and
misses, corrupt images, one-line errors, and the written model converting to int8.

Everything trains MobileNet V1 0.25 at 96 px on a few dozen 32 px images for one or two epochs:
the figures are not the point, what changes (and what must not) is.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.harness import require

require("tensorflow")

from mobilegen.cli.app import app  # noqa: E402
from mobilegen.train import TrainConfig, train  # noqa: E402

RES = 96
COLOURS = {"blue": (40, 60, 220), "green": (40, 200, 60), "red": (220, 50, 40)}


def make_folder(root: Path, per_class: int = 8, size: int = 32, seed: int = 0, corrupt: int = 0) -> Path:
    """One class per colour: a blob of that colour on a random grey background (learnable in a
    few steps); `corrupt` undecodable .png files added to the first class."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    for name, colour in COLOURS.items():
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = np.full((size, size, 3), rng.integers(60, 180), np.float64) + rng.normal(0, 12, (size, size, 3))
            cy, cx = rng.uniform(0.3, 0.7, 2) * size
            r = rng.uniform(0.2, 0.35) * size
            blob = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
            img[blob] = colour
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(d / f"{i:03d}.png")
    first = root / sorted(COLOURS)[0]
    for i in range(corrupt):
        (first / f"broken{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return root


def config(data: Path, out: Path, **kw) -> TrainConfig:
    kw.setdefault("epochs", 2)
    kw.setdefault("batch_size", 8)
    kw.setdefault("resolution", RES)
    kw.setdefault("verbose", False)
    return TrainConfig(data=data, out=out, **kw)


def base_weights_of(path: Path) -> dict[str, list[np.ndarray]]:
    """{layer name: weights} of a base network loaded from a .weights.h5 file."""
    from mobilegen.train.model import build_base

    base = build_base("v1", 0.25, RES)
    base.load_weights(str(path))
    return {layer.name: [np.asarray(w) for w in layer.get_weights()] for layer in base.layers if layer.weights}


def saved_base(model_path: Path) -> dict[str, list[np.ndarray]]:
    import keras

    base = keras.models.load_model(model_path).get_layer("base")
    return {layer.name: [np.asarray(w) for w in layer.get_weights()] for layer in base.layers if layer.weights}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_folder(tmp_path_factory.mktemp("data"), corrupt=1)


@pytest.fixture(scope="module")
def scratch(data, tmp_path_factory):
    """From scratch, 2 epochs: also the source of base weights for the transfer tests."""
    lines: list[str] = []
    r = train(config(data, tmp_path_factory.mktemp("scratch"), epochs=2), progress=lines.append)
    return r, lines


def test_scratch_writes_model_labels_metrics_and_logs(scratch):
    from mobilegen.train.events import read_scalars

    r, lines = scratch
    for p in (r.model, r.labels, r.metrics_path, r.base_weights):
        assert p.is_file(), p
    assert r.labels.read_text().splitlines() == sorted(COLOURS)
    m = json.loads(r.metrics_path.read_text())
    assert m == json.loads(json.dumps(r.metrics))
    assert (m["classes"], m["arch"], m["alpha"], m["resolution"]) == (sorted(COLOURS), "v1", 0.25, RES)
    assert (m["mean"], m["std"], m["seed"], m["val_split"], m["mode"]) == (127.5, 127.5, 0, 0.2, "scratch")
    assert m["epochs_run"] == 2 and len(m["phases"][0]["history"]) == 2
    assert m["images"] == {"train": 18, "validation": 6, "skipped": 1}
    assert m["skipped"][0]["path"].endswith("broken0.png")
    assert any("skipped 1 corrupt image" in ln and "broken0.png" in ln for ln in lines)
    assert m["bottleneck_cache"] is None and len(m["data_hash"]) == 64
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert np.isfinite(m["final"][key])
    logs = read_scalars(r.logs)
    assert [s for s, _ in logs["train"]["epoch_loss"]] == [1, 2]
    assert [s for s, _ in logs["validation"]["epoch_accuracy"]] == [1, 2]
    assert [v for _, v in logs["train"]["epoch_loss"]] == pytest.approx([h["loss"] for h in m["phases"][0]["history"]])


def test_saved_model_converts_to_int8_and_runs(scratch, data):
    import keras
    from ai_edge_litert.interpreter import Interpreter

    from mobilegen.convert.quantize import convert
    from mobilegen.data import load_batch, resolve_data

    model = keras.models.load_model(scratch[0].model)
    assert tuple(model.input.shape) == (None, RES, RES, 3) and tuple(model.output.shape) == (None, 3)
    x = load_batch([s.path for s in resolve_data(data).samples[:8]], RES)
    buf = convert(model, "int8", calibration=x)
    interp = Interpreter(model_content=buf)
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0], interp.get_output_details()[0]
    assert i["dtype"] == np.float32 and list(o["shape"]) == [1, 3]
    interp.set_tensor(i["index"], x[:1])
    interp.invoke()
    y = interp.get_tensor(o["index"])[0]
    assert y.sum() == pytest.approx(1.0, abs=0.05)
    # int8 agrees with Keras on the probabilities within quantization noise
    assert np.abs(y - np.asarray(model(x[:1]))[0]).max() < 0.15


def test_bottleneck_cache_hits_then_misses_when_data_changes(scratch, data, tmp_path):
    from mobilegen.data import resolve_data, split

    weights = scratch[0].base_weights
    cache = tmp_path / "cache"
    folder = tmp_path / "data"
    shutil.copytree(data, folder)
    lines: list[str] = []
    first = train(config(folder, tmp_path / "a", base_weights=weights, cache_dir=cache, epochs=1), progress=lines.append)
    assert {k: v["hit"] for k, v in first.metrics["bottleneck_cache"].items()} == {"train": False, "validation": False}
    assert "bottleneck cache: miss (train" in "\n".join(lines)
    lines.clear()
    second = train(config(folder, tmp_path / "b", base_weights=weights, cache_dir=cache, epochs=1), progress=lines.append)
    assert {k: v["hit"] for k, v in second.metrics["bottleneck_cache"].items()} == {"train": True, "validation": True}
    assert "bottleneck cache: hit (train" in "\n".join(lines)
    assert (cache / first.metrics["bottleneck_cache"]["train"]["key"] / "manifest.json").is_file()
    # the same bottlenecks, the same head: a hit trains exactly as the miss did
    assert second.metrics["weights_sha256"] == first.metrics["weights_sha256"]
    # one training image's pixels change: the train entry misses, the validation one still hits
    train_s, _ = split(resolve_data(folder), 0.2, 0)
    from PIL import Image

    Image.new("RGB", (32, 32), (0, 0, 0)).save(train_s[0].path)
    third = train(config(folder, tmp_path / "c", base_weights=weights, cache_dir=cache, epochs=1), progress=lines.append)
    assert {k: v["hit"] for k, v in third.metrics["bottleneck_cache"].items()} == {"train": False, "validation": True}


def test_base_weights_are_loaded_and_only_the_head_trains(scratch, data, tmp_path):
    import keras

    from mobilegen.train.model import build_base

    weights = scratch[0].base_weights
    r = train(config(data, tmp_path / "t", base_weights=weights, cache_dir=tmp_path / "cache", epochs=2))
    given = base_weights_of(weights)
    saved = saved_base(r.model)
    assert saved.keys() == given.keys()
    for name in given:
        for a, b in zip(saved[name], given[name]):
            np.testing.assert_array_equal(a, b, err_msg=name)
    # the saved base computes what a Keras MobileNet built with those weights computes
    x = np.random.default_rng(1).uniform(-1, 1, (2, RES, RES, 3)).astype(np.float32)
    ref = build_base("v1", 0.25, RES)
    ref.load_weights(str(weights))
    got = keras.models.load_model(r.model).get_layer("base")(x, training=False)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(ref(x, training=False)))
    # ... and the head did train
    head0 = keras.models.load_model(scratch[0].model).get_layer("head_dense").get_weights()[0]
    head1 = keras.models.load_model(r.model).get_layer("head_dense").get_weights()[0]
    assert head0.shape == head1.shape and not np.array_equal(head0, head1)
    assert r.metrics["mode"] == "transfer" and [p["name"] for p in r.metrics["phases"]] == ["head"]


def test_fine_tune_changes_exactly_the_top_blocks(scratch, data, tmp_path):
    from mobilegen.train.model import block_of

    weights = scratch[0].base_weights
    n = 2
    r = train(config(data, tmp_path / "f", base_weights=weights, cache_dir=tmp_path / "cache", epochs=1,
                     fine_tune=n, fine_tune_epochs=1, fine_tune_learning_rate=1e-3))
    given, saved = base_weights_of(weights), saved_base(r.model)
    changed = {name for name in given if any(not np.array_equal(a, b) for a, b in zip(saved[name], given[name]))}
    top = {name for name in given if (block_of("v1", name) or 0) > 13 - n}
    assert top and changed == top
    assert [p["name"] for p in r.metrics["phases"]] == ["head", "fine_tune"]
    assert r.metrics["phases"][1]["blocks"] == n


def test_block_counting():
    from mobilegen.train.model import block_of, blocks, build_base

    v1 = blocks(build_base("v1", 0.25, RES), "v1")
    assert sorted(v1) == list(range(1, 14))
    assert {layer.name for layer in v1[13]} >= {"conv_dw_13", "conv_dw_13_bn", "conv_pw_13", "conv_pw_13_bn"}
    assert block_of("v1", "conv1") is None
    v2 = blocks(build_base("v2", 0.35, RES), "v2")
    assert sorted(v2) == list(range(1, 18))
    assert "expanded_conv_depthwise" in {layer.name for layer in v2[1]}
    assert "block_16_project" in {layer.name for layer in v2[17]}


@pytest.fixture
def runner():
    return CliRunner()


def _one_line_error(result, *needles):
    assert result.exit_code == 2, result.output
    # progress lines may come first; the error itself is one line, the last
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error")]
    err = result.stderr.strip().splitlines()[-1]
    assert errors == [err] and err.startswith("error: "), result.stderr
    for n in needles:
        assert n in err, err


def test_cli_errors_are_one_line(runner, tmp_path):
    data = make_folder(tmp_path / "d", per_class=2)
    out = str(tmp_path / "o")
    _one_line_error(runner.invoke(app, ["train", str(data), "--out", out, "--alpha", "0.3"]), "--alpha 0.3")
    _one_line_error(runner.invoke(app, ["train", str(data), "--out", out, "--resolution", "100"]), "--resolution 100")
    _one_line_error(runner.invoke(app, ["train", str(data), "--out", out, "--fine-tune", "2"]), "--base-weights")
    (data / "empty").mkdir()
    _one_line_error(runner.invoke(app, ["train", str(data), "--out", out]), "empty", "empty class folder")
    single = tmp_path / "single"
    shutil.copytree(data / "red", single / "red")
    _one_line_error(runner.invoke(app, ["train", str(single), "--out", out]), "one class")
    bad = tmp_path / "bad.weights.h5"
    bad.write_bytes(b"not hdf5")
    shutil.rmtree(data / "empty")
    _one_line_error(runner.invoke(app, ["train", str(data), "--out", out, "--base-weights", str(bad), "--resolution", "96"]),
                    "--base-weights")


def test_legacy_h5_base_weights_load(scratch, tmp_path):
    """Keras' published `mobilenet_*_tf_no_top.h5` files are the legacy HDF5 layout: one written
    the same way (keras' legacy writer) loads into the base, weight for weight."""
    import h5py
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    from mobilegen.train.model import build_base, load_base_weights

    given = build_base("v1", 0.25, RES)
    given.load_weights(str(scratch[0].base_weights))
    legacy = tmp_path / "mobilenet_2_5_96_tf_no_top.h5"
    with h5py.File(legacy, "w") as f:
        save_weights_to_hdf5_group(f, given)
    loaded = build_base("v1", 0.25, RES)
    load_base_weights(loaded, legacy)
    for a, b in zip(loaded.get_weights(), given.get_weights()):
        np.testing.assert_array_equal(a, b)
