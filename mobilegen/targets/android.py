"""`mobilegen generate --target android`: a Gradle project with the SDK module (C++ engine, GLSL
kernels, JNI, Java API, assets) and a sample app, rendered from one plan."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mobilegen import __version__
from mobilegen.dump import tensor_record
from mobilegen.errors import UserInputError
from mobilegen.export import export_plan, plan_for_precision
from mobilegen.inputs import DEFAULT_MEAN, DEFAULT_STD, image_to_input
from mobilegen.sim.runner import Simulator
from mobilegen.targets.engine_tree import engine_files
from mobilegen.targets.writer import FileAction, write_project
from mobilegen.tflite.metadata import image_normalization, metadata_labels, read_metadata
from mobilegen.tflite.reader import read_model

CPP_DIR = "sdk/src/main/cpp/"
ASSETS = "sdk/src/main/assets/"
# The SDK's assets sit under assets/<sdk name>/ (so that several generated SDKs fit in one app).
BLOB_ASSET = "model.mgw"
LABELS_ASSET = "labels.json"
TENSORS_ASSET = "tensors.json"
# Files that must be executable in the generated project.
EXECUTABLES = ("gradlew",)
TEST_ASSETS = "sdk/src/androidTest/assets/"
SAMPLE_IMAGE = "app/src/main/assets/sample.png"
# The golden test's tolerance for float kernels, max|a - b| / max|b| over the output:
# fp32: DESIGN.md's numerical contract. fp16: each kernel is within 1e-3 of the simulator given the
# same inputs (tests/test_fp16.py), but over a whole MobileNet values that round to the neighbouring
# float16 spread (up to 4e-3 on llvmpipe), and a phone's float32 arithmetic differs further.
FLOAT_TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2}


@dataclass
class AndroidOptions:
    package: str = "com.example.mobilegen"
    # The SDK's name inside an app: lib<name>.so, assets/<name>/, <cacheDir>/<name>/ (default:
    # derived from the package, see android_files.default_sdk_name).
    name: str | None = None
    app_name: str = "Mobilegen Classifier"
    labels: list[str] | None = None  # default: the model's metadata, else class_<i>
    precision: str | None = None  # default: the model's own (int8 for integer models, fp32 for float)
    # Image normalization (pixel - mean) / std; default: the model's metadata, else DEFAULT_MEAN/STD.
    mean: float | None = None
    std: float | None = None
    # Precision fp16: the float tensors stored in float32 (TFLite tensor indices, from a precision
    # plan: mobilegen.precision_plan), and that plan's JSON, written as precision_plan.json.
    keep_fp32: frozenset[int] = frozenset()
    precision_plan: str | None = None


def sample_png(h: int, w: int) -> bytes:
    """The bundled sample picture, as deterministic PNG bytes."""
    from PIL import Image

    yy, xx = np.mgrid[0:h, 0:w]
    yy, xx = yy / max(h, 1), xx / max(w, 1)
    r = 0.5 + 0.5 * np.sin(12 * xx + 3 * yy)
    g = np.clip(1.2 - 2.5 * np.hypot(xx - 0.55, yy - 0.45), 0, 1)
    rgb = (np.stack([r, g, yy], -1) * 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def check_android_model(g) -> None:
    """What the Android SDK asks of a model beyond the engine (export): its first input is the
    picture classify(Bitmap) feeds, [1][h][w][1 or 3]. A one-line UserInputError otherwise."""
    t = g.tensors[g.inputs[0]]
    if len(t.shape) != 4 or t.shape[3] not in (1, 3):
        raise UserInputError(f"the Android SDK takes images: the model input {t.describe()} is not [1][h][w][1 or 3]")


def golden_input(t, seed: int) -> np.ndarray:
    """Deterministic values for a graph input that is not the sample picture: uniform over
    [-1, 1] for float inputs, the whole range for 8-bit ones."""
    rng = np.random.default_rng(seed)
    if t.dtype == "float32":
        return rng.uniform(-1.0, 1.0, t.shape).astype(np.float32)
    info = np.iinfo(t.dtype)
    return rng.integers(info.min, info.max, t.shape, endpoint=True).astype(t.dtype)


def class_labels(labels: list[str] | None, classes: int) -> list[str]:
    """The SDK's labels: the user's (one per class, else a one-line error) or class_<i>."""
    labels = list(labels) if labels is not None else [f"class_{i}" for i in range(classes)]
    if len(labels) != classes:
        raise UserInputError(f"{len(labels)} labels for a model with {classes} classes")
    return labels


def preprocessing(model_bytes: bytes, model_name: str, labels: list[str] | None, mean: float | None,
                  std: float | None, channels: int, classes: int) -> tuple[list[str], float, float]:
    """The SDK's (labels, mean, std): each given value wins, else the model's TFLite metadata
    (mobilegen.tflite.metadata), else class_<i> and DEFAULT_MEAN / DEFAULT_STD."""
    meta = read_metadata(model_bytes, source=model_name)
    if labels is None:
        labels = metadata_labels(meta, classes, source=model_name)
    mean, std = image_normalization(meta, channels, mean=mean, std=std, default_mean=DEFAULT_MEAN,
                                    default_std=DEFAULT_STD, source=model_name)
    return class_labels(labels, classes), mean, std


def golden_files(plan, png: bytes, directory: str, mean: float = DEFAULT_MEAN, std: float = DEFAULT_STD) -> dict[str, bytes]:
    """The golden files of a project's on-device test, under `directory`: the sample picture
    (normalized with the SDK's mean and std) as the first input (other inputs of a multi-input
    model: seeded random values) through the simulator, golden_input<n>.bin for every input and
    golden_output<n>.bin for every output."""
    g = plan.graph
    xs = [image_to_input(io.BytesIO(png), g.tensors[g.inputs[0]], mean, std)]
    xs += [golden_input(g.tensors[i], seed) for seed, i in enumerate(g.inputs[1:], 1)]
    values = Simulator(plan).run(xs)
    files = {f"{directory}golden_input{n}.bin": np.ascontiguousarray(x).tobytes() for n, x in enumerate(xs)}
    files.update({f"{directory}golden_output{n}.bin": np.ascontiguousarray(values[i]).tobytes()
                  for n, i in enumerate(g.outputs)})
    return files


def precision_files(files: dict, recorded: dict, plan, precision_plan: str | None) -> None:
    """A precision plan's part of a project (both platforms): precision_plan.json at the project
    root (the analysis, mobilegen.precision_plan) and the float tensors kept in float32 in the
    provenance options. Projects without one are unchanged."""
    from mobilegen.plan import stored_float_tensors
    from mobilegen.precision_plan import PLAN_FILE

    if precision_plan is not None:
        files[PLAN_FILE] = precision_plan
    # The stored tensors only (not folded constants), so the list is a valid keep set again.
    kept = sorted(plan.fp32_tensors & stored_float_tensors(plan))
    if kept:
        recorded["fp32_tensors"] = kept


def android_project(model_bytes: bytes, model_name: str, opts: AndroidOptions) -> tuple[dict[str, str | bytes], dict]:
    """(relative path -> content, options recorded in the provenance file)."""
    from mobilegen.render.escape import package_path, validate_package
    from mobilegen.targets.android_files import android_files, default_sdk_name, validate_sdk_name

    validate_package(opts.package)
    name = validate_sdk_name(opts.name) if opts.name is not None else default_sdk_name(opts.package)
    blob_asset, labels_asset, tensors_asset = (f"{name}/{a}" for a in (BLOB_ASSET, LABELS_ASSET, TENSORS_ASSET))
    g = read_model(model_bytes, source=model_name)
    plan, precision = plan_for_precision(g, opts.precision, keep_fp32=opts.keep_fp32)
    em = export_plan(plan, precision)
    check_android_model(g)
    t_in, t_out = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    classes = t_out.size
    _, h, w, c = t_in.shape
    labels, mean, std = preprocessing(model_bytes, model_name, opts.labels, opts.mean, opts.std, c, classes)

    png = sample_png(h, w)
    files: dict[str, str | bytes] = golden_files(plan, png, TEST_ASSETS, mean, std)
    files[SAMPLE_IMAGE] = png

    sha = hashlib.sha256(model_bytes).hexdigest()
    for rel, text in engine_files(em, model_name, model_bytes).items():
        files[CPP_DIR + rel] = text
    files[ASSETS + blob_asset] = em.blob
    files[ASSETS + labels_asset] = json.dumps(labels, ensure_ascii=False, indent=1) + "\n"
    # The index of the engine's debug dumps: the graph inputs first (the engine writes them, so a
    # dump taken on a device can be replayed in the simulator), marked as inputs, then every
    # tensor a kernel writes.
    dumped = [tensor_record(plan.graph, i) | {"input": True} for i in g.inputs]
    dumped += [tensor_record(plan.graph, t.index) for t in em.tensors if t.index not in g.inputs]
    files[ASSETS + tensors_asset] = json.dumps({"tensors": dumped}, indent=1) + "\n"

    def qinfo(t):
        return {"scale": t.quant.s if t.quant else 0.0, "zero_point": t.quant.zp if t.quant else 0}

    def spec(i):
        t = g.tensors[i]
        return {"name": t.name, "shape": list(t.shape), "dtype": t.dtype, **qinfo(t)}

    ctx = {
        "package": opts.package,
        "package_path": package_path(opts.package),
        "sdk_name": name,
        "app_name": opts.app_name,
        "labels": labels,
        "model_name": model_name,
        "input": {"h": h, "w": w, "c": c, "dtype": t_in.dtype, "mean": mean, "std": std, **qinfo(t_in)},
        "output": {"classes": classes, "dtype": t_out.dtype, **qinfo(t_out)},
        "inputs": [spec(i) for i in g.inputs],
        "outputs": [spec(i) for i in g.outputs],
        "precision": em.precision,
        "tool_version": __version__,
        "model_sha256": sha,
        "blob_asset": blob_asset,
        "labels_asset": labels_asset,
        "tensors_asset": tensors_asset,
        "float_tolerance": FLOAT_TOLERANCE.get(em.precision),
    }
    for rel, content in android_files(ctx).items():
        if rel in files:
            raise AssertionError(f"{rel} is generated twice")
        files[rel] = content
    recorded = {"target": "android", "package": opts.package, "name": name, "app_name": opts.app_name, "precision": em.precision,
                "labels": labels, "model": model_name}
    precision_files(files, recorded, plan, opts.precision_plan)
    return files, recorded


def generate_android(model: Path, out: Path, opts: AndroidOptions, *, force: bool = False, dry_run: bool = False) -> list[FileAction]:
    data = Path(model).read_bytes()
    files, recorded = android_project(data, Path(model).name, opts)
    actions = write_project(
        out, files, tool_version=__version__, model_sha256=hashlib.sha256(data).hexdigest(), options=recorded,
        force=force, dry_run=dry_run,
    )
    if not dry_run:
        # The writer records contents, not modes: `./gradlew` must be executable as delivered.
        for rel in EXECUTABLES:
            target = Path(out) / rel
            if target.is_file():
                target.chmod(target.stat().st_mode | 0o111)
    return actions
