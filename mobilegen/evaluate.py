"""Accuracy of a classifier over labelled images: top-1, top-5 and a confusion matrix, for a Keras
model (Keras predict) or a .tflite model (the bit-exact simulator, n images per batch).

Images reach a .tflite model exactly as `mobilegen simulate` feeds them (mobilegen.inputs.
image_to_input: decode, RGB or L, bilinear resize to the input's [h][w], (pixel - mean) / std,
quantized with the input's scale and zero point for an int8/uint8 input), and a Keras model the
same float pixels (what mobilegen.data.images.load_batch gives), so the two paths and LiteRT see
identical inputs.

Ranking: classes are ordered by score, ties by the lower class index (a stable sort, as
mobilegen.inputs.top_k), so the tied scores of an 8-bit softmax give a definite prediction.
Top-5 means "the true class is among the first min(5, classes) ranks".

Samples carry labels that index `classes`, the model's output classes in output order; mapping a
folder's classes to them by name is `map_samples` (the CLI and build use it).

The .tflite path needs no TensorFlow; the Keras path imports it when called.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mobilegen.errors import UserInputError
from mobilegen.inputs import DEFAULT_MEAN, DEFAULT_STD, dequantize, image_to_input
from mobilegen.ir.graph import Tensor

TOP_K = 5
DEFAULT_BATCH = 32
MAX_WORKERS = 8  # threads evaluate_tflite uses at most (memory: each holds a batch in flight)
# Above this many classes a confusion matrix is unreadable on a terminal: list the largest
# off-diagonal cells instead.
MATRIX_MAX_CLASSES = 12
TOP_CONFUSIONS = 10
NAME_WIDTH = 10  # column width for class names in the printed matrix (longer names are cut)


@dataclass
class Evaluation:
    classes: list[str]
    n: int
    top1: float
    top5: float
    confusion: np.ndarray  # [true][predicted] counts
    predictions: np.ndarray  # [n] predicted label index (in `classes` order)
    labels: np.ndarray  # [n] true label index
    seconds: float
    images_per_second: float

    def to_json(self) -> dict:
        """A JSON-serializable summary (no per-sample arrays)."""
        return {
            "classes": list(self.classes),
            "n": self.n,
            "top1": self.top1,
            "top5": self.top5,
            "confusion": self.confusion.tolist(),
            "per_class": [
                {"class": c, "n": int(self.confusion[i].sum()),
                 "correct": int(self.confusion[i, i]),
                 "recall": float(self.confusion[i, i] / self.confusion[i].sum()) if self.confusion[i].sum() else None}
                for i, c in enumerate(self.classes)
            ],
            "seconds": self.seconds,
            "images_per_second": self.images_per_second,
        }


# --------------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------------
def ranks(scores: np.ndarray) -> np.ndarray:
    """[n][classes] scores -> [n][classes] class indices, best first, ties by the lower index."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), axis=1, kind="stable")


