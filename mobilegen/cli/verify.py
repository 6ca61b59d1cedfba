from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from mobilegen.cli.common import progress, user_errors
from mobilegen.errors import ToleranceExceeded, UserInputError
from mobilegen.verify.host import Arch


class HostBackend(str, Enum):
    gpu = "gpu"
    cpu = "cpu"
    all = "all"


@user_errors
def verify_cmd(
    project: Path = typer.Argument(..., exists=True, file_okay=False, help="A project made by `mobilegen generate`."),
    input: list[Path] = typer.Option(..., "--input", "-i", exists=True, dir_okay=False, help="The input tensor (.npy); one per graph input, in the model's order."),
    output: list[Path] = typer.Option(..., "--output", "-o", dir_okay=False, help="Where to write the output tensor (.npy); one per graph output, in the model's order. With several backends, each file gets the backend's name (Y-gpu.npy, Y-cpu.npy)."),
    dump_dir: Path = typer.Option(None, "--dump-dir", file_okay=False, help="Write every tensor, plus tensors.json (with several backends, into DIR/gpu and DIR/cpu)."),
    backend: HostBackend = typer.Option(HostBackend.gpu, "--backend", help="The GPU backend (Android: GLES 3.1 on Mesa; iOS: the Metal backend on the host executor), the CPU fallback, or all: both (the CPU fallback only, for --arch aarch64/armv7)."),
    arch: Arch = typer.Option(Arch.host, "--arch", help="Build for this machine, or cross-compile for Arm Linux and run under qemu-user (Android, CPU backend only)."),
    repeat: int = typer.Option(10, "--repeat", min=1, max=99999, help="Warm runs after the first (cold) one; the best is reported."),
    build_dir: Path = typer.Option(None, "--build-dir", file_okay=False, help="CMake build directory (default: PROJECT/.mobilegen/host-build/ARCH)."),
    report: Path = typer.Option(None, "--report", dir_okay=False, help="Also write an HTML report (one self-contained page): every tensor of each run compared with the simulator at the project's precision (and LiteRT's reference kernels at the model's own precision), the input and top-5, timings, sizes. Needs --model."),
    model: Path = typer.Option(None, "--model", exists=True, dir_okay=False, help="The .tflite the project was generated from (for --report; checked against the sha256 the project records)."),
) -> None:
    """Build the generated engine (Android or iOS, detected) and run it headless: here, or for Arm Linux under qemu; --report: every tensor against the simulator, in one HTML page."""
    from mobilegen.verify.host import CROSS, IOS_COMPILER, build_host, check_backend, detect_project, require_tools, run_host

    target = detect_project(project).target
    if report is not None and model is None:
        raise UserInputError("--report needs --model M.tflite: the model the project was generated from (the report "
                             "runs the simulator on it as the reference)")
    if model is not None and report is None:
        raise UserInputError("--model is for --report; give --report R.html too (or leave --model out)")
    if model is not None:
        check_model(project, model)
        _model_inputs(model, input)  # before the build: a wrong --input is a one-line error at once
    backends = [backend.value] if backend is not HostBackend.all else (["gpu", "cpu"] if arch is Arch.host else ["cpu"])
    for b in backends:
        check_backend(arch, b, target)
    require_tools(arch, target)
    if target == "ios":
        where = f"this machine (the iOS host proof, {IOS_COMPILER})"
    else:
        where = "this machine" if arch is Arch.host else f"{arch.value} Linux ({CROSS[arch].compiler})"
    progress(f"building the engine of {project} for {where} with CMake")
    runner = build_host(project, build_dir, arch=arch)
    gpu = "Metal backend on the host executor" if target == "ios" else "GLES backend"
    work = Path(project) / ".mobilegen" / "report"
    runs = []
    for b in backends:
        outs = output if len(backends) == 1 else [o.with_name(f"{o.stem}-{b}{o.suffix}") for o in output]
        dump = dump_dir if len(backends) == 1 or dump_dir is None else dump_dir / b
        if dump is None and report is not None:
            dump = work / f"{arch.value}-{b}"
        progress(f"running on the {b} backend" + (f" ({gpu})" if b == "gpu" else "")
                 + ("" if arch is Arch.host else f" under {CROSS[arch].qemu}"))
        result = run_host(runner, project, input, outs, dump_dir=dump, backend=b, repeat=repeat + 1, arch=arch)
        typer.echo(f"wrote {', '.join(map(str, outs))}" + (f" and {dump}" if dump is not None else ""))
        if "first_run_ms" in result:
            emulated = "" if arch is Arch.host else f" (emulated by {CROSS[arch].qemu}: says nothing about a phone)"
            if target == "ios" and result["backend"] == "gpu":
                emulated = " (the Metal kernels as C++ on this CPU: says nothing about a phone)"
            typer.echo(f"{result['backend']} backend on {arch.value}: cold run {result['first_run_ms']:.2f} ms, "
                       f"warm {result['best_warm_run_ms']:.2f} ms (best of {repeat}){emulated}")
        runs.append((b, dump, result))
    if report is not None:
        write_verify_report(report, project, model, input, runs, target=target, arch=arch.value, work=work)


