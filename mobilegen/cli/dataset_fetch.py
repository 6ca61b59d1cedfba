"""`mobilegen dataset fetch`: download url,label rows into a class folder that `train` reads."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from mobilegen.cli.common import user_errors
from mobilegen.dataset import fetch as fetch_mod
from mobilegen.dataset.imagefile import DEFAULT_MAX_BYTES, WEB_FORMATS


@user_errors
def fetch_cmd(
    urls: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                help="CSV of url,label rows (UTF-8; a header row naming url and label is allowed)."),
    out: Path = typer.Option(..., "--out", file_okay=False,
                             help="The class folder to fill: OUT/<label>/<sha256[:16]>.<ext>. Re-running resumes."),
    jobs: int = typer.Option(fetch_mod.DEFAULT_JOBS, "--jobs", min=1, max=64,
                             help="Downloads (and connections) at once."),
    timeout: float = typer.Option(fetch_mod.DEFAULT_TIMEOUT, "--timeout", min=0.001,
                                  help="Seconds without a byte before a read gives up (then retried)."),
    deadline: float = typer.Option(fetch_mod.DEFAULT_DEADLINE, "--deadline", min=0.001,
                                   help="Seconds for a whole download attempt, redirects included."),
    retries: int = typer.Option(fetch_mod.DEFAULT_RETRIES, "--retries", min=0,
                                help="Extra attempts after a transient failure (timeout, reset, HTTP 408/429/5xx)."),
    max_bytes: int = typer.Option(DEFAULT_MAX_BYTES, "--max-bytes", min=1, help="Largest file accepted, in bytes."),
    min_side: int = typer.Option(0, "--min-side", min=0, help="Refuse images smaller than this many pixels on a side."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
) -> None:
    """Download the images of a url,label CSV into OUT/<label>/, checked and deduplicated.

    Only http and https; each file must decode as an image (JPEG, PNG, WebP, BMP, GIF) under the
    size limit; the same content under two URLs is kept once (the first row wins). Labels become
    folder names; ones that name a path (../x, /abs) are refused. The report (every row: fetched,
    skipped or failed, with the reason) is also written to OUT/fetch-report.json.

    Exit status: 0 when no row failed, 1 when at least one did (re-run to retry those), 2 for bad
    input (a missing CSV, bad options), 130 when interrupted (Ctrl-C; re-run to resume).
    """
    bars = []  # the progress bar, made on the first row (fetch_urls counts the rows)
    done = [0]

    def on_progress(n: int, total: int | None) -> None:
        if not bars:
            bars.append(typer.progressbar(length=total, label="fetch", file=sys.stderr))
            bars[0].__enter__()
        bars[0].update(n - done[0])
        done[0] = n

    try:
        report = fetch_mod.fetch_urls(urls, out, jobs=jobs, timeout=timeout, deadline=deadline, retries=retries,
                                      max_bytes=max_bytes, formats=WEB_FORMATS, min_side=min_side,
                                      on_progress=on_progress if sys.stderr.isatty() else None)
    except KeyboardInterrupt:
        typer.echo(f"interrupted: run the same command again to resume (rows done so far are kept in {out})", err=True)
        raise typer.Exit(130) from None
    finally:
        if bars:
            bars[0].__exit__(None, None, None)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=1, ensure_ascii=False))
    else:
        typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(1)
