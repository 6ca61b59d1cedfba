from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import typer

from mobilegen.cli.common import progress, user_errors
from mobilegen.dump import write_dump
from mobilegen.errors import UserInputError
from mobilegen.inputs import DEFAULT_MEAN, DEFAULT_STD, IMAGE_SUFFIXES, dequantize, load_input, load_labels, top_k
from mobilegen.cli.generate import Precision
from mobilegen.export import plan_for_precision
from mobilegen.plan import folded_tensors
from mobilegen.sim.runner import Simulator
from mobilegen.tflite.metadata import image_normalization, metadata_labels, read_metadata
from mobilegen.tflite.reader import read_model_file


@user_errors
def simulate_cmd(
    model: Path = typer.Argument(..., help="The .tflite model."),
    input: list[Path] = typer.Option(..., "--input", "-i", help="An X.npy array or an image; one per graph input, in the model's order."),
    output: list[Path] = typer.Option(None, "--output", "-o", dir_okay=False, help="Write the output tensor as .npy; one per graph output, in the model's order (the first ones if fewer)."),
    dump_dir: Path = typer.Option(None, "--dump-dir", file_okay=False, help="Write every tensor an operator writes, plus tensors.json."),
    top: int = typer.Option(5, "--top", min=0, help="Print the top K classes of the output."),
    labels: Path = typer.Option(None, "--labels", help="Class names, one per line (default: the model's metadata, else the class numbers)."),
    mean: float = typer.Option(None, help=f"Image normalization: (pixel - mean) / std (default: the model's metadata, else {DEFAULT_MEAN})."),
    std: float = typer.Option(None, help=f"Image normalization: (pixel - mean) / std (default: the model's metadata, else {DEFAULT_STD})."),
    precision: Precision = typer.Option(
        None, "--precision", help="As the engine runs it: int8 (integer kernels), fp16 (float kernels, every stored float rounded to float16) or fp32; an int8 model at fp16/fp32 runs dequantized, like TFLite's GPU delegate. Default: the model's own."
    ),
    precision_plan: Path = typer.Option(
        None, "--precision-plan", exists=True, dir_okay=False,
        help="A project's precision_plan.json: simulate fp16 as that project runs it, its kept tensors in float32 (implies --precision fp16).",
    ),
) -> None:
    """Run the model in the bit-exact numpy simulator of the GPU kernels."""
    # Everything that can be the user's mistake is checked before the first progress line, so an
    # error is the only line on stderr.
    g = read_model_file(model)
    # Labels and normalization travel in the model's TFLite metadata when it has any; the options win.
    meta = read_metadata(model.read_bytes(), source=str(model))
    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in input):  # .npy inputs are taken as they are
        t_in = g.tensors[g.inputs[0]]
        mean, std = image_normalization(meta, t_in.shape[-1] if t_in.shape else 1, mean=mean, std=std,
                                        default_mean=DEFAULT_MEAN, default_std=DEFAULT_STD, source=str(model))
    keep = frozenset()
    if precision_plan is not None:
        from mobilegen.precision_plan import keep_set_from_json

        if precision is not None and precision.value != "fp16":
            raise UserInputError(f"--precision-plan {precision_plan}: a plan for precision fp16, not {precision.value}")
        precision, keep = Precision("fp16"), keep_set_from_json(precision_plan.read_text(), str(precision_plan))
    plan, _ = plan_for_precision(g, precision.value if precision else None, keep_fp32=keep)
    if len(input) != len(g.inputs):
        names = ", ".join(g.tensors[i].describe() for i in g.inputs)
        raise UserInputError(f"{len(input)} --input given; the model has {len(g.inputs)} inputs: {names}")
    if output and len(output) > len(g.outputs):
        raise UserInputError(f"{len(output)} --output given; the model has {len(g.outputs)} outputs")
    xs = [load_input(path, g.tensors[i], mean, std) for path, i in zip(input, g.inputs)]
    out_t = g.tensors[g.outputs[0]]
    names = None
    if top:
        names = (metadata_labels(meta, out_t.size, source=str(model)) if labels is None else None) or load_labels(labels, out_t.size)
    if meta is not None:
        progress(f"read the model's metadata: normalization mean {meta.mean}, std {meta.std}, "
                 f"{'no labels' if meta.labels is None else f'{len(meta.labels)} labels'} (options given win)")
    progress(f"simulating {len(plan.kernels)} kernels of {model}")
    t0 = time.perf_counter()
    sim = Simulator(plan)
    values = sim.run(xs)
    progress(f"done in {(time.perf_counter() - t0) * 1000:.1f} ms")
    y = values[out_t.index]
    for path, i in zip(output or [], g.outputs):
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, values[i])
        progress(f"wrote {path}")
    if dump_dir is not None:
        written = write_dump(dump_dir, plan.graph, values, folded_tensors(plan))
        progress(f"wrote {len(written)} tensors to {dump_dir}")
    if top:
        scores = dequantize(y, out_t)
        for rank, (i, s) in enumerate(top_k(scores, top), 1):
            typer.echo(f"{rank}. {names[i]} ({i}): {s:.6f}")
