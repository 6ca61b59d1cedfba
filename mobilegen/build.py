"""`mobilegen build`: the main job. A checked configuration (mobilegen.config) in, then

    train (or take a model) -> convert (float32 + the deployed mode) -> evaluate on the validation
    split -> generate the Android / iOS projects -> verify them on the host -> a summary

into one output directory:

    DIR/train/                    what `mobilegen train` writes (model.keras, labels.txt, metrics.json, logs/)
    DIR/model-float32.tflite      the float reference conversion (with TFLite metadata)
    DIR/model-<mode>.tflite       the deployed model (int8 by default)
    DIR/evaluation.json           top-1 / top-5 / agreement of every model on the validation split
    DIR/android/, DIR/ios/        the generated projects
    DIR/verify/                   per target and backend: the input, the engine's and the simulator's dumps
    DIR/build.json                every figure of the summary (timings included), for scripts
    DIR/report.html               the verification report (mobilegen.report), with timings
    DIR/dist/                     what CI publishes, byte-reproducible (mobilegen.dist): the SDK and
                                  sample-project zips, report.html without timings, manifest.json

Each stage is a function of the previous stages' results; `run_build` times them and collects the
rows of the summary. A failed host verification does not stop the summary nor the artifacts: both
are written (manifest.json says ok: false), then `build` exits non-zero (CI gates on it).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from mobilegen import __version__
from mobilegen.config import BuildConfig
from mobilegen.errors import ToleranceExceeded, UserInputError
from mobilegen.inputs import DEFAULT_MEAN, DEFAULT_STD
from mobilegen.targets.jobs import DEFAULT_APP_NAME, check_conflicts, project_jobs

DEFAULT_QUANTIZE = "int8"
DEFAULT_PLATFORMS = ("android", "ios")
DEFAULT_BACKENDS = ("cpu", "gpu")
KERAS_SUFFIXES = (".keras", ".h5")

Progress = Callable[[str], None]


@dataclass
class ModelSource:
    """What the model stage produced: a Keras model to convert, or a .tflite to take as is."""

    kind: str  # "keras" | "savedmodel" | "frozen" | "tflite"
    path: Path
    labels: list[str] | None
    description: str
    data: Path | str | None = None  # the dataset (trained on, or given for evaluation)
    val_split: float = 0.2
    seed: int = 0
    train_metrics: dict | None = None
    _folder: object = field(default=None, repr=False)  # the scanned dataset, once

    @property
    def folder(self):
        """The dataset as an ImageFolder (scanned on first use, then kept), or None."""
        if self._folder is None and self.data is not None:
            from mobilegen.data.folder import resolve_data

            self._folder = resolve_data(self.data)
        return self._folder


@dataclass
class Verification:
    target: str
    backend: str
    ok: bool
    detail: str  # "bit-exact, 31/31 tensors" / "max rel 3e-6 over 31 tensors" / what failed
    timing: str = ""
    dump: Path | None = None  # the run's dump directory (compared with the simulator's)
    timings: dict | None = None  # {"first_run_ms", "best_warm_run_ms"} of an engine run


@dataclass
class BuildReport:
    out: Path
    source: ModelSource | None = None
    models: dict[str, Path] = field(default_factory=dict)  # mode -> .tflite
    deployed: str | None = None
    evaluations: list[dict] = field(default_factory=list)  # {name, top1, top5, agreement, n}
    projects: dict[str, Path] = field(default_factory=dict)
    verifications: list[Verification] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    precision: str | None = None  # the engines' arithmetic (int8 | fp16 | fp32), as verified
    verify_image: Path | None = None  # the picture the verification input came from
    dist: Path | None = None  # DIR/dist once written
    source_date_epoch: int | None = None  # the zips' timestamp
    precision_plan: object | None = None  # mobilegen.precision_plan.PrecisionPlan at fp16 with a dataset

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verifications)


def _source_kind(path: Path) -> str:
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "savedmodel"
        raise UserInputError(f"{path}: a directory but not a SavedModel (no saved_model.pb)")
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        return "tflite"
    if suffix in KERAS_SUFFIXES:
        return "keras"
    if suffix == ".pb":
        return "frozen"
    raise UserInputError(f"{path}: expected a .keras / .h5 Keras model, a .tflite, a frozen .pb or a SavedModel directory")


def _labels_beside(path: Path) -> list[str] | None:
    from mobilegen.inputs import read_labels

    beside = (path if path.is_dir() else path.parent) / "labels.txt"
    return read_labels(beside) if beside.is_file() else None


# -- stages -------------------------------------------------------------------------------------

def stage_model(cfg: BuildConfig, out: Path, progress: Progress) -> ModelSource:
    """Train on [model].data, or take [model].file."""
    from mobilegen.inputs import read_labels

    labels_path = cfg.get("model", "labels")
    labels = read_labels(labels_path) if labels_path else None
    file, data = cfg.get("model", "file"), cfg.get("model", "data")
    val_split, seed = cfg.get("train", "val_split", 0.2), cfg.get("train", "seed", 0)
    if file is not None:
        file = Path(file)
        if not file.exists():
            raise UserInputError(f"{file}: no such model")
        kind = _source_kind(file)
        if kind == "frozen":
            for key in ("input_array", "output_array"):  # the shape defaults to the Placeholder's
                if cfg.get("convert", key) is None:
                    raise UserInputError(f"{file}: a frozen graph needs convert.{key} (--{key.replace('_', '-')})")
        if labels is None and kind == "tflite":
            from mobilegen.evaluate import tflite_labels

            labels = tflite_labels(file.read_bytes(), source=str(file))
        return ModelSource(kind, file, labels or _labels_beside(file), f"{file.name} ({kind})", data, val_split, seed)
    if data is None:
        raise UserInputError("nothing to build: set model.data (a dataset to train on) or model.file (a model), "
                             "or pass --model FILE")
    from mobilegen.train import TrainConfig, train

    fields = {k: cfg.get("model", k) for k in ("arch", "alpha", "resolution")}
    fields |= dict(cfg.values.get("train", {}))
    # one normalization for training, conversion (the metadata) and the SDKs
    fields |= {k: cfg.get("convert", k) for k in ("mean", "std")}
    tc = TrainConfig(data=data, out=out / "train", **{k: v for k, v in fields.items() if v is not None})
    result = train(tc, progress=progress)
    metrics = result.metrics
    desc = (f"MobileNet {metrics.get('arch', tc.arch).upper()} alpha {metrics.get('alpha', tc.alpha)}, "
            f"{metrics.get('resolution', tc.resolution)} px, trained on {data}")
    trained_labels = read_labels(out / "train" / "labels.txt")
    return ModelSource("keras", out / "train" / "model.keras", labels or trained_labels, desc, data,
                       tc.val_split, tc.seed, metrics)


def stage_convert(cfg: BuildConfig, src: ModelSource, out: Path, progress: Progress) -> dict[str, Path]:
    """The float32 reference and the deployed mode, each with labels and normalization metadata."""
    if src.kind == "tflite":
        return {"given": src.path}
    from mobilegen.convert.sources import convert_model

    mode = cfg.get("convert", "quantize", DEFAULT_QUANTIZE)
    models = {}
    for m in dict.fromkeys(("float32", mode)):
        path = out / f"model-{m}.tflite"
        progress(f"converting {src.path.name} to {m}")
        buf = convert_model(
            src.path, quantize=m, io=cfg.get("convert", "io") if m == mode else None,
            calibration=src.folder, labels=src.labels,
            mean=cfg.get("convert", "mean", DEFAULT_MEAN), std=cfg.get("convert", "std", DEFAULT_STD),
            calibration_samples=cfg.get("convert", "calibration_samples"),
            input_array=cfg.get("convert", "input_array"), output_array=cfg.get("convert", "output_array"),
            input_shape=cfg.get("convert", "input_shape"), seed=src.seed, val_split=src.val_split,
        )
        path.write_bytes(buf)
        models[m] = path
    return models


def _validation(src: ModelSource):
    """(classes, validation samples labelled in those classes) of the source's dataset: the split
    `train` held out (same fraction and seed); None without a dataset. The model's labels are the
    classes when it has them, so a folder class the model does not know is an error."""
    if src.folder is None:
        return None
    from mobilegen.data.folder import split
    from mobilegen.evaluate import map_samples

    folder = src.folder
    _, val = split(folder, src.val_split, src.seed)
    classes = list(src.labels) if src.labels else list(folder.classes)
    return classes, map_samples(val, folder.classes, classes, where=str(folder.root))


def stage_evaluate(src: ModelSource, models: dict[str, Path], cfg: BuildConfig, progress: Progress) -> list[dict]:
    """Top-1 / top-5 of the Keras model and every .tflite on the validation split, and how often
    each agrees with the first (the float reference: Keras, else the float32 .tflite)."""
    from mobilegen.evaluate import agreement, evaluate_keras, evaluate_tflite

    classes, val = _validation(src)
    if not val:
        raise UserInputError(f"{src.data}: the validation split is empty (train.val_split {src.val_split})")
    mean, std = cfg.get("convert", "mean"), cfg.get("convert", "std")
    runs = []
    if src.kind == "keras":
        progress(f"evaluating {src.path.name} (Keras, float) on {len(val)} validation images")
        runs.append(("Keras float", evaluate_keras(src.path, val, classes, mean=DEFAULT_MEAN if mean is None else mean,
                                                   std=DEFAULT_STD if std is None else std)))
    for path in models.values():
        # None: the normalization the .tflite's metadata carries (convert wrote it), as simulate reads it
        progress(f"evaluating {path.name} in the simulator on {len(val)} validation images")
        runs.append((path.name, evaluate_tflite(path, val, classes, mean=mean, std=std)))
    reference = runs[0][1]
    return [{"name": name, "n": e.n, "top1": e.top1, "top5": e.top5,
             "agreement": agreement(e, reference), "images_per_second": e.images_per_second}
            for name, e in runs]


def stage_precision_plan(cfg: BuildConfig, src: ModelSource, model: Path, progress: Progress, notes: list[str]):
    """At precision fp16: which float tensors stay float32 (mobilegen.precision_plan, calibrated on
    the dataset's images); None without a dataset (every float tensor fp16, said in a note)."""
    if src.folder is None:
        notes.append("precision fp16 without a dataset: no precision plan, every float tensor is stored as fp16")
        return None
    from mobilegen.precision_plan import DEFAULT_TOLERANCE, format_plan, plan_model_fp16

    progress("planning fp16 storage on the dataset's images (which tensors stay float32)")
    pp = plan_model_fp16(model, src.folder, tolerance=cfg.get("targets", "fp16_tolerance", DEFAULT_TOLERANCE),
                         mean=cfg.get("convert", "mean"), std=cfg.get("convert", "std"))
    progress(format_plan(pp))
    kept = len(pp.keep_fp32)
    notes.append(f"fp16 precision plan: {kept} tensor{'' if kept == 1 else 's'} kept in float32 (precision_plan.json in each project)")
    return pp


def stage_generate(cfg: BuildConfig, model: Path, labels: list[str] | None, out: Path, progress: Progress,
                   precision_plan=None) -> dict[str, Path]:
    jobs = project_jobs(
        cfg.get("targets", "platforms", list(DEFAULT_PLATFORMS)), lambda platform: out / platform,
        package=cfg.get("android", "package"), name=cfg.get("android", "name"),
        bundle_id=cfg.get("ios", "bundle_id"), module=cfg.get("ios", "module"),
        app_name=cfg.get("targets", "app_name", DEFAULT_APP_NAME), labels=labels,
        precision=cfg.get("targets", "precision"),
        mean=cfg.get("convert", "mean"), std=cfg.get("convert", "std"),  # None: the model's metadata
        precision_plan=precision_plan,
    )
    check_conflicts(model, jobs)
    for job in jobs:
        progress(f"generating the {job.platform} project")
        job.generate(model, job.directory, job.options)
    return {job.platform: job.directory for job in jobs}


def _verification_input(src: ModelSource, project: Path) -> Path:
    """An image to verify with: the first validation image, else the project's sample picture."""
    held_out = _validation(src)
    if held_out is not None and held_out[1]:
        return held_out[1][0].path
    found = sorted(project.rglob("sample.png"))
    if not found:
        raise UserInputError(f"{project}: no sample.png to verify with")
    return found[0]


def _compare_detail(rows) -> tuple[bool, str]:
    compared = [r for r in rows if not r.skipped]
    bad = [r for r in compared if not r.ok]
    if bad:
        return False, f"{len(bad)} of {len(compared)} tensors over tolerance, first: tensor {bad[0].index} '{bad[0].name}'"
    if all(r.equal == 1.0 for r in compared):
        return True, f"bit-exact, {len(compared)}/{len(compared)} tensors"
    worst = max((r.rel or 0.0) for r in compared)
    return True, f"within tolerance, {len(compared)} tensors (max rel {worst:.1e})"


def stage_verify(cfg: BuildConfig, src: ModelSource, model: Path, projects: dict[str, Path], out: Path,
                 progress: Progress, notes: list[str], mode: str | None = None,
                 into: BuildReport | None = None) -> list[Verification]:
    """Build each project's engine here and run it on each backend; compare every tensor with the
    simulator at the project's precision. Also the simulator against LiteRT's reference kernels on
    the same input, when LiteRT is installed. `into` gets the precision and the input's picture."""
    from mobilegen.compare import PRECISION_TOLERANCES, compare_paths
    from mobilegen.evaluate import tflite_normalization
    from mobilegen.export import plan_for_precision
    from mobilegen.inputs import load_input
    from mobilegen.tflite.reader import read_model
    from mobilegen.verify.host import build_host, run_host
    from mobilegen.verify.sources import Setup, make_dump

    buf = model.read_bytes()
    g = read_model(buf, source=str(model))
    mean, std = tflite_normalization(buf, cfg.get("convert", "mean"), cfg.get("convert", "std"), source=str(model))
    root = out / "verify"
    image = _verification_input(src, next(iter(projects.values()))) if projects else None
    results = []
    if image is None:
        return results
    x = load_input(image, g.tensors[g.inputs[0]], mean, std)
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "input.npy", x)
    # The reference follows the projects' fp16 plan: the float32 tensors they keep (none otherwise).
    keep = into.precision_plan.keep_fp32 if into is not None and into.precision_plan is not None else frozenset()
    plan, precision = plan_for_precision(g, cfg.get("targets", "precision"), keep_fp32=keep)
    if into is not None:
        into.precision, into.verify_image = precision, image
    lsb_tol, rtol = PRECISION_TOLERANCES[precision]
    reference = Setup(model, buf, g, plan, precision, project=None, inputs=[x])
    make_dump("simulator", reference, root / "simulator")
    try:
        from mobilegen.verify.reference import run_reference
    except ImportError:  # the verify extra (LiteRT) is not installed
        run_reference = None
    if mode == "dynamic":
        # LiteRT's hybrid kernels quantize the activations at run time; the plan runs the weights
        # dequantized in float, as TFLite's GPU delegate does: the two differ by design.
        notes.append("simulator vs LiteRT not compared for a dynamic-range model (LiteRT quantizes its activations at run time)")
    elif run_reference is None:
        notes.append("simulator vs LiteRT not compared: ai-edge-litert (the verify extra) is not installed")
    elif precision == plan_for_precision(g)[1]:
        progress("running LiteRT's reference kernels (BUILTIN_REF) on the same input")
        make_dump("litert", reference, root / "litert")
        ok, detail = _compare_detail(compare_paths(root / "simulator", root / "litert"))
        results.append(Verification("simulator", "LiteRT BUILTIN_REF", ok, detail, dump=root / "litert"))
    for platform, project in projects.items():
        progress(f"building the {platform} engine on this machine")
        runner = build_host(project)
        for backend in cfg.get("verify", "backends", list(DEFAULT_BACKENDS)):
            name = f"{platform}-{backend}"
            progress(f"running the {platform} engine on the {backend} backend")
            report = run_host(runner, project, root / "input.npy", root / f"{name}.npy", dump_dir=root / name,
                              backend=backend, repeat=4)
            # held to compare's tolerances at this precision, as `compare` and the report hold it
            ok, detail = _compare_detail(compare_paths(root / name, root / "simulator", lsb_tol, rtol))
            timing, timings = "", None
            if "first_run_ms" in report:
                timing = f"cold {report['first_run_ms']:.1f} ms, warm {report['best_warm_run_ms']:.1f} ms"
                timings = {k: report[k] for k in ("first_run_ms", "best_warm_run_ms") if k in report}
            label = {"cpu": "cpu", "gpu": "gpu (Metal, host executor)" if platform == "ios" else "gpu (GLES 3.1, Mesa)"}[backend]
            results.append(Verification(platform, label, ok, detail, timing, root / name, timings))
    return results


