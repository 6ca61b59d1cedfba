"""The sides `mobilegen compare` can compare: dumps it makes itself from a model and an input.

A side is a path (a dump directory or a .npy, taken as it is) or one of the keywords
  simulator  the numpy simulator of the generated kernels, at the compared precision
  litert     LiteRT's reference kernels (BUILTIN_REF), the ground truth at the model's own precision
  host-gpu   the project's engine built here and run on its GPU backend (Android: GLES 3.1 on
             Mesa's llvmpipe; iOS: the Metal backend over the host executor)
  host-cpu   the project's engine on its CPU fallback
Keyword sides need the model (--model); host-* the generated project (--project). Every dump made
here holds the graph inputs too (dump.write_dump(inputs=True)), as device dumps do, so any of them
can feed another comparison."""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from mobilegen.dump import graph_inputs, read_dump, write_dump
from mobilegen.errors import UserInputError
from mobilegen.ir.graph import Graph

KEYWORDS = ("simulator", "litert", "host-gpu", "host-cpu")
PROJECT_RECORD = "mobilegen.json"  # mobilegen.targets.writer.PROVENANCE


def is_keyword(side: str) -> bool:
    return str(side) in KEYWORDS


def check_sides(sides: list[str], model: Path | None, project: Path | None) -> None:
    """One-line errors for sides that cannot be made: an unknown name, a keyword without --model,
    host-* without --project."""
    for label, side in zip("AB", sides):
        if is_keyword(side):
            if model is None:
                raise UserInputError(f"{label} '{side}': a {side} run needs the model; pass --model M.tflite")
            if side.startswith("host-") and project is None:
                raise UserInputError(f"{label} '{side}': a host run builds a generated project's engine; "
                                     "pass --project P (made by `mobilegen generate`)")
        elif not Path(side).exists():
            raise UserInputError(f"{label} '{side}': no such file or directory; expected a dump directory, "
                                 f"a .npy file, or one of {', '.join(KEYWORDS)}")


@dataclass
class ProjectInfo:
    target: str  # "android" | "ios"
    precision: str | None  # from mobilegen.json's options, when recorded
    model_sha256: str | None
    keep_fp32: frozenset[int]  # fp16 tensors kept in float32 by precision planning, when any


def _provenance(project: Path) -> dict:
    """The project's provenance record (mobilegen.json), {} when it has none."""
    record = Path(project) / PROJECT_RECORD
    if not record.is_file():
        return {}
    try:
        data = json.loads(record.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("options") or {}, dict):
            raise ValueError("expected an object with an options object")
    except ValueError as e:
        raise UserInputError(f"{record}: not a mobilegen provenance record ({e})") from None
    return data


def project_options(project: Path) -> dict:
    """The options a project was generated with (precision, labels, fp32_tensors, ...), from its
    provenance record; {} when it has none."""
    return _provenance(project).get("options") or {}


def project_info(project: Path) -> ProjectInfo:
    """What a generated project says about itself: its target (verify.host.detect_project), and
    from its provenance record the precision and model digest it was generated with."""
    from mobilegen.precision_plan import project_keep_fp32
    from mobilegen.verify.host import detect_project

    project = Path(project)
    target = detect_project(project).target
    data = _provenance(project)
    options = data.get("options") or {}
    return ProjectInfo(target, options.get("precision"), data.get("model_sha256"), project_keep_fp32(project, options))


@dataclass
class Setup:
    """The model, at the precision compared, and what to run it on."""

    model: Path
    buf: bytes
    graph: Graph  # the model's graph (LiteRT's tensor indices)
    plan: object  # mobilegen.plan.Plan the engines and the simulator run
    precision: str
    project: Path | None
    inputs: list[np.ndarray] | None = None

    @property
    def plan_graph(self) -> Graph:
        return self.plan.graph


def setup(model: Path, precision: str | None, project: Path | None) -> Setup:
    """Read the model and choose the precision: --precision, else the project's, else the
    model's own. A project generated from another model, or at another precision than the one
    asked for, is a one-line error (its engine would compare as different numbers)."""
    from mobilegen.export import plan_for_precision
    from mobilegen.tflite.reader import read_model

    model = Path(model)
    if not model.is_file():
        raise UserInputError(f"--model {model}: no such file; expected a .tflite model")
    buf = model.read_bytes()
    g = read_model(buf, source=str(model))
    keep: frozenset[int] = frozenset()
    if project is not None:
        info = project_info(project)
        if info.model_sha256 and info.model_sha256 != hashlib.sha256(buf).hexdigest():
            raise UserInputError(f"--project {project} was generated from another model than {model} "
                                 f"(sha256 {info.model_sha256[:12]}..., {model.name} has "
                                 f"{hashlib.sha256(buf).hexdigest()[:12]}...); pass the model it was made from")
        if precision is not None and info.precision is not None and precision != info.precision:
            raise UserInputError(f"--precision {precision}: {project} was generated at {info.precision}; "
                                 "its engine runs at that precision (omit --precision, or regenerate)")
        precision = precision or info.precision
        keep = info.keep_fp32
    plan, precision = plan_for_precision(g, precision, keep) if keep else plan_for_precision(g, precision)
    return Setup(model, buf, g, plan, precision, project)


