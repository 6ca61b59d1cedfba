from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from mobilegen.cli.common import progress, user_errors


class HostBackend(str, Enum):
    gpu = "gpu"
    cpu = "cpu"


@user_errors
def verify_cmd(
    project: Path = typer.Argument(..., exists=True, file_okay=False, help="A project made by `mobilegen generate`."),
    input: Path = typer.Option(..., "--input", "-i", exists=True, dir_okay=False, help="The input tensor (.npy)."),
    output: Path = typer.Option(..., "--output", "-o", dir_okay=False, help="Where to write the output tensor (.npy)."),
    dump_dir: Path = typer.Option(None, "--dump-dir", file_okay=False, help="Write every tensor, plus tensors.json."),
    backend: HostBackend = typer.Option(HostBackend.gpu, "--backend", help="GLES 3.1 on Mesa (gpu) or the CPU fallback."),
    build_dir: Path = typer.Option(None, "--build-dir", file_okay=False, help="CMake build directory (default: PROJECT/build/host)."),
) -> None:
    """Build the generated engine on this machine and run it headless."""
    from mobilegen.verify.host import build_host, run_host

    progress(f"building the engine of {project} with CMake")
    runner = build_host(project, build_dir)
    progress(f"running on the {backend.value} backend")
    report = run_host(runner, project, input, output, dump_dir=dump_dir, backend=backend.value)
    timing = f" ({report['backend']} backend, {report['best_run_ms']:.2f} ms)" if "best_run_ms" in report else ""
    typer.echo(f"wrote {output}" + (f" and {dump_dir}" if dump_dir else "") + timing)