# -- the whole job --------------------------------------------------------------------------------

def run_build(cfg: BuildConfig, out: Path, progress: Progress) -> BuildReport:
    from mobilegen.dist import source_date_epoch

    out = Path(out)
    epoch = source_date_epoch()  # checked before any work: a bad SOURCE_DATE_EPOCH is a one-line error
    out.mkdir(parents=True, exist_ok=True)
    report = BuildReport(out, source_date_epoch=epoch)

    def timed(name, fn, *args):
        t0 = time.perf_counter()
        value = fn(*args)
        report.stages[name] = time.perf_counter() - t0
        return value

    src = report.source = timed("train" if cfg.get("model", "file") is None else "load", stage_model, cfg, out, progress)
    report.models = timed("convert", stage_convert, cfg, src, out, progress)
    report.deployed = list(report.models)[-1]
    deployed = report.models[report.deployed]
    if src.data is not None:
        report.evaluations = timed("evaluate", stage_evaluate, src, report.models, cfg, progress)
    else:
        report.notes.append("no dataset given (model.data / --data): accuracy not measured")
    if cfg.get("targets", "precision") == "fp16":
        report.precision_plan = timed("plan", stage_precision_plan, cfg, src, deployed, progress, report.notes)
    report.projects = timed("generate", stage_generate, cfg, deployed, src.labels, out, progress, report.precision_plan)
    report.verifications = timed("verify", stage_verify, cfg, src, deployed, report.projects, out, progress,
                                 report.notes, report.deployed, report)
    if report.evaluations:
        (out / "evaluation.json").write_text(json.dumps(report.evaluations, indent=1) + "\n")
    timed("dist", stage_dist, report, progress)
    (out / "build.json").write_text(json.dumps(report_json(report), indent=1) + "\n")
    return report


