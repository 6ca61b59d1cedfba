"""TFLite model metadata (mobilegen.tflite.metadata): written without TensorFlow, read back by our
reader and by independent decoders (the `tflite` package, the flatbuffers runtime's tables, zipfile),
read from a model tflite-support's own writer produced, and used by `simulate` and `generate`.

Models: examples/demo/model.tflite (no metadata) and TFLS_MODEL below; no TensorFlow needed.
"""

from __future__ import annotations

import base64
import io
import json
import re
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import tflite
from flatbuffers.number_types import Int8Flags, Uint8Flags
from flatbuffers.table import Table
from typer.testing import CliRunner

from mobilegen.cli.app import app
from mobilegen.errors import MobilegenError, UserInputError
from mobilegen.inputs import DEFAULT_MEAN, DEFAULT_STD
from mobilegen.sim.runner import Simulator
from mobilegen.plan import build_plan
from mobilegen.tflite.metadata import (LABELS_FILE, METADATA_NAME, ModelMetadata, image_normalization,
                                       read_metadata, write_metadata)
from mobilegen.tflite.reader import read_model
from tests.harness import require

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "examples" / "demo"

# A float32 model [1][4][4][3] -> MEAN -> FULLY_CONNECTED -> SOFTMAX [1][3] (Keras, seed 0, converted
# by mobilegen.convert.quantize.convert, TF 2.21) whose metadata was written by tflite-support 0.4.4's
# own writer (metadata_writers.image_classifier.MetadataWriter.create_for_inference, per-channel mean
# [100, 110, 120], std [50, 60, 70], labels cat, dog, bird), zlib-compressed: a maintained writer's
# output, so the reader is not only checked against our own writer.
TFLS_MODEL = zlib.decompress(base64.b64decode(
    "eNqVVl1oHFUUvvuTZLPZxjUu7baNMA+hKNhtkqoUbJq/pmZJ0oQaal5kO5uZXcfOzoSdSU2kSBAFH0QqVFCQIuJDaPusRbQp"
    "2gfBVx+EBslj6YMUrFK1zfide8/sTlcjOPDtvXPuuefnu+fc2V4hxPyJ6cM5oYlekRc5kRUZyFIiibmATOEj4JOkEFeBuZQQ"
    "CaEeGheApwAsia+DIEjz/DFluzg/UZqZmB89Pjo/Kjax3snrTwDjsydPT5x6qTh7sqmTQgTkPyXjaOrWLKdUX3Z8q2aWzpl1"
    "z3Id0SWUwn0EsgmsAxeAd4E1YAVYAG7HlZ1LfwUBjT/GVV4z/f0DuUjW6lG5Z4E8cBy6F4E2zAcK/YV+jDFez8h9iq/QQj6m"
    "1vNypYdZFQ1eezCS/TXmdZ3iidgUIi3jSYkOkVYBxcnuUeAwMK2XTdvTKm5dW9R9s+rWLdPT/Fd1Hz+mVnMN08aKo9XNRbfq"
    "WG+YBXkWvuWslmy5ueCv+CKPs0hxXDHOXI1rw5NYy7AoKZKSu6eBubpb1suWbfnk061Ij8om3HlL5qJvnTPt1QJ06WyWGvqr"
    "0rbitckI8ZFlOeV3AfgcuAlc4/hyolFvN65cvrPxZe3WBr1XKidGrlzeN+Lc+n041uA3A7+qdrIcf2s9Ne1NjiFC4L0x9f49"
    "5pvA3bEUmO/kPZKHeLs8j3a2+SR+is7Ssq9ZNb1qar6rlU1t0dY9z6pYpkH5U73IVYyzpG+YKN7KKp+S52tgB0UNqeaWXwN1"
    "muXIRWWzglVN18467uuO5pk+0d08cHWmRdIcD93WxZvbqr7PNPNH3N2N/EnWJ6XtUtbO/SVknmH/q1r+9uBvH9fHRy8RN3HW"
    "I/3BwuAANcEd9pWVffG87IvwuY8+ewCIB0HQEyi9FNcX2TrAMopl7bwYOn+2uCFu/PrVyDvfXd8qvHz97rOrw1tvHxzuq2ob"
    "2rGfh06zPsX1p/7B0B/5H452vPjhN2dg3wCIi5np4ilt3HVwN/h0AmG9CeQfZkY5d7Oc+v8ucI/i5fxquuWE99o68xja2Mc2"
    "uthGr0q1k0aN84rySn0UY85iXA/RWLoisRA9YR+Q7pGHQRDuSXBs8UZ/dnMfNW3wWe/P8HyF9ycbcSk70Xjo6eD7bQuCi0Af"
    "cBWyEd77C+yQepbtdvC99tND1ZuqptHckfjIz4HtR/eRz0maQ36EenfZwU3hOrpdGjgEG56JcUb3Z5btF/51bczSvVHDaPXz"
    "foufNr5HViB/ptVP1cZlZJd0FAi6prTkurblVAcNcm3qTqttIXbLb+IerpyQsd18B+T4vLh/4tNUT/B77H/6PVQ3jWWpXbIc"
    "w1o0vWafOMGj+SX4W7sA+f7/5lHuTzC+aLFDa8TPp5D37mQnwnmUk3yj+nbmJNbgRn076H2FuQrrMhmJrz/C5W3EtFfZ23uP"
    "/y9Qn2Vkvavvc4Z5oGFuKpFUPbTn8bdeWXhu5LNdmO/ifyAtXz1coGnDrabLVt1Iz03F4rnEznvDZy12M/UPS3NTbe2KmpgY"
    "wrgt2fgb9wGsVg=="
))
TFLS_LABELS = ["cat", "dog", "bird"]

