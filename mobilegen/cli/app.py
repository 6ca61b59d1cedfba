"""The `mobilegen` command line: thin commands over the library."""

from __future__ import annotations

import typer

from mobilegen import __version__
from mobilegen.cli import build, compare, dataset, convert, evaluate, extract, generate, inspect, pull, simulate, train, verify
from mobilegen.cli.common import set_debug

app = typer.Typer(
    name="mobilegen",
    help="Read, simulate and convert image classifiers for mobile GPUs (bit-exact with TFLite's reference kernels).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mobilegen {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: bool = typer.Option(False, "--debug", help="Show a traceback for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    set_debug(debug)


app.command("build")(build.build_cmd)
app.command("train")(train.train_cmd)
app.command("convert")(convert.convert_cmd)
app.command("evaluate")(evaluate.evaluate_cmd)
app.command("inspect")(inspect.inspect_cmd)
app.command("simulate")(simulate.simulate_cmd)
app.command("extract")(extract.extract_cmd)
app.command("compare")(compare.compare_cmd)
app.command("generate")(generate.generate_cmd)
app.command("verify")(verify.verify_cmd)
app.command("pull")(pull.pull_cmd)
app.add_typer(dataset.dataset_app, name="dataset")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
