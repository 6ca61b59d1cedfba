"""`mobilegen dataset check` and `dataset split`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from mobilegen.cli.common import progress, user_errors
from mobilegen.dataset.check import DEFAULT_MIN_SIDE, check_folder
from mobilegen.dataset.index import DEFAULT_JOBS
from mobilegen.dataset.phash import DEFAULT_NEAR_DISTANCE
from mobilegen.dataset.split import split_folder

NEAR_HELP = ("Largest Hamming distance (of 64 bits) between the perceptual hashes of two near-duplicates; "
             "resized, re-encoded or slightly brightened copies land at 0-4, unrelated photos near 32.")


@user_errors
def check_cmd(
    root: Path = typer.Argument(..., exists=True, file_okay=False, metavar="DIR",
                                help="A class folder (DIR/<class>/<image>) or a split folder (DIR/train|val|test/<class>/<image>)."),
    min_side: int = typer.Option(DEFAULT_MIN_SIDE, "--min-side", min=0, help="Images smaller than this on a side are reported as tiny (a warning)."),
    near: int = typer.Option(DEFAULT_NEAR_DISTANCE, "--near", min=0, max=63, help=NEAR_HELP),
    val_split: float = typer.Option(0.2, "--val-split", min=0.0, max=0.99,
                                    help="For a class folder: the validation share `mobilegen train` will hold out (its --val-split); "
                                         "duplicate groups that split would cut are reported."),
    seed: int = typer.Option(0, "--seed", help="The seed of that split (train's --seed)."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 on warnings too (duplicates within or across classes, tiny, low-detail, imbalance)."),
    jobs: int = typer.Option(DEFAULT_JOBS, "--jobs", min=1, help="Images decoded in parallel."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON document instead of text."),
) -> None:
    """Report class balance, corrupt and tiny images, and exact and near duplicates (across splits,
    across classes, within a class). Exit 1 on errors (corrupt images, duplicates across splits, a
    class without a usable image), 0 with warnings unless --strict."""
    rep = check_folder(root, min_side=min_side, near_distance=near, val_split=val_split, seed=seed,
                       jobs=jobs, on_progress=progress)
    typer.echo(json.dumps(rep.to_json(), indent=2) if as_json else rep.summary())
    if rep.errors or (strict and rep.warnings):
        raise typer.Exit(1)


@user_errors
def split_cmd(
    root: Path = typer.Argument(..., exists=True, file_okay=False, metavar="DIR", help="The class folder to split (DIR/<class>/<image>)."),
    out: Path = typer.Option(..., "--out", "-o", file_okay=False,
                             help="Where OUT/train|val|test/<class>/ and OUT/split.json go: new, empty, or an earlier split."),
    val: float = typer.Option(0.1, "--val", min=0.0, max=0.99, help="Share of each class for validation."),
    test: float = typer.Option(0.1, "--test", min=0.0, max=0.99, help="Share of each class for test."),
    seed: int = typer.Option(0, "--seed", help="Another seed gives another split (hash-ordered, the same on every machine)."),
    near: int = typer.Option(DEFAULT_NEAR_DISTANCE, "--near", min=0, max=63, help=NEAR_HELP + " Groups of them stay on one side."),
    copy: bool = typer.Option(False, "--copy", help="Copy the images (default: hard links where OUT is on the same file system, else copies)."),
    force: bool = typer.Option(False, "--force", help="Replace a split in OUT made with other settings or from another folder."),
    jobs: int = typer.Option(DEFAULT_JOBS, "--jobs", min=1, help="Images decoded in parallel."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON document instead of text."),
) -> None:
    """A deterministic, stratified train/val/test split that keeps near-duplicates on one side and
    leaves corrupt images out; `mobilegen train OUT/train` reads the result as it is. A re-run with
    the same settings changes nothing."""
    rep = split_folder(root, out, val=val, test=test, seed=seed, near_distance=near,
                       link="copy" if copy else "auto", force=force, jobs=jobs, on_progress=progress)
    typer.echo(json.dumps(rep.to_json(), indent=2) if as_json else rep.summary())
