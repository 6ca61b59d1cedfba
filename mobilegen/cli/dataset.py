"""`mobilegen dataset ...`: from URL lists, annotations and loose folders to a training folder."""

from __future__ import annotations

import typer

from mobilegen.cli import dataset_check, dataset_fetch, dataset_import

dataset_app = typer.Typer(
    name="dataset",
    help="Prepare training data: fetch URL lists, import Labelme/VOC annotations, check and split image folders.",
    no_args_is_help=True,
)

dataset_app.command("fetch")(dataset_fetch.fetch_cmd)
dataset_app.command("import")(dataset_import.import_cmd)
dataset_app.command("check")(dataset_check.check_cmd)
dataset_app.command("split")(dataset_check.split_cmd)