FIELDS = dict(name="tiny classifier", description="three classes", version="v7", author="helper D",
              license="Apache-2.0")


def entries(buf: bytes) -> list[tuple[str, int]]:
    """(name, buffer) of every Model.metadata entry, through the `tflite` package."""
    m = tflite.Model.GetRootAs(buf, 0)
    return [(m.Metadata(i).Name().decode(), m.Metadata(i).Buffer()) for i in range(m.MetadataLength())]


def metadata_bytes(buf: bytes) -> bytes:
    m = tflite.Model.GetRootAs(buf, 0)
    index = dict(entries(buf))[METADATA_NAME]
    return m.Buffers(index).DataAsNumpy().tobytes()


def litert_outputs(buf: bytes, x: np.ndarray) -> np.ndarray:
    litert = require("ai_edge_litert.interpreter")
    it = litert.Interpreter(model_content=buf)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


# -- reading ----------------------------------------------------------------------------------------
def test_a_model_without_metadata_reads_none():
    buf = (DEMO / "model.tflite").read_bytes()
    assert [n for n, _ in entries(buf)] == ["min_runtime_version", "CONVERSION_METADATA"]
    assert read_metadata(buf) is None


def test_reads_what_tflite_support_wrote():
    meta = read_metadata(TFLS_MODEL)
    assert meta.name == "ImageClassifier" and meta.min_parser_version == "1.0.0"
    assert meta.labels == TFLS_LABELS
    assert meta.mean == [100.0, 110.0, 120.0] and meta.std == [50.0, 60.0, 70.0]


def test_per_channel_values_that_differ_are_a_one_line_error():
    meta = read_metadata(TFLS_MODEL)
    with pytest.raises(UserInputError, match=r"normalizes per channel \(mean \[100.0, 110.0, 120.0\]\).*pass --mean and --std") as e:
        image_normalization(meta, 3, default_mean=DEFAULT_MEAN, default_std=DEFAULT_STD)
    assert "\n" not in str(e.value)
    # Explicit values win, so both given is fine; equal per-channel values are one value.
    assert image_normalization(meta, 3, mean=1.0, std=2.0, default_mean=0, default_std=1) == (1.0, 2.0)
    same = ModelMetadata(mean=[5.0, 5.0, 5.0], std=[2.0])
    assert image_normalization(same, 3, default_mean=0, default_std=1) == (5.0, 2.0)
    assert image_normalization(None, 3, default_mean=DEFAULT_MEAN, default_std=DEFAULT_STD) == (127.5, 127.5)
    assert image_normalization(same, 3, std=4.0, default_mean=0, default_std=1) == (5.0, 4.0)