def check_model(project: Path, model: Path) -> None:
    """`model` is the one `project` was generated from, when the project records its sha256."""
    import hashlib
    import json

    from mobilegen.targets.writer import PROVENANCE

    record = Path(project) / PROVENANCE
    if not record.is_file():
        return
    try:
        want = json.loads(record.read_text()).get("model_sha256")
    except (ValueError, AttributeError):
        return
    got = hashlib.sha256(Path(model).read_bytes()).hexdigest()
    if want and got != want:
        raise UserInputError(f"--model {model}: sha256 {got[:12]}... is not the model {project} was generated from "
                             f"({PROVENANCE} records {want[:12]}...)")


def _model_inputs(model: Path, inputs: list[Path]) -> tuple:
    """(the model's graph, its inputs loaded from `inputs`, checked against the model)."""
    from mobilegen.inputs import load_input
    from mobilegen.tflite.reader import read_model_file

    g = read_model_file(model)
    if len(inputs) != len(g.inputs):
        names = ", ".join(g.tensors[i].describe() for i in g.inputs)
        raise UserInputError(f"{len(inputs)} --input given; the model has {len(g.inputs)} inputs: {names}")
    return g, [load_input(p, g.tensors[i]) for p, i in zip(inputs, g.inputs)]


def _hybrid(g) -> bool:
    """A dynamic-range model: float activations into ops that take 8-bit weights directly."""
    return any(op.opcode != "DEQUANTIZE" and any(i >= 0 and g.tensors[i].is_const and g.tensors[i].dtype == "int8"
                                                  for i in op.inputs)
               and all(g.tensors[o].dtype == "float32" for o in op.outputs) for op in g.ops)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and ".mobilegen" not in p.relative_to(path).parts)


def write_verify_report(report: Path, project: Path, model: Path, inputs: list[Path], runs: list[tuple], *, target: str,
                        arch: str, work: Path) -> None:
    """The simulator (at the project's precision) as the reference, LiteRT's reference kernels as
    one more row at the model's own precision, each engine run; then the report page. Exits 1
    (ToleranceExceeded) after writing it when a run is over tolerance."""
    from mobilegen.compare import compare_paths, describe_divergence, first_divergence
    from mobilegen.export import default_precision
    from mobilegen.report import BackendRun, ReportData, tolerances, write_report
    from mobilegen.verify.host import detect_project
    from mobilegen.verify.sources import make_dump, project_info, project_options, setup

    # The project's precision and fp16 plan, as compare --project reads them.
    s = setup(Path(model), None, project)
    g, s.inputs = _model_inputs(model, inputs)
    options, keep, precision = project_options(project), project_info(project).keep_fp32, s.precision
    progress(f"running the simulator at {precision} on the same input (the report's reference)")
    sim_dump = make_dump("simulator", s, work / "simulator")
    notes = []
    if keep:
        notes.append(f"precision plan: {len(keep)} float tensors stored in float32, the others in float16; the simulator "
                     "follows the same plan")
    backend_runs = []
    if precision == default_precision(g):
        try:
            import mobilegen.verify.reference  # noqa: F401
        except ImportError:  # the verify extra (LiteRT) is not installed
            notes.append("simulator vs LiteRT not compared: ai-edge-litert (the verify extra) is not installed")
        else:
            if _hybrid(g):
                notes.append("simulator vs LiteRT not compared for a dynamic-range model (LiteRT quantizes its "
                             "activations at run time)")
            else:
                progress("running LiteRT's reference kernels (BUILTIN_REF) on the same input")
                backend_runs.append(BackendRun("LiteRT BUILTIN_REF", make_dump("litert", s, work / "litert")))
    else:
        notes.append(f"simulator vs LiteRT not compared: the project runs at {precision}, LiteRT at the model's own "
                     f"precision ({default_precision(g)})")
    names = {"gpu": "gpu (Metal, host executor)" if target == "ios" else "gpu (GLES 3.1, Mesa)", "cpu": "cpu"}
    for b, dump, result in runs:
        where = "" if arch == "host" else f", {arch} under qemu"
        timing = {k: result[k] for k in ("first_run_ms", "best_warm_run_ms") if k in result} or None
        backend_runs.append(BackendRun(f"{target} {names[b]}{where}", Path(dump), timing))
    layout = detect_project(project)
    sizes = {"weights blob (model.mgw)": layout.blob.stat().st_size, f"{target} project (generated files)": _size(Path(project))}
    labels = options.get("labels") if isinstance(options.get("labels"), list) else None
    data = ReportData(title=f"{Path(model).name}: {target} engine vs the simulator", model=Path(model),
                      input_tensor=Path(inputs[0]), reference_name="simulator", reference_dump=sim_dump,
                      runs=backend_runs, labels=labels, sizes=sizes, notes=notes, precision=precision)
    write_report(report, data)
    typer.echo(f"wrote {report}")
    lsb_tol, rtol = tolerances(precision)
    failed = []
    for run in backend_runs:
        rows = compare_paths(run.dump, sim_dump, lsb_tol=lsb_tol, rtol=rtol, graph=s.plan_graph)
        first = first_divergence(rows, s.plan_graph)
        compared = sum(not r.skipped for r in rows)
        typer.echo(f"{run.name} vs the simulator: " + (describe_divergence(first, rows) if first else
                                                        f"all {compared} tensors within tolerance"))
        if first:
            failed.append(run.name)
    if failed:
        raise ToleranceExceeded(f"{', '.join(failed)}: over tolerance against the simulator; see {report}")