def score(scores: np.ndarray, labels: np.ndarray, classes: list[str], seconds: float) -> Evaluation:
    """An Evaluation from [n][classes] scores and the [n] true labels."""
    scores = np.asarray(scores)
    labels = np.asarray(labels, dtype=np.int64)
    n, c = len(labels), len(classes)
    if scores.shape != (n, c):
        raise ValueError(f"scores {list(scores.shape)} for {n} samples of {c} classes")
    order = ranks(scores) if n else np.zeros((0, c), np.int64)
    predictions = order[:, 0] if n else np.zeros(0, np.int64)
    in_top5 = (order[:, : min(TOP_K, c)] == labels[:, None]).any(axis=1) if n else np.zeros(0, bool)
    confusion = np.zeros((c, c), np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    return Evaluation(
        classes=list(classes), n=n,
        top1=float((predictions == labels).mean()) if n else 0.0,
        top5=float(in_top5.mean()) if n else 0.0,
        confusion=confusion, predictions=predictions, labels=labels,
        seconds=seconds, images_per_second=n / seconds if seconds > 0 else float("inf"),
    )


def agreement(a: Evaluation, b: Evaluation) -> float:
    """Share of samples on which a and b predict the same class (both over the same samples)."""
    if a.n != b.n or not np.array_equal(a.labels, b.labels):
        raise ValueError(f"agreement needs evaluations of the same samples ({a.n} vs {b.n} images)")
    return float((a.predictions == b.predictions).mean()) if a.n else 1.0


# --------------------------------------------------------------------------------------------------
# Samples and labels
# --------------------------------------------------------------------------------------------------
def map_samples(samples, folder_classes: list[str], classes: list[str], where: str = "DATA") -> list:
    """`samples` (labels indexing folder_classes) relabelled to index `classes` by class name.
    A folder class the model does not know is a one-line UserInputError."""
    from mobilegen.data.folder import Sample

    index = {c: i for i, c in enumerate(classes)}
    unknown = [c for c in folder_classes if c not in index]
    if unknown:
        shown = ", ".join(repr(c) for c in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise UserInputError(f"{where}: class folder{'s' if len(unknown) > 1 else ''} {shown} not among the model's {len(classes)} labels")
    return [Sample(s.path, index[folder_classes[s.label]]) for s in samples]


def _check_labels(samples, classes: list[str]) -> np.ndarray:
    labels = np.array([s.label for s in samples], dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
        raise UserInputError(f"a sample's label is outside the {len(classes)} classes")
    return labels


def _check_classes(n_outputs: int, classes: list[str], what: str) -> None:
    if n_outputs != len(classes):
        raise UserInputError(f"{what} has {n_outputs} output classes; the labels name {len(classes)}")


# --------------------------------------------------------------------------------------------------
# .tflite through the simulator
# --------------------------------------------------------------------------------------------------
def tflite_normalization(buf: bytes, mean=None, std=None, source: str = "model") -> tuple[float, float]:
    """(mean, std) for feeding images to the model, chosen as `mobilegen simulate` chooses them
    (mobilegen.tflite.metadata.image_normalization): each given value wins, else the model's
    metadata, else DEFAULT_MEAN / DEFAULT_STD."""
    from mobilegen.tflite.metadata import image_normalization, read_metadata
    from mobilegen.tflite.reader import read_model

    if mean is not None and std is not None:
        return float(mean), float(std)
    g = read_model(buf)
    t_in = g.tensors[g.inputs[0]]
    return image_normalization(read_metadata(buf, source=source), t_in.shape[-1] if t_in.shape else 1, mean=mean, std=std,
                               default_mean=DEFAULT_MEAN, default_std=DEFAULT_STD, source=source)


def tflite_labels(buf: bytes, source: str = "model") -> list[str] | None:
    """The class names in the model's metadata (as many as the first output has classes), or None."""
    from mobilegen.tflite.metadata import metadata_labels, read_metadata
    from mobilegen.tflite.reader import read_model

    meta = read_metadata(buf, source=source)
    if meta is None or meta.labels is None:
        return None
    g = read_model(buf)
    return metadata_labels(meta, g.tensors[g.outputs[0]].size, source=source)


def _model_bytes(model_bytes_or_path) -> tuple[bytes, str]:
    if isinstance(model_bytes_or_path, (bytes, bytearray, memoryview)):
        return bytes(model_bytes_or_path), "the model"
    path = Path(model_bytes_or_path)
    if not path.is_file():
        raise UserInputError(f"{path}: no such model file")
    return path.read_bytes(), str(path)


def load_images(samples, t: Tensor, mean, std) -> np.ndarray:
    """[n][...] inputs for tensor t ([1][h][w][c]) from the samples' images, each exactly what
    `mobilegen simulate --input IMAGE` feeds (image_to_input)."""
    if not samples:
        return np.zeros((0, *t.shape[1:]), dtype=t.dtype)
    return np.concatenate([image_to_input(Path(s.path), t, mean, std) for s in samples])


def default_workers(precision: str = "int8") -> int:
    """Threads for evaluate_tflite at `precision`: for int8, one per core (numpy releases the GIL
    in its integer loops), at most MAX_WORKERS; for fp16/fp32, one: the float kernels call BLAS
    once per image and layer, BLAS already uses the cores, and measured here two threads were no
    faster (benchmarks/EVALUATE_RESULTS.md)."""
    if precision != "int8":
        return 1
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


def evaluate_tflite(model_bytes_or_path, samples, classes, *, mean=None, std=None, batch=DEFAULT_BATCH,
                    precision=None, progress=None, workers=None) -> Evaluation:
    """Top-1 / top-5 / confusion of a .tflite classifier (bytes or a path) run by the simulator,
    `batch` images at a time (Simulator.outputs_batch: bit-identical to one image at a time), with
    `workers` threads each decoding and running its own batches (default: default_workers() of the
    precision; the images are independent, so the results do not depend on it).
    mean/std: None takes the model's metadata, else 127.5. precision: as `simulate --precision`
    (int8, fp16, fp32; None: the model's own). progress: an optional callable(str) for a line per batch."""
    from mobilegen.export import plan_for_precision
    from mobilegen.sim.runner import Simulator
    from mobilegen.tflite.reader import read_model

    buf, what = _model_bytes(model_bytes_or_path)
    if batch < 1:
        raise UserInputError(f"batch size {batch}: expected at least 1")
    g = read_model(buf)
    if len(g.inputs) != 1:
        raise UserInputError(f"{what} has {len(g.inputs)} inputs; evaluating needs a model with one image input")
    plan, used = plan_for_precision(g, getattr(precision, "value", precision))
    t_in, t_out = plan.graph.tensors[plan.graph.inputs[0]], plan.graph.tensors[plan.graph.outputs[0]]
    _check_classes(t_out.size, classes, what)
    labels = _check_labels(samples, classes)
    mean, std = tflite_normalization(buf, mean, std, source=what)
    sim = Simulator(plan)
    scores = np.zeros((len(samples), len(classes)), np.float64)
    done, lock = [0], threading.Lock()

    def run(start: int) -> None:
        chunk = samples[start : start + batch]
        y = sim.outputs_batch([load_images(chunk, t_in, mean, std)])[0]
        scores[start : start + len(chunk)] = dequantize(y, t_out).reshape(len(chunk), -1)
        with lock:
            done[0] += len(chunk)
            if progress is not None:
                progress(f"  {done[0]}/{len(samples)} images")

    t0 = time.perf_counter()
    starts = list(range(0, len(samples), batch))
    if starts:
        run(starts[0])  # alone first: the simulator prepares its per-kernel operands once
    workers = default_workers(used) if workers is None else max(1, int(workers))
    if workers == 1 or len(starts) <= 2:
        for start in starts[1:]:
            run(start)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, starts[1:]))  # list(): re-raises a worker's exception here
    return score(scores, labels, classes, time.perf_counter() - t0)


# --------------------------------------------------------------------------------------------------
# Keras
# --------------------------------------------------------------------------------------------------
def keras_resolution(model) -> tuple[int, int, int]:
    """(h, w, c) of a Keras image model's input [None or 1][h][w][c]."""
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or any(d is None for d in shape[1:]) or shape[3] not in (1, 3):
        raise UserInputError(f"the Keras model's input is {list(shape)}; expected an image input [n][h][w][1 or 3]")
    return int(shape[1]), int(shape[2]), int(shape[3])


def evaluate_keras(model_or_path, samples, classes, *, resolution=None, mean=DEFAULT_MEAN, std=DEFAULT_STD,
                   batch=DEFAULT_BATCH, progress=None) -> Evaluation:
    """Top-1 / top-5 / confusion of a Keras classifier (a model or a .keras/.h5 path) by
    model.predict, `batch` images at a time, on the pixels the simulator gets for a float input.
    resolution: None takes the model's input [h][w]; an int forces a square input of that size."""
    from mobilegen.convert import tensorflow

    tensorflow()  # imports TF quietly (and fails with install advice when it is missing)
    import keras

    model = model_or_path
    if isinstance(model_or_path, (str, Path)):
        path = Path(model_or_path)
        if not path.exists():
            raise UserInputError(f"{path}: no such Keras model")
        model = keras.models.load_model(path, compile=False)
    if batch < 1:
        raise UserInputError(f"batch size {batch}: expected at least 1")
    h, w, c = keras_resolution(model)
    if resolution is not None:
        h = w = int(resolution)
    t_in = Tensor(index=0, name="image", shape=(1, h, w, c), dtype="float32")
    labels = _check_labels(samples, classes)
    scores = np.zeros((len(samples), len(classes)), np.float64)
    t0 = time.perf_counter()
    for start in range(0, len(samples), batch):
        chunk = samples[start : start + batch]
        y = np.asarray(model.predict(load_images(chunk, t_in, mean, std), batch_size=batch, verbose=0))
        y = y.reshape(len(chunk), -1)
        _check_classes(y.shape[1], classes, "the Keras model")
        scores[start : start + len(chunk)] = y
        if progress is not None:
            progress(f"  {start + len(chunk)}/{len(samples)} images")
    if not samples:
        _check_classes(int(np.prod(model.outputs[0].shape[1:])), classes, "the Keras model")
    return score(scores, labels, classes, time.perf_counter() - t0)


# --------------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------------
def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def _cut(name: str, width: int = NAME_WIDTH) -> str:
    return name if len(name) <= width else name[: width - 1] + "~"


def format_evaluation(e: Evaluation) -> str:
    """Top-1 / top-5, then the confusion matrix (rows: true class, columns: predicted) with class
    names; above MATRIX_MAX_CLASSES classes, per-class recall of the worst classes and the largest
    confusions instead."""
    k = min(TOP_K, len(e.classes))
    correct = int(np.trace(e.confusion))
    lines = [
        f"top-1 {_pct(e.top1)} ({correct}/{e.n})   top-{k} {_pct(e.top5)} ({round(e.top5 * e.n)}/{e.n})   "
        f"{e.n} images, {e.images_per_second:.1f} images/s"
    ]
    c = len(e.classes)
    if c <= MATRIX_MAX_CLASSES:
        names = [_cut(n) for n in e.classes]
        width = max([len(n) for n in names] + [len(str(int(e.confusion.max(initial=0))))])
        row_w = max(len(n) for n in names)
        lines.append("confusion matrix (rows: true class, columns: predicted)")
        lines.append(" " * row_w + "  " + " ".join(f"{n:>{width}}" for n in names))
        for i, n in enumerate(names):
            lines.append(f"{n:<{row_w}}  " + " ".join(f"{int(v):>{width}}" for v in e.confusion[i]))
        return "\n".join(lines)
    totals = e.confusion.sum(axis=1)
    seen = [i for i in range(c) if totals[i]]
    recall = {i: e.confusion[i, i] / totals[i] for i in seen}
    worst = sorted(seen, key=lambda i: (recall[i], i))[:TOP_CONFUSIONS]
    lines.append(f"lowest per-class top-1 ({len(seen)} of {c} classes have images):")
    for i in worst:
        lines.append(f"  {e.classes[i]}: {_pct(recall[i])} ({int(e.confusion[i, i])}/{int(totals[i])})")
    off = e.confusion.copy()
    np.fill_diagonal(off, 0)
    cells = [(int(off[i, j]), i, j) for i, j in zip(*np.nonzero(off))]
    cells.sort(key=lambda x: (-x[0], x[1], x[2]))
    if cells:
        lines.append("most frequent confusions (true -> predicted: images):")
        for count, i, j in cells[:TOP_CONFUSIONS]:
            lines.append(f"  {e.classes[i]} -> {e.classes[j]}: {count}")
    else:
        lines.append("no confusions")
    return "\n".join(lines)


def comparison_table(rows: list[tuple[str, Evaluation]], reference: Evaluation) -> str:
    """One line per (name, evaluation): top-1, top-5 and the share of top-1 predictions equal to
    `reference`'s (the same samples)."""
    name_w = max([len("model")] + [len(name) for name, _ in rows])
    lines = [f"{'model':<{name_w}}  {'top-1':>7}  {'top-5':>7}  {'agreement':>9}  {'images/s':>9}"]
    for name, e in rows:
        lines.append(f"{name:<{name_w}}  {_pct(e.top1):>7}  {_pct(e.top5):>7}  {_pct(agreement(e, reference)):>9}  {e.images_per_second:>9.1f}")
    return "\n".join(lines)