# -- writing ----------------------------------------------------------------------------------------
def test_round_trip_litert_and_our_reader_unchanged():
    base = (DEMO / "model.tflite").read_bytes()
    labels = (DEMO / "labels.txt").read_text().split()
    out = write_metadata(base, labels=labels, mean=[100.25], std=[50.5], **FIELDS)
    assert read_metadata(out) == ModelMetadata(labels=labels, mean=[100.25], std=[50.5], min_parser_version="1.0.0", **FIELDS)
    # Deterministic bytes; the earlier entries are kept and ours is added once.
    assert write_metadata(base, labels=labels, mean=[100.25], std=[50.5], **FIELDS) == out
    assert [n for n, _ in entries(out)] == ["min_runtime_version", "CONVERSION_METADATA", METADATA_NAME]
    # The graph is untouched: our reader sees the same tensors and constants, LiteRT the same outputs.
    g0, g1 = read_model(base), read_model(out)
    assert [(t.name, t.shape, t.dtype) for t in g0.tensors] == [(t.name, t.shape, t.dtype) for t in g1.tensors]
    assert all((a.data is None) == (b.data is None) and (a.data is None or np.array_equal(a.data, b.data))
               for a, b in zip(g0.tensors, g1.tensors))
    assert [op.opcode for op in g0.ops] == [op.opcode for op in g1.ops]
    x = np.random.default_rng(0).uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)
    np.testing.assert_array_equal(litert_outputs(out, x), litert_outputs(base, x))


def test_rewriting_replaces_the_metadata():
    base = (DEMO / "model.tflite").read_bytes()
    labels = (DEMO / "labels.txt").read_text().split()
    first = write_metadata(base, labels=labels, mean=1.0, std=2.0, name="first")
    again = write_metadata(first, labels=labels[::-1], mean=3.0, std=4.0)
    assert [n for n, _ in entries(again)].count(METADATA_NAME) == 1
    assert tflite.Model.GetRootAs(again, 0).BuffersLength() == tflite.Model.GetRootAs(first, 0).BuffersLength()
    assert read_metadata(again) == ModelMetadata(labels=labels[::-1], mean=[3.0], std=[4.0], min_parser_version="1.0.0")
    # Rewriting is writing the original once: no stale bytes pile up.
    assert again == write_metadata(base, labels=labels[::-1], mean=3.0, std=4.0)
    assert zipfile.ZipFile(io.BytesIO(again)).namelist() == [LABELS_FILE]
    # Over tflite-support's metadata (its entry, buffer and zip) too, and the graph still runs alike.
    ours = write_metadata(TFLS_MODEL, labels=["a", "b", "c"], mean=0.0, std=1.0)
    assert [n for n, _ in entries(ours)].count(METADATA_NAME) == 1
    assert len(entries(ours)) == len(entries(TFLS_MODEL))
    assert read_metadata(ours).labels == ["a", "b", "c"] and read_metadata(ours).mean == [0.0]
    assert zipfile.ZipFile(io.BytesIO(ours)).namelist() == [LABELS_FILE]
    x = np.random.default_rng(1).uniform(-1, 1, (1, 4, 4, 3)).astype(np.float32)
    np.testing.assert_array_equal(litert_outputs(ours, x), litert_outputs(TFLS_MODEL, x))


def _field(t: Table, slot: int) -> int:
    return t.Offset(4 + 2 * slot)


def _sub(t: Table, slot: int) -> Table:
    return Table(t.Bytes, t.Indirect(t.Pos + _field(t, slot)))