def find_inputs(s: Setup, input_paths: list[Path], dumps: list[Path]) -> list[np.ndarray]:
    """The graph inputs: --input (one .npy or image per graph input; an image decoded and
    normalized as `simulate` does it, from the model's metadata), else those a dump side holds."""
    from mobilegen.inputs import DEFAULT_MEAN, DEFAULT_STD, IMAGE_SUFFIXES, load_input
    from mobilegen.tflite.metadata import image_normalization, read_metadata

    g = s.graph
    if input_paths:
        if len(input_paths) != len(g.inputs):
            names = ", ".join(g.tensors[i].describe() for i in g.inputs)
            raise UserInputError(f"{len(input_paths)} --input given; the model has {len(g.inputs)} inputs: {names}")
        mean, std = DEFAULT_MEAN, DEFAULT_STD
        if any(Path(p).suffix.lower() in IMAGE_SUFFIXES for p in input_paths):
            t = g.tensors[g.inputs[0]]
            mean, std = image_normalization(read_metadata(s.buf, source=str(s.model)), t.shape[-1] if t.shape else 1,
                                            mean=None, std=None, default_mean=DEFAULT_MEAN, default_std=DEFAULT_STD,
                                            source=str(s.model))
        return [load_input(p, g.tensors[i], mean, std) for p, i in zip(input_paths, g.inputs)]
    for d in dumps:
        if Path(d).is_dir():
            xs = graph_inputs(*read_dump(d), g)
            if xs is not None:
                return xs
    where = f" ({', '.join(map(str, dumps))} do not hold them)" if dumps else ""
    wanted = ", ".join(g.tensors[i].describe() for i in g.inputs)
    raise UserInputError(f"no input to run the model on: pass --input X.npy, or compare against a dump that holds "
                         f"the graph inputs ({wanted}){where}")


def _with_inputs(directory: Path, g: Graph, xs: list[np.ndarray]) -> None:
    """Add the graph inputs to a dump written without them (the host runner's), first in order."""
    index = directory / "tensors.json"
    records = json.loads(index.read_text())["tensors"]
    have = {int(r["index"]) for r in records}
    from mobilegen.dump import tensor_record

    head = []
    for i, x in zip(g.inputs, xs):
        if i not in have:
            np.save(directory / f"{i}.npy", x)
            head.append(tensor_record(g, i))
    index.write_text(json.dumps({"tensors": head + records}, indent=1) + "\n")


def make_dump(side: str, s: Setup, directory: Path, progress: Callable[[str], None] = lambda m: None) -> Path:
    """Run `side` (a keyword) on s.inputs and write its dump into `directory`; returns it."""
    from mobilegen.plan import folded_tensors

    xs = s.inputs
    assert xs is not None
    directory = Path(directory)
    if side == "simulator":
        from mobilegen.sim.runner import Simulator

        progress(f"simulator: {len(s.plan.kernels)} kernels at {s.precision}")
        write_dump(directory, s.plan_graph, Simulator(s.plan).run(xs), folded_tensors(s.plan), inputs=True)
    elif side == "litert":
        try:
            from mobilegen.verify.reference import run_reference
        except ImportError:
            raise UserInputError("litert: ai-edge-litert is not installed (pip install -e '.[verify]')") from None
        from mobilegen.export import default_precision

        own = default_precision(s.graph)
        note = "" if s.precision == own else f" (the model's own {own}; compared at {s.precision}: differences are expected)"
        progress(f"litert: LiteRT's reference kernels (BUILTIN_REF){note}")
        values = run_reference(s.buf, xs)
        values.update(dict(zip(s.graph.inputs, xs)))
        write_dump(directory, s.graph, values, inputs=True)
    elif side in ("host-gpu", "host-cpu"):
        from mobilegen.verify.host import build_host, run_host

        assert s.project is not None
        backend = side.removeprefix("host-")
        progress(f"{side}: building the engine of {s.project} with CMake")
        runner = build_host(s.project)
        work = directory.parent / f".{directory.name}-io"
        work.mkdir(parents=True, exist_ok=True)
        ins = []
        for n, x in enumerate(xs):
            ins.append(work / f"input{n}.npy")
            np.save(ins[-1], x)
        outs = [work / f"output{n}.npy" for n in range(len(s.graph.outputs))]
        progress(f"{side}: running it on the {backend} backend")
        run_host(runner, s.project, ins, outs, dump_dir=directory, backend=backend)
        _with_inputs(directory, s.graph, xs)
    else:
        raise UserInputError(f"'{side}': expected one of {', '.join(KEYWORDS)}")
    return directory


@contextlib.contextmanager
def workspace(keep: Path | None) -> Iterator[Path]:
    """Where the dumps made for a comparison go: `keep` (created, left in place) or a temporary
    directory removed afterwards."""
    if keep is not None:
        keep = Path(keep)
        if keep.exists() and not keep.is_dir():
            raise UserInputError(f"--keep {keep}: not a directory")
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="mobilegen-compare-") as d:
        yield Path(d)
