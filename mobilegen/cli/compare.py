from __future__ import annotations

from pathlib import Path

import typer

from mobilegen.cli.common import user_errors
from mobilegen.compare import FLOAT_RTOL, compare_paths, format_rows
from mobilegen.errors import ToleranceExceeded


@user_errors
def compare_cmd(
    a: Path = typer.Argument(..., help="A dump directory or a .npy file."),
    b: Path = typer.Argument(..., help="A dump directory or a .npy file (the reference)."),
    tolerance: int = typer.Option(0, "--tolerance", min=0, help="Largest allowed difference of integer tensors, in LSB."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print tensor names in full."),
    rtol: float = typer.Option(FLOAT_RTOL, "--rtol", min=0.0, help="Largest allowed max|a-b|/max|b| of float tensors."),
) -> None:
    """Per-tensor differences of two dumps; exit 1 naming the first tensor over tolerance."""
    rows = compare_paths(a, b, tolerance, rtol)
    typer.echo(format_rows(rows, verbose))
    bad = [r for r in rows if not r.ok]
    if bad:
        first = bad[0]
        raise ToleranceExceeded(
            f"{len(bad)} of {len(rows)} tensors differ beyond tolerance; first in graph order: "
            f"tensor {first.index} '{first.name}'" + (f" ({first.note})" if first.note else "")
        )
    skipped = sum(r.skipped for r in rows)
    compared = len(rows) - skipped
    typer.echo(f"all {compared} tensors within tolerance" + (f" ({skipped} constants folded at generation skipped)" if skipped else ""))