def _subs(t: Table, slot: int) -> list[Table]:
    start, n = t.Vector(_field(t, slot)), t.VectorLen(_field(t, slot))
    return [Table(t.Bytes, t.Indirect(start + 4 * i)) for i in range(n)]


def _str(t: Table, slot: int) -> str:
    return t.String(t.Pos + _field(t, slot)).decode()


def test_layout_by_an_independent_decoder():
    """metadata_schema.fbs's layout, decoded with the flatbuffers runtime's plain Table (field ids in
    declaration order, a union = type + value) rather than with our reader."""
    base = (DEMO / "model.tflite").read_bytes()
    out = write_metadata(base, labels=["x"] * 10, mean=[1.0, 2.0, 3.0], std=[4.0, 5.0, 6.0], **FIELDS)
    data = metadata_bytes(out)
    assert data[4:8] == b"M001"
    root = Table(bytearray(data), struct.unpack_from("<I", data, 0)[0])
    # ModelMetadata: name 0, description 1, version 2, subgraph_metadata 3, author 4, license 5, min_parser_version 7
    assert [_str(root, s) for s in (0, 1, 2, 4, 5, 7)] == [*FIELDS.values(), "1.0.0"]
    (sub,) = _subs(root, 3)
    (inp,), (outp,) = _subs(sub, 2), _subs(sub, 3)  # SubGraphMetadata: input 2, output 3 tensor metadata
    assert _str(inp, 0) == "x" and _str(outp, 0) == "Identity"
    content = _sub(inp, 3)  # TensorMetadata.content: Content{content_properties_type 0, content_properties 1}
    assert content.Get(Uint8Flags, content.Pos + _field(content, 0)) == 2  # ImageProperties
    assert _sub(content, 1).Get(Int8Flags, _sub(content, 1).Pos + _field(_sub(content, 1), 0)) == 1  # RGB
    (unit,) = _subs(inp, 4)  # process_units; ProcessUnit{options_type 0, options 1}
    assert unit.Get(Uint8Flags, unit.Pos + _field(unit, 0)) == 1  # NormalizationOptions
    norm = _sub(unit, 1)
    floats = lambda t, s: list(struct.unpack_from(f"<{t.VectorLen(_field(t, s))}f", t.Bytes, t.Vector(_field(t, s))))
    assert floats(norm, 0) == [1.0, 2.0, 3.0] and floats(norm, 1) == [4.0, 5.0, 6.0]
    (f,) = _subs(outp, 6)  # associated_files; AssociatedFile{name 0, description 1, type 2}
    assert _str(f, 0) == LABELS_FILE and f.Get(Int8Flags, f.Pos + _field(f, 2)) == 2  # TENSOR_AXIS_LABELS
    # Buffer data is 16-byte aligned (schema.fbs: force_align 16), the labels zip stored uncompressed.
    m = tflite.Model.GetRootAs(out, 0)
    index = dict(entries(out))[METADATA_NAME]
    assert m.Buffers(index)._tab.Vector(4) % 16 == 0
    info = zipfile.ZipFile(io.BytesIO(out)).getinfo(LABELS_FILE)
    assert info.compress_type == zipfile.ZIP_STORED and info.header_offset >= len(out) - 200
    assert zipfile.ZipFile(io.BytesIO(out)).read(LABELS_FILE) == b"x\n" * 10


@pytest.mark.parametrize("kwargs,message", [
    (dict(labels=["a", "b"]), r"2 labels for the output 'Identity' of 10 classes"),
    (dict(mean=1.0), r"needs both mean and std"),
    (dict(mean=[1.0, 2.0], std=1.0), r"2 mean values for an input of 3 channels; expected 1 or 3"),
    (dict(mean=1.0, std=0.0), r"non-zero std"),
    (dict(labels=["a"] * 9 + [""]), r"label 10 \(''\) is empty"),
])
def test_write_rejects_bad_arguments(kwargs, message):
    with pytest.raises(UserInputError, match=message):
        write_metadata((DEMO / "model.tflite").read_bytes(), **kwargs)