# -- the artifacts ------------------------------------------------------------------------------

def _run_name(v: Verification) -> str:
    return v.backend if v.target == "simulator" else f"{v.target} {v.backend}"


def report_data(r: BuildReport, sizes: dict[str, int], *, reproducible: bool):
    """The verification report's contents (mobilegen.report.ReportData); `reproducible`: nothing that
    changes from run to run (no timings, no images per second)."""
    from mobilegen.report import BackendRun, ReportData

    verify = r.out / "verify"
    model = r.models[r.deployed]
    runs = [BackendRun(_run_name(v), v.dump, None if reproducible else v.timings)
            for v in r.verifications if v.dump is not None]
    drop = {"images_per_second"} if reproducible else set()
    return ReportData(
        title=f"{model.name}: verification", model=model, input_tensor=verify / "input.npy",
        reference_name="simulator", reference_dump=verify / "simulator", runs=runs,
        labels=r.source.labels if r.source else None, input_image=r.verify_image, sizes=sizes,
        evaluations=[{k: v for k, v in e.items() if k not in drop} for e in r.evaluations], notes=list(r.notes),
        precision=r.precision,
    )


def manifest_fields(r: BuildReport) -> dict:
    """manifest.json without its artifacts: the same build gives the same values (no timings, no
    dates but SOURCE_DATE_EPOCH, no absolute paths)."""
    from mobilegen.dist import sha256_file

    model = r.models[r.deployed] if r.deployed else None
    return {
        "generator": "mobilegen",
        "tool_version": __version__,
        "ok": r.ok,
        "source_date_epoch": r.source_date_epoch,
        "model": None if model is None else {
            "file": model.name, "quantization": r.deployed, "sha256": sha256_file(model), "bytes": model.stat().st_size,
        },
        "precision": r.precision,
        # at fp16 with a dataset: the tensors the precision plan keeps in float32
        "fp32_tensors": sorted(r.precision_plan.keep_fp32) if r.precision_plan is not None else None,
        "labels": r.source.labels if r.source else None,
        "targets": sorted(r.projects),
        "accuracy": [{k: e[k] for k in ("name", "n", "top1", "top5", "agreement")} for e in r.evaluations],
        "verification": [{"target": v.target, "backend": v.backend, "ok": v.ok, "detail": v.detail} for v in r.verifications],
        "notes": list(r.notes),
    }


