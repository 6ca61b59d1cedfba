from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from mobilegen.cli.common import progress, user_errors
from mobilegen.verify.host import Arch


class HostBackend(str, Enum):
    gpu = "gpu"
    cpu = "cpu"


@user_errors
def verify_cmd(
    project: Path = typer.Argument(..., exists=True, file_okay=False, help="A project made by `mobilegen generate`."),
    input: list[Path] = typer.Option(..., "--input", "-i", exists=True, dir_okay=False, help="The input tensor (.npy); one per graph input, in the model's order."),
    output: list[Path] = typer.Option(..., "--output", "-o", dir_okay=False, help="Where to write the output tensor (.npy); one per graph output, in the model's order."),
    dump_dir: Path = typer.Option(None, "--dump-dir", file_okay=False, help="Write every tensor, plus tensors.json."),
    backend: HostBackend = typer.Option(HostBackend.gpu, "--backend", help="The GPU backend (Android: GLES 3.1 on Mesa; iOS: the Metal backend on the host executor) or the CPU fallback."),
    arch: Arch = typer.Option(Arch.host, "--arch", help="Build for this machine, or cross-compile for Arm Linux and run under qemu-user (Android, CPU backend only)."),
    repeat: int = typer.Option(10, "--repeat", min=1, max=99999, help="Warm runs after the first (cold) one; the best is reported."),
    build_dir: Path = typer.Option(None, "--build-dir", file_okay=False, help="CMake build directory (default: PROJECT/.mobilegen/host-build/ARCH)."),
) -> None:
    """Build the generated engine (Android or iOS, detected) and run it headless: here, or for Arm Linux under qemu."""
    from mobilegen.verify.host import CROSS, IOS_COMPILER, build_host, check_backend, detect_project, require_tools, run_host

    target = detect_project(project).target
    check_backend(arch, backend.value, target)
    require_tools(arch, target)
    if target == "ios":
        where = f"this machine (the iOS host proof, {IOS_COMPILER})"
    else:
        where = "this machine" if arch is Arch.host else f"{arch.value} Linux ({CROSS[arch].compiler})"
    progress(f"building the engine of {project} for {where} with CMake")
    runner = build_host(project, build_dir, arch=arch)
    gpu = "Metal backend on the host executor" if target == "ios" else "GLES backend"
    progress(f"running on the {backend.value} backend" + (f" ({gpu})" if backend.value == "gpu" else "")
             + ("" if arch is Arch.host else f" under {CROSS[arch].qemu}"))
    report = run_host(runner, project, input, output, dump_dir=dump_dir, backend=backend.value, repeat=repeat + 1,
                      arch=arch)
    typer.echo(f"wrote {', '.join(map(str, output))}" + (f" and {dump_dir}" if dump_dir else ""))
    if "first_run_ms" in report:
        emulated = "" if arch is Arch.host else f" (emulated by {CROSS[arch].qemu}: says nothing about a phone)"
        if target == "ios" and report["backend"] == "gpu":
            emulated = " (the Metal kernels as C++ on this CPU: says nothing about a phone)"
        typer.echo(f"{report['backend']} backend on {arch.value}: cold run {report['first_run_ms']:.2f} ms, "
                   f"warm {report['best_warm_run_ms']:.2f} ms (best of {repeat}){emulated}")