def test_core_writes_and_reads_without_tensorflow(tmp_path: Path):
    code = ("import sys; from mobilegen.tflite.metadata import read_metadata, write_metadata; "
            f"b = write_metadata(open({str(DEMO / 'model.tflite')!r}, 'rb').read(), mean=1.0, std=2.0); "
            "assert read_metadata(b).std == [2.0]; "
            "assert not [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')], 'TF imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr


# -- malformed metadata -----------------------------------------------------------------------------
def _with_metadata_patched(buf: bytes, patch) -> bytes:
    """`buf` with its metadata buffer's bytes changed in place by patch(bytearray, start, length)."""
    m = tflite.Model.GetRootAs(buf, 0)
    index = dict(entries(buf))[METADATA_NAME]
    start = m.Buffers(index)._tab.Vector(4)
    out = bytearray(buf)
    patch(out, start, struct.unpack_from("<I", out, start - 4)[0])
    return bytes(out)


def _truncate(out: bytearray, start: int, n: int) -> None:
    struct.pack_into("<I", out, start - 4, 12)  # the vector claims 12 bytes: the tables lie beyond


def _identifier(out: bytearray, start: int, n: int) -> None:
    out[start + 4 : start + 8] = b"XXXX"


def _bad_root(out: bytearray, start: int, n: int) -> None:
    struct.pack_into("<I", out, start, n + 1000)


@pytest.mark.parametrize("patch,message", [
    (_truncate, r"outside|past the end"),
    (_identifier, r"metadata buffer has file identifier b'XXXX', expected b'M001'"),
    (_bad_root, r"outside|past the end"),
])
def test_malformed_metadata_is_a_one_line_error(patch, message):
    good = write_metadata((DEMO / "model.tflite").read_bytes(), labels=[str(i) for i in range(10)], mean=1.0, std=2.0)
    bad = _with_metadata_patched(good, patch)
    with pytest.raises(UserInputError, match=r"^model: malformed TFLite metadata: .*" + message) as e:
        read_metadata(bad)
    assert "\n" not in str(e.value)


def test_labels_file_missing_from_the_packed_files():
    good = write_metadata((DEMO / "model.tflite").read_bytes(), labels=[str(i) for i in range(10)])
    flat = good[: zipfile.ZipFile(io.BytesIO(good)).getinfo(LABELS_FILE).header_offset]
    with pytest.raises(UserInputError, match=r"labels file 'labels.txt' is named, but no readable zip"):
        read_metadata(flat)
    other = io.BytesIO()
    other.write(flat)
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("vocab.txt", "a\n")
    with pytest.raises(UserInputError, match=r"'labels.txt' is not among the model's packed files \(vocab.txt\)"):
        read_metadata(other.getvalue())


def test_truncated_model_is_a_one_line_error():
    good = write_metadata((DEMO / "model.tflite").read_bytes(), mean=1.0, std=2.0)
    for cut in (len(good) // 2, 600):
        with pytest.raises(MobilegenError) as e:
            read_metadata(good[:cut])
        assert "\n" not in str(e.value)


# -- simulate ---------------------------------------------------------------------------------------
MEAN, STD = 100.25, 50.5


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """The tiny model with our metadata (non-default mean/std and labels), with tflite-support's
    (per channel), a picture, and a labels file."""
    d = tmp_path_factory.mktemp("md")
    paths = {"ours": d / "ours.tflite", "tfls": d / "tfls.tflite", "png": d / "in.png", "labels": d / "labels.txt"}
    paths["ours"].write_bytes(write_metadata(TFLS_MODEL, labels=["red", "green", "blue"], mean=MEAN, std=STD))
    paths["tfls"].write_bytes(TFLS_MODEL)
    from PIL import Image

    rgb = (np.random.default_rng(3).uniform(0, 255, (9, 7, 3))).astype(np.uint8)
    Image.fromarray(rgb).save(paths["png"])
    paths["labels"].write_text("one\ntwo\nthree\n")
    return paths


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def expected_output(model: Path, png: Path, mean: float, std: float) -> np.ndarray:
    """The simulator on (pixel - mean) / std, computed here from Pillow's pixels."""
    from PIL import Image

    g = read_model(model.read_bytes())
    _, h, w, _ = g.tensors[g.inputs[0]].shape
    with Image.open(png) as im:
        px = np.asarray(im.convert("RGB").resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)[None]
    x = (px - np.float32(mean)) / np.float32(std)
    return Simulator(build_plan(g)).run([x])[g.outputs[0]]


def test_simulate_takes_labels_and_normalization_from_the_metadata(models, tmp_path: Path):
    r = run("simulate", models["ours"], "--input", models["png"], "-o", tmp_path / "y.npy", "--top", "3")
    assert r.exit_code == 0, r.output
    y = np.load(tmp_path / "y.npy")
    np.testing.assert_array_equal(y, expected_output(models["ours"], models["png"], MEAN, STD))
    assert not np.array_equal(y, expected_output(models["ours"], models["png"], DEFAULT_MEAN, DEFAULT_STD))
    names = [re.match(r"\d\. (\S+) \(\d\)", line)[1] for line in r.stdout.splitlines()]
    assert sorted(names) == ["blue", "green", "red"]
    assert "metadata" in r.stderr
    # The same as passing the options to a model without metadata.
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(_strip_metadata(TFLS_MODEL))
    assert read_metadata(plain.read_bytes()) is None
    r2 = run("simulate", plain, "--input", models["png"], "-o", tmp_path / "y2.npy", "--mean", MEAN, "--std", STD, "--top", "0")
    assert r2.exit_code == 0, r2.output
    np.testing.assert_array_equal(np.load(tmp_path / "y2.npy"), y)


def _strip_metadata(buf: bytes) -> bytes:
    """A model without a TFLITE_METADATA entry: rename the entry (the buffer stays, unreferenced)."""
    m = tflite.Model.GetRootAs(buf, 0)
    for i in range(m.MetadataLength()):
        e = m.Metadata(i)
        if e.Name() == METADATA_NAME.encode():
            at = e._tab.Pos + e._tab.Offset(4)
            at += struct.unpack_from("<I", buf, at)[0] + 4  # the string's bytes
            out = bytearray(buf)
            out[at : at + len(METADATA_NAME)] = b"X" * len(METADATA_NAME)
            return bytes(out)
    return buf


def test_explicit_options_win_in_simulate(models, tmp_path: Path):
    r = run("simulate", models["ours"], "--input", models["png"], "-o", tmp_path / "y.npy", "--top", "3",
            "--mean", 10, "--std", 20, "--labels", models["labels"])
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected_output(models["ours"], models["png"], 10, 20))
    assert sorted(re.match(r"\d\. (\S+)", line)[1] for line in r.stdout.splitlines()) == ["one", "three", "two"]
    # Only --std given: the mean still comes from the metadata.
    r = run("simulate", models["ours"], "--input", models["png"], "-o", tmp_path / "y.npy", "--std", 20, "--top", "0")
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected_output(models["ours"], models["png"], MEAN, 20))