def stage_dist(r: BuildReport, progress: Progress) -> Path:
    """DIR/dist (mobilegen.dist) and DIR/report.html."""
    from mobilegen.dist import REPORT, Artifact, source_date_epoch, write_manifest, write_zips

    if r.source_date_epoch is None:
        r.source_date_epoch = source_date_epoch()
    dist = r.dist = r.out / "dist"
    progress(f"writing the artifacts into {dist}")
    artifacts = write_zips(dist, r.projects, r.source_date_epoch)
    if any(v.dump is not None for v in r.verifications):
        from mobilegen.report import write_report

        model = r.models[r.deployed]
        sizes = {model.name: model.stat().st_size} | {a.name: a.path.stat().st_size for a in artifacts}
        write_report(r.out / REPORT, report_data(r, sizes, reproducible=False), timings=True)
        artifacts.append(Artifact(REPORT, write_report(dist / REPORT, report_data(r, sizes, reproducible=True), timings=False)))
    else:
        r.notes.append("no verification run: no report.html")
    write_manifest(dist, manifest_fields(r), artifacts)
    return dist


def _size(path: Path) -> int:
    """Bytes of a file, or of a generated project's files (not `verify`'s build folder inside it)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and ".mobilegen" not in p.relative_to(path).parts)


def report_json(r: BuildReport) -> dict:
    return {
        "tool_version": __version__,
        "model": r.source.description if r.source else None,
        "labels": r.source.labels if r.source else None,
        "models": {m: {"path": str(p), "bytes": _size(p)} for m, p in r.models.items()},
        "deployed": r.deployed,
        "evaluation": r.evaluations,
        "train": r.source.train_metrics if r.source else None,
        "projects": {t: str(p) for t, p in r.projects.items()},
        "verification": [{k: str(x) if isinstance(x, Path) else x for k, x in v.__dict__.items()} for v in r.verifications],
        "precision": r.precision,
        "fp32_tensors": sorted(r.precision_plan.keep_fp32) if r.precision_plan is not None else None,
        "dist": str(r.dist) if r.dist else None,
        "stages_seconds": {k: round(v, 2) for k, v in r.stages.items()},
        "ok": r.ok,
        "notes": r.notes,
    }


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} KB"


def summary(r: BuildReport) -> str:
    lines = ["== mobilegen build: summary =="]
    lines.append(f"model      {r.source.description}" + (f", {len(r.source.labels)} classes" if r.source.labels else ""))
    t = r.source.train_metrics
    if t:
        images, final = t.get("images", {}), t.get("final", {})
        how = {"scratch": "from scratch", "transfer": "transfer learning (cached bottlenecks)"}.get(t.get("mode"), t.get("mode"))
        lines.append(f"training   {how} on {images.get('train', '?')} images, {t.get('epochs_run', '?')} epoch{'' if t.get('epochs_run') == 1 else 's'} "
                     f"in {t.get('seconds', 0):.0f} s; validation accuracy {100 * final.get('val_accuracy', float('nan')):.1f}%"
                     + (f"; {images['skipped']} corrupt images skipped" if images.get("skipped") else ""))
    if r.evaluations:
        n = r.evaluations[0]["n"]
        lines.append(f"accuracy   on the validation split ({n} images)")
        lines.append(f"           {'model':<28} {'top-1':>7} {'top-5':>7}  agrees with {r.evaluations[0]['name']}")
        for e in r.evaluations:
            lines.append(f"           {e['name']:<28} {e['top1'] * 100:6.1f}% {e['top5'] * 100:6.1f}%  {e['agreement'] * 100:6.1f}%")
    sizes = ", ".join(f"{p.name} {_mb(_size(p))}" for p in r.models.values())
    lines.append(f"sizes      {sizes}")
    for target, project in r.projects.items():
        lines.append(f"           {target}/ project {_mb(_size(project))}")
    lines.append("verify     " + ("(no projects)" if not r.verifications else f"{'what':<10} {'backend':<28} result"))
    for v in r.verifications:
        mark = "ok  " if v.ok else "FAIL"
        lines.append(f"           {v.target:<10} {v.backend:<28} {mark} {v.detail}" + (f"; {v.timing}" if v.timing else ""))
    for note in r.notes:
        lines.append(f"note       {note}")
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in r.stages.items())
    lines.append(f"stages     {stages}; total {sum(r.stages.values()):.1f} s")
    if r.dist is not None:
        lines.append(f"artifacts  {r.dist}: " + ", ".join(sorted(p.name for p in r.dist.iterdir())))
    lines.append(f"outputs    {r.out} (build.json: every figure above; report.html: the verification report)")
    return "\n".join(lines)


def check(r: BuildReport) -> None:
    """Raise (exit 1) when any host verification failed."""
    bad = [v for v in r.verifications if not v.ok]
    if bad:
        raise ToleranceExceeded(f"verification failed: {bad[0].target} {bad[0].backend}: {bad[0].detail}")
