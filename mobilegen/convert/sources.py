"""Model files -> TFLite converters at batch 1, and the whole `mobilegen convert` job as a library.

Sources (``load_source``):
- a Keras file (``.keras`` / ``.h5``): ``keras.models.load_model``, then the same fixed
  ``[1][...]`` concrete function that mobilegen.convert.quantize uses for its test models;
- a SavedModel directory: its ``serving_default`` signature re-wrapped in a tf.function with a
  fixed ``[1][...]`` input signature (a dynamic batch would leave SHAPE / STRIDED_SLICE / PACK);
- a TF1 frozen graph (``.pb``): ``tf.compat.v1.lite.TFLiteConverter.from_frozen_graph`` with the
  toco-era ``--input-array`` / ``--output-array`` / ``--input-shape``; legacy uint8 uses the
  graph's own FakeQuant ranges and ``quantized_input_stats`` = (mean, std).

None of them hands the converter a trackable object: with the Keras model as trackable TF 2.21
drops the weights (VAR_HANDLE ops; ../shared/TOOLCHAINS.md "Converter pitfalls"), and
quantize._check rejects any model where that happened anyway.

``convert_model`` is what `mobilegen convert` and `mobilegen build` run: convert, check, write
the metadata (labels, normalization) and, when DATA is given for a Keras model, compare Keras,
the float32 .tflite and the converted .tflite on DATA's validation split.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mobilegen.convert import quiet, tensorflow
from mobilegen.convert.quantize import ALLOWED_IO, IO, Quantize, _check, _converter, _uint8_from_float, configure, opcode_names
from mobilegen.errors import UserInputError
from mobilegen.inputs import DEFAULT_MEAN, DEFAULT_STD

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
FROZEN_SUFFIX = ".pb"
LABELS_FILE = "labels.txt"
# Ops a dynamic-batch export leaves in front of reshapes; a batch-1 conversion has none.
DYNAMIC_BATCH_OPS = ("SHAPE", "STRIDED_SLICE", "PACK")
FAKE_QUANT_OPS = ("FakeQuantWithMinMaxArgs", "FakeQuantWithMinMaxVars", "FakeQuantWithMinMaxVarsPerChannel")
DEFAULT_CALIBRATION_SAMPLES = 200
CALIBRATION_SEED = 0


@dataclass
class Source:
    """A loaded model and how to make a fresh converter for it at batch 1."""

    kind: str  # "keras" | "saved_model" | "frozen_graph"
    path: Path
    input_shape: tuple[int, ...]  # [1][...], static
    make_converter: Callable[[], Any]
    keras_model: Any = None  # kind "keras"
    input_array: str | None = None  # kind "frozen_graph"
    fake_quant: bool = False  # kind "frozen_graph": the graph carries FakeQuant ranges
    keep_alive: Any = None  # a loaded SavedModel whose variables the signature captures
    # kind "frozen_graph" with FakeQuant: the same graph with every FakeQuant an Identity, for the
    # modes that do not use its ranges (the converter would otherwise keep QUANTIZE/DEQUANTIZE
    # pairs, on constant weights too, that emulate the fake quantization in float).
    make_plain_converter: Callable[[], Any] | None = None

    def labels_file(self) -> Path | None:
        """labels.txt beside the model file (inside a SavedModel directory, or beside it)."""
        places = [self.path / LABELS_FILE] if self.path.is_dir() else []
        places.append(self.path.parent / LABELS_FILE)
        return next((p for p in places if p.is_file()), None)


def _batch1(shape, what: str) -> tuple[int, ...]:
    dims = list(shape)
    if not dims:
        raise UserInputError(f"{what}: a scalar input; expected [batch][...]")
    rest = dims[1:]
    if any(d is None or d < 0 for d in rest):
        raise UserInputError(f"{what}: input shape {dims} must be static apart from the batch")
    return (1, *(int(d) for d in rest))


def parse_shape(text: str) -> tuple[int, ...]:
    """`--input-shape 1,224,224,3` -> (1, 224, 224, 3); the batch must be 1."""
    try:
        dims = tuple(int(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise UserInputError(f"--input-shape {text!r}: expected comma-separated integers, e.g. 1,224,224,3") from None
    if not dims or any(d < 1 for d in dims):
        raise UserInputError(f"--input-shape {text!r}: every dimension must be a positive integer")
    if dims[0] != 1:
        raise UserInputError(f"--input-shape {text!r}: the batch (first dimension) must be 1; mobilegen runs batch 1")
    return dims


def load_source(path: Path, *, input_array: str | None = None, output_array: str | None = None,
                input_shape: tuple[int, ...] | None = None) -> Source:
    """The model at ``path``: a Keras file, a SavedModel directory or a frozen .pb."""
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"{path}: no such file or directory")
    if path.is_dir():
        if not (path / "saved_model.pb").is_file() and not (path / "saved_model.pbtxt").is_file():
            raise UserInputError(f"{path}: a directory without saved_model.pb; expected a SavedModel directory")
        _no_frozen_options(path, input_array, output_array, input_shape)
        return _saved_model(path)
    if path.suffix.lower() in KERAS_SUFFIXES:
        _no_frozen_options(path, input_array, output_array, input_shape)
        return _keras(path)
    if path.suffix.lower() == FROZEN_SUFFIX:
        return _frozen_graph(path, input_array, output_array, input_shape)
    raise UserInputError(
        f"{path}: unknown model type; expected a Keras file ({', '.join(KERAS_SUFFIXES)}), a SavedModel directory "
        f"or a TF1 frozen graph ({FROZEN_SUFFIX})"
    )


def _no_frozen_options(path, input_array, output_array, input_shape) -> None:
    if input_array or output_array or input_shape:
        raise UserInputError(f"{path}: --input-array/--output-array/--input-shape apply only to a frozen graph ({FROZEN_SUFFIX})")


def _keras(path: Path) -> Source:
    tensorflow()
    import keras

    try:
        with quiet():
            model = keras.models.load_model(path, compile=False)
    except Exception as e:  # keras raises ValueError, OSError, TypeError... for a bad file
        raise UserInputError(f"{path}: cannot load the Keras model ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UserInputError(f"{path}: {len(model.inputs)} inputs and {len(model.outputs)} outputs; expected one of each")
    shape = _batch1(model.inputs[0].shape, str(path))
    return Source("keras", path, shape, lambda: _converter(model, shape), keras_model=model)


def _saved_model(path: Path) -> Source:
    tf = tensorflow()
    try:
        with quiet():
            loaded = tf.saved_model.load(str(path))
    except Exception as e:
        raise UserInputError(f"{path}: cannot load the SavedModel ({type(e).__name__})") from None
    sig = loaded.signatures.get("serving_default")
    if sig is None:
        raise UserInputError(f"{path}: the SavedModel has no 'serving_default' signature (it has {sorted(loaded.signatures)})")
    args, kwargs = sig.structured_input_signature
    specs = list(args) + list(kwargs.values())
    outputs = sig.structured_outputs
    n_out = len(outputs) if isinstance(outputs, (dict, list, tuple)) else 1
    if len(specs) != 1 or n_out != 1:
        raise UserInputError(f"{path}: serving_default has {len(specs)} inputs and {n_out} outputs; expected one of each")
    name = next(iter(kwargs), None)
    spec = specs[0]
    shape = _batch1(spec.shape.as_list(), str(path))

    def make():
        # The serving signature again, at [1][...]: the converter then sees a static batch.
        @tf.function(input_signature=[tf.TensorSpec(shape, spec.dtype)])
        def forward(x):
            y = sig(**{name: x}) if name is not None else sig(x)
            return next(iter(y.values())) if isinstance(y, dict) else y

        with quiet():
            return tf.lite.TFLiteConverter.from_concrete_functions([forward.get_concrete_function()])

    return Source("saved_model", path, shape, make, keep_alive=loaded)


def _frozen_graph(path: Path, input_array, output_array, input_shape) -> Source:
    tf = tensorflow()
    if not input_array or not output_array:
        raise UserInputError(f"{path}: a frozen graph needs --input-array NAME and --output-array NAME")
    gd = tf.compat.v1.GraphDef()
    try:
        gd.ParseFromString(path.read_bytes())
    except Exception:
        raise UserInputError(f"{path}: not a TensorFlow GraphDef (a TF1 frozen graph .pb)") from None
    nodes = {n.name: n for n in gd.node}
    for flag, name in (("--input-array", input_array), ("--output-array", output_array)):
        if name not in nodes:
            raise UserInputError(f"{path}: {flag} {name!r} is not a node of the graph")
    inp = nodes[input_array]
    if inp.op != "Placeholder":
        raise UserInputError(f"{path}: --input-array {input_array!r} is a {inp.op}; expected a Placeholder")
    if input_shape is None:
        dims = [d.size for d in inp.attr["shape"].shape.dim] if "shape" in inp.attr else []
        if not dims or any(d < 0 for d in dims[1:]):
            raise UserInputError(f"{path}: the shape of {input_array!r} is not static ({dims}); pass --input-shape 1,H,W,C")
        input_shape = (1, *dims[1:])
    variables = sorted({n.op for n in gd.node if n.op in ("VariableV2", "VarHandleOp", "Variable")})
    if variables:
        raise UserInputError(f"{path}: the graph still has variables ({', '.join(variables)}); freeze it first "
                             "(graph_util.convert_variables_to_constants)")
    fake_quant = any(n.op in FAKE_QUANT_OPS for n in gd.node)

    def make(graph_def=None):
        with quiet(), tempfile.TemporaryDirectory() as tmp:
            graph_file = path
            if graph_def is not None:  # from_frozen_graph reads a file (and parses it at once)
                graph_file = Path(tmp) / path.name
                graph_file.write_bytes(graph_def.SerializeToString())
            return tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
                str(graph_file), [input_array], [output_array], {input_array: list(input_shape)})

    plain = (lambda: make(_without_fake_quant(gd))) if fake_quant else None
    return Source("frozen_graph", path, tuple(input_shape), make, input_array=input_array,
                  fake_quant=fake_quant, make_plain_converter=plain)


def _without_fake_quant(gd):
    """A copy of the GraphDef with each FakeQuant node an Identity of its first input."""
    tf = tensorflow()
    out = tf.compat.v1.GraphDef()
    out.CopyFrom(gd)
    for n in out.node:
        if n.op in FAKE_QUANT_OPS:
            first = n.input[0]
            n.op = "Identity"
            del n.input[:]
            n.input.append(first)
            n.attr.clear()
            n.attr["T"].type = tf.float32.as_datatype_enum
    return out


def resolve_io(quantize: Quantize | str, io: IO | str | None) -> IO:
    """The --io for --quantize (its default when None); UserInputError for a pair that cannot be."""
    quantize = Quantize(quantize)
    allowed = ALLOWED_IO[quantize]
    if io is None:
        return allowed[0]
    io = IO(io)
    if io not in allowed:
        raise UserInputError(f"--io {io.value} with --quantize {quantize.value}: expected {' or '.join(a.value for a in allowed)}")
    return io


def convert_source(source: Source, quantize: Quantize | str, io: IO | str | None = None,
                   calibration: np.ndarray | None = None, *, mean: float = DEFAULT_MEAN,
                   std: float = DEFAULT_STD) -> bytes:
    """.tflite bytes of ``source`` in ``quantize`` with ``io`` tensors, at batch 1, checked.

    ``calibration`` ([n][...] float32, normalized as the model's input expects) is required for
    int8, and for uint8 unless the source is a frozen graph with FakeQuant ranges (those ranges
    are the quantization; ``mean``/``std`` become its quantized_input_stats)."""
    tf = tensorflow()
    quantize = Quantize(quantize)
    io = resolve_io(quantize, io)
    if calibration is not None:
        calibration = np.asarray(calibration, dtype=np.float32)
        if calibration.shape[1:] != source.input_shape[1:]:
            raise UserInputError(f"calibration samples {list(calibration.shape)} do not match the model input {list(source.input_shape)}")
        if len(calibration) == 0:
            raise UserInputError("no calibration samples")
    frozen_uint8 = quantize is Quantize.uint8 and source.kind == "frozen_graph"
    if frozen_uint8 and not source.fake_quant:
        raise UserInputError(
            f"{source.path}: --quantize uint8 needs a graph with FakeQuant ranges (quantization-aware training); "
            "this graph has none: use --quantize int8 --io uint8 --calibration DATA")
    if quantize in (Quantize.int8, Quantize.uint8) and calibration is None and not frozen_uint8:
        raise UserInputError(f"--quantize {quantize.value} needs calibration images (--calibration DATA)")

    make = source.make_plain_converter if source.make_plain_converter and not frozen_uint8 else source.make_converter
    if frozen_uint8:
        converter = source.make_converter()
        converter.inference_type = tf.uint8
        converter.quantized_input_stats = {source.input_array: (float(mean), float(std))}
        buf = _run(converter, source)
    elif quantize is Quantize.uint8:
        buf = _uint8_from_float(_run(make(), source), calibration)
    else:
        converter = make()
        configure(converter, quantize, io, calibration)
        buf = _run(converter, source)
    dynamic = sorted(set(DYNAMIC_BATCH_OPS).intersection(opcode_names(buf)))
    if dynamic:
        raise UserInputError(f"{source.path}: the converted model computes shapes at run time ({', '.join(dynamic)}); "
                             "export it with a static input shape")
    try:
        _check(buf, calibration if calibration is not None else _probe_inputs(source.input_shape))
    except RuntimeError as e:  # no weights, non-finite or constant output: not a usable model
        raise UserInputError(f"{source.path}: {e} ({quantize.value})") from None
    return buf


def _run(converter, source: Source) -> bytes:
    try:
        with quiet():
            return bytes(converter.convert())
    except Exception as e:  # ConverterError and friends: the graph cannot be converted as asked
        first = next((ln for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise UserInputError(f"{source.path}: the TFLite converter failed: {first.strip()[:300]}") from None


def _probe_inputs(shape: tuple[int, ...]) -> np.ndarray:
    """Two float inputs for _check when no calibration was given (its range: [-1, 1])."""
    from mobilegen.convert.quantize import default_calibration

    return default_calibration(shape, n=2)


# -- the whole job: calibration from DATA, metadata, the report ---------------------------------

@dataclass
class ConvertResult:
    model: bytes
    labels: list[str] | None  # what the metadata carries (None: normalization only)
    report: dict | None = None  # what F.eval.json holds
    table: str | None = None  # the comparison table printed by the CLI
    notes: list[str] = field(default_factory=list)


def image_resolution(source: Source) -> int:
    """R for a [1][R][R][3] image input; UserInputError for any other input."""
    s = source.input_shape
    if len(s) != 4 or s[1] != s[2] or s[3] != 3:
        raise UserInputError(f"{source.path}: input {list(s)} is not an image input [1][R][R][3]; DATA cannot feed it")
    return s[1]


def calibration_from_data(data, resolution: int, *, mean: float = DEFAULT_MEAN, std: float = DEFAULT_STD,
                          samples: int = DEFAULT_CALIBRATION_SAMPLES, val_split: float = 0.2,
                          seed: int = 0) -> np.ndarray:
    """[n][R][R][3]: up to ``samples`` images of DATA's TRAIN split (the split `train` trains on),
    spread evenly over it (every class is represented), loaded as the model sees them."""
    from mobilegen.data.folder import resolve_data, split
    from mobilegen.data.images import load_batch

    folder = data if hasattr(data, "samples") else resolve_data(data)
    train, _ = split(folder, val_split, seed)
    if samples < 1:
        raise UserInputError(f"--calibration-samples {samples}: expected at least 1")
    # train is sorted by class: an even stride covers every class rather than the first few.
    pick = np.unique(np.linspace(0, len(train) - 1, min(samples, len(train))).round().astype(int))
    return load_batch([train[i].path for i in pick], resolution, mean, std)


def _labels(labels, source: Source, folder) -> list[str] | None:
    from mobilegen.inputs import read_labels

    if labels is not None:
        return list(labels) if isinstance(labels, (list, tuple)) else read_labels(Path(labels))
    beside = source.labels_file()
    if beside is not None:
        return read_labels(beside)
    return list(folder.classes) if folder is not None else None


def _write_metadata(buf: bytes, labels, mean: float, std: float, source: Source) -> bytes:
    """TFLite model metadata: the labels (first output) and the normalization (first input)."""
    from mobilegen.tflite.metadata import write_metadata

    return write_metadata(buf, labels=labels, mean=[float(mean)], std=[float(std)], name=source.path.stem)


def convert_model(model_path: Path, quantize: Quantize | str = Quantize.float32, io: IO | str | None = None,
                  **options) -> bytes:
    """The converted .tflite bytes (metadata included), as `mobilegen convert` writes them;
    ``options`` as ``convert_job`` takes them (no report)."""
    return convert_job(model_path, quantize, io, report=False, **options).model


def convert_job(model_path: Path, quantize: Quantize | str = Quantize.float32, io: IO | str | None = None, *,
                calibration=None, calibration_samples: int | None = None,
                labels=None, mean: float = DEFAULT_MEAN, std: float = DEFAULT_STD,
                input_array: str | None = None, output_array: str | None = None,
                input_shape=None, val_split: float = 0.2, seed: int = 0,
                report: bool = True, progress: Callable[[str], None] = lambda msg: None) -> ConvertResult:
    """`mobilegen convert` in-process.

    ``calibration``: DATA (an image folder path, "builtin", or an ImageFolder) or a ready
    [n][...] float32 array; int8 (and uint8, unless a frozen graph brings FakeQuant ranges) needs
    it: synthetic samples would quantize for values real images never take, so there is no
    fallback. ``calibration_samples``: how many TRAIN-split images (default 200). ``labels``: a
    labels file or a list; default labels.txt beside the model, else DATA's classes.
    ``io`` None: the quantization's default (float32; uint8 for uint8). ``input_shape``: a
    tuple or "1,H,W,C". With DATA and a Keras model (and ``report``), the result carries the
    Keras / float32 / converted comparison on DATA's validation split (``val_split``, ``seed``:
    the split `train` held out)."""
    if isinstance(input_shape, str):
        input_shape = parse_shape(input_shape)
    elif input_shape is not None:
        input_shape = parse_shape(",".join(str(d) for d in input_shape))
    if calibration_samples is None:
        calibration_samples = DEFAULT_CALIBRATION_SAMPLES
    quantize = Quantize(quantize)
    io = resolve_io(quantize, io)
    source = load_source(model_path, input_array=input_array, output_array=output_array, input_shape=input_shape)
    folder = None
    samples = None
    if isinstance(calibration, np.ndarray):
        samples = calibration
    elif calibration is not None:
        from mobilegen.data.folder import resolve_data

        folder = calibration if hasattr(calibration, "samples") else resolve_data(calibration)
        if quantize in (Quantize.int8, Quantize.uint8) and not (quantize is Quantize.uint8 and source.fake_quant):
            resolution = image_resolution(source)
            samples = calibration_from_data(folder, resolution, mean=mean, std=std, samples=calibration_samples,
                                            val_split=val_split, seed=seed)
            progress(f"calibrating on {len(samples)} images of {folder.root} (train split)")
    names = _labels(labels, source, folder)
    progress(f"converting {source.path} ({source.kind}) to {quantize.value}, {io.value} input/output")
    buf = convert_source(source, quantize, io, samples, mean=mean, std=std)
    notes: list[str] = []
    buf = _write_metadata(buf, names, mean, std, source)
    if names is None:
        notes.append("metadata: normalization only, no labels (pass --labels, put labels.txt beside the model, "
                     "or give --calibration DATA)")
    result = ConvertResult(buf, names, notes=notes)
    if report and folder is not None and source.kind == "keras":
        result.report, result.table = _report(source, buf, quantize, io, folder, names, mean, std, val_split, seed, progress)
    return result


def _report(source, buf, quantize, io, folder, names, mean, std, val_split, seed, progress):
    from mobilegen.data.folder import split
    from mobilegen.evaluate import agreement, comparison_table, evaluate_keras, evaluate_tflite, map_samples

    classes = list(names) if names is not None else list(folder.classes)
    _, val = split(folder, val_split, seed)
    if not val:
        raise UserInputError(f"{folder.root}: the validation split is empty (--val-split {val_split})")
    # DATA's labels index folder.classes; the model's outputs index its own labels.
    val = map_samples(val, folder.classes, classes, where=str(folder.root))
    resolution = image_resolution(source)
    progress(f"evaluating on {len(val)} validation images of {folder.root}")
    keras_eval = evaluate_keras(source.keras_model, val, classes, resolution=resolution, mean=mean, std=std)
    rows = [("keras", keras_eval)]
    if quantize is not Quantize.float32:
        f32 = convert_source(source, Quantize.float32, IO.float32, mean=mean, std=std)
        rows.append(("float32 .tflite", evaluate_tflite(f32, val, classes, mean=mean, std=std)))
    rows.append((f"{quantize.value} .tflite" + (f" ({io.value} io)" if io is not IO.float32 else ""),
                 evaluate_tflite(buf, val, classes, mean=mean, std=std)))
    table = comparison_table(rows, keras_eval)
    report = {
        "model": str(source.path), "data": str(folder.root), "split": "val", "val_split": val_split, "seed": seed,
        "n": keras_eval.n, "classes": classes, "quantize": quantize.value, "io": io.value,
        "rows": [{"name": name, "top1": e.top1, "top5": e.top5, "agreement_with_keras": agreement(e, keras_eval)}
                 for name, e in rows],
        # The bar: the converted model within 2 points of top-1 of the float32 one.
        "top1_drop_points_vs_float32": round(100 * (rows[-2 if len(rows) > 2 else -1][1].top1 - rows[-1][1].top1), 6),
    }
    return report, table


def report_path(out: Path) -> Path:
    """F.tflite -> F.eval.json beside it."""
    return out.with_suffix(".eval.json")


def write_report(out: Path, report: dict) -> Path:
    path = report_path(out)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path