def test_simulate_per_channel_metadata(models, tmp_path: Path):
    r = run("simulate", models["tfls"], "--input", models["png"], "--top", "1")
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "normalizes per channel" in r.stderr, r.output
    r = run("simulate", models["tfls"], "--input", models["png"], "--mean", 1, "--std", 2, "--top", "1", "-o", tmp_path / "y.npy")
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected_output(models["tfls"], models["png"], 1, 2))
    assert re.match(r"1\. (cat|dog|bird) ", r.stdout)


def test_simulate_malformed_metadata_is_one_line(models, tmp_path: Path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(_with_metadata_patched(models["ours"].read_bytes(), _identifier))
    r = run("simulate", bad, "--input", models["png"])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "malformed TFLite metadata" in r.stderr, r.output


# -- generate ---------------------------------------------------------------------------------------
def _float_in(path: Path, name: str) -> float:
    m = re.search(rf"{name} = (-?[0-9.e+-]+)f;", path.read_text())
    assert m, f"{name} not in {path}"
    return float(m[1])


def _project_values(out: Path) -> dict:
    android, ios = out / "android", out / "ios"
    (model_info,) = android.rglob("ModelInfo.java")
    (android_labels,) = (android / "sdk/src/main/assets").rglob("labels.json")
    (mm,) = ios.rglob("MGClassifier.mm")
    (ios_labels,) = ios.rglob("Resources/labels.json")
    return {
        "android": (_float_in(model_info, "INPUT_MEAN"), _float_in(model_info, "INPUT_STD"), json.loads(android_labels.read_text()),
                    android / "sdk/src/androidTest/assets/golden_input0.bin", android / "app/src/main/assets/sample.png"),
        "ios": (_float_in(mm, "kInputMean"), _float_in(mm, "kInputStd"), json.loads(ios_labels.read_text()),
                ios / "Tests/golden_input0.bin", ios / "App/sample.png"),
    }


def _golden_is_normalized(golden: Path, png: Path, mean: float, std: float) -> None:
    from PIL import Image

    with Image.open(png) as im:
        px = np.asarray(im.convert("RGB"), dtype=np.float32)[None]
    want = (px - np.float32(mean)) / np.float32(std)
    np.testing.assert_array_equal(np.frombuffer(golden.read_bytes(), np.float32).reshape(want.shape), want)


def test_generate_puts_the_metadata_into_both_projects(models, tmp_path: Path):
    out = tmp_path / "p"
    r = run("generate", models["ours"], "--target", "all", "--out", out)
    assert r.exit_code == 0, r.output
    for platform, (mean, std, labels, golden, png) in _project_values(out).items():
        assert (mean, std, labels) == (MEAN, STD, ["red", "green", "blue"]), platform
        _golden_is_normalized(golden, png, MEAN, STD)


def test_generate_explicit_options_win(models, tmp_path: Path):
    out = tmp_path / "p"
    r = run("generate", models["ours"], "--target", "all", "--out", out, "--mean", 0, "--std", 255, "--labels", models["labels"])
    assert r.exit_code == 0, r.output
    for platform, (mean, std, labels, golden, png) in _project_values(out).items():
        assert (mean, std, labels) == (0.0, 255.0, ["one", "two", "three"]), platform
        _golden_is_normalized(golden, png, 0.0, 255.0)


def test_generate_per_channel_metadata_and_bad_options(models, tmp_path: Path):
    r = run("generate", models["tfls"], "--target", "android", "--out", tmp_path / "a")
    # (after the progress line, as every error found while reading the model)
    assert r.exit_code == 2 and r.stderr.splitlines()[-1].startswith("error: ") and "normalizes per channel" in r.stderr, r.output
    assert r.stderr.count("error") == 1
    assert not (tmp_path / "a").exists()
    r = run("generate", models["tfls"], "--target", "ios", "--out", tmp_path / "i", "--mean", 127.5, "--std", 127.5)
    assert r.exit_code == 0, r.output
    assert _project_values_ios(tmp_path / "i")[2] == TFLS_LABELS
    r = run("generate", models["ours"], "--target", "android", "--out", tmp_path / "b", "--std", 0)
    assert r.exit_code == 2 and "--std 0.0: expected a finite number, not 0" in r.stderr, r.output


def _project_values_ios(ios: Path):
    (mm,) = ios.rglob("MGClassifier.mm")
    (labels,) = ios.rglob("Resources/labels.json")
    return _float_in(mm, "kInputMean"), _float_in(mm, "kInputStd"), json.loads(labels.read_text())
