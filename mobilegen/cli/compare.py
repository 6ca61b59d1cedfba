from __future__ import annotations

import json
import math
from pathlib import Path

import typer

from mobilegen.cli.common import progress, user_errors
from mobilegen.cli.generate import Precision
from mobilegen.compare import (
    FLOAT_RTOL,
    PRECISION_TOLERANCES,
    check_pair,
    compare_loaded,
    describe_divergence,
    first_divergence,
    format_rows,
    skipped_summary,
    _load,
)
from mobilegen.errors import ToleranceExceeded, UserInputError
from mobilegen.verify import sources

SIDE_HELP = ("A dump directory, a .npy file, or a run made here: simulator, litert (LiteRT's reference kernels), "
             "host-gpu or host-cpu (--project's engine built and run on this machine)")


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the user passed option `name` (else its default stands in, and the precision's
    default tolerance replaces it)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"


@user_errors
def compare_cmd(
    ctx: typer.Context,
    a: str = typer.Argument(..., metavar="A", help=SIDE_HELP + "."),
    b: str = typer.Argument(..., metavar="B", help="The same kinds as A: the reference."),
    model: Path = typer.Option(None, "--model", "-m", dir_okay=False, help="The .tflite model: needed by keyword sides; names each tensor's op and its inputs."),
    input: list[Path] = typer.Option(None, "--input", "-i", dir_okay=False, help="The input (.npy or image), one per graph input; default: the graph inputs a dump side holds."),
    project: Path = typer.Option(None, "--project", "-p", file_okay=False, help="A project made by `mobilegen generate`: the engine host-gpu / host-cpu build; its precision (and fp16 plan) is the default, also for a device dump of its app."),
    precision: Precision = typer.Option(None, "--precision", help="The precision the simulator runs at and the tolerances are chosen for (default: the project's, else the model's own)."),
    tolerance: int = typer.Option(0, "--tolerance", min=0, show_default=False, help="Largest allowed difference of integer tensors, in LSB (default by precision: int8 and fp32 0, fp16 1; without --model 0)."),
    rtol: float = typer.Option(FLOAT_RTOL, "--rtol", min=0.0, show_default=False, help="Largest allowed max|a-b|/max|b| of float tensors (default by precision: int8 and fp32 5e-5, fp16 6e-3; without --model 5e-5)."),
    keep: Path = typer.Option(None, "--keep", file_okay=False, help="Write the dumps made for keyword sides here (default: a temporary directory, removed)."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as one JSON document (for CI) instead of the table."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print tensor names in full."),
) -> None:
    """Per-tensor differences of two dumps or runs; exit 1 naming the first layer over tolerance and
    whether it diverges there (its inputs equal) or inherits the difference."""
    sides = [a, b]
    sources.check_sides(sides, model, project)
    if project is not None and model is None:
        raise UserInputError("--project needs --model (the model the project was generated from)")
    paths = [Path(s) for s in sides if not sources.is_keyword(s)]
    if len(paths) == 2:
        check_pair(*paths)
    elif paths and len(paths) == 1 and not paths[0].is_dir():
        raise UserInputError(f"cannot compare the single array {paths[0]} with a {next(s for s in sides if sources.is_keyword(s))} "
                             "run (a dump of every tensor): give a dump directory")
    if input and not any(sources.is_keyword(s) for s in sides):
        raise UserInputError("--input feeds the runs compare makes (simulator, litert, host-gpu, host-cpu); "
                             "neither side is one")
    setup = None
    if model is not None:
        setup = sources.setup(model, precision.value if precision else None, project)
    elif precision is not None:
        raise UserInputError("--precision needs --model (the simulator and the tolerances follow it)")
    lsb_tol, rel_tol = tolerance, rtol
    if setup is not None:
        by_precision = PRECISION_TOLERANCES.get(setup.precision)
        if by_precision is not None:
            lsb_tol = tolerance if _given(ctx, "tolerance") else by_precision[0]
            rel_tol = rtol if _given(ctx, "rtol") else by_precision[1]
    with sources.workspace(keep) as work:
        loaded, labels = [], []
        for side in sides:
            if sources.is_keyword(side):
                if setup.inputs is None:
                    setup.inputs = sources.find_inputs(setup, input or [], paths)
                name = side if sides[0] != sides[1] else f"{side}-{'AB'[len(loaded)]}"
                made = sources.make_dump(side, setup, work / name, progress)
                if keep is not None:
                    progress(f"wrote {made}")
                loaded.append(_load(made))
                labels.append(side)
            else:
                loaded.append(_load(Path(side)))
                labels.append(str(side))
    graph = setup.plan_graph if setup is not None else None
    rows = compare_loaded(loaded[0], loaded[1], lsb_tol, rel_tol, graph)
    if not rows:
        raise UserInputError(f"nothing to compare: {a} and {b} hold no tensors")
    div = first_divergence(rows, graph)
    skipped = sum(r.skipped for r in rows)
    compared = len(rows) - skipped
    if as_json:
        doc = {
            "a": labels[0], "b": labels[1],
            "model": None if model is None else str(model),
            "precision": None if setup is None else setup.precision,
            "tolerance": {"lsb": lsb_tol, "rtol": rel_tol},
            "ok": div is None,
            "compared": compared, "skipped": skipped,
            "over_tolerance": sum(1 for r in rows if not r.ok and not r.skipped),
            "tensors": [vars(r) for r in rows],
            "first_divergence": None if div is None else div.to_json(),
        }
        typer.echo(json.dumps(_finite(doc), indent=1, allow_nan=False))
    else:
        typer.echo(format_rows(rows, verbose))
    if div is not None:
        raise ToleranceExceeded(describe_divergence(div, rows))
    if not as_json:
        typer.echo(f"all {compared} tensors within tolerance" + skipped_summary(rows))


def _finite(v):
    """`v` for strict JSON: non-finite floats (a tensor with inf/NaN values) as the strings "inf", "nan"."""
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v
