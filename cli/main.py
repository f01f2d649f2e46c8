"""Entry point of the ``kgmm`` command."""

from __future__ import annotations

from typing import Annotated

import typer

from kgmm import __version__

from .build import build_kg
from .complete import complete, runs
from .errors import DEBUG
from .evaluate import evaluate
from .export import export
from .pretrain import pretrain
from .query import query_app, stats

app = typer.Typer(
    name="kgmm",
    help="Product knowledge graphs and knowledge-aware multimodal pretraining for e-commerce catalogs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kgmm {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    """kgmm: build a product knowledge graph, pretrain on it, complete and query attributes."""
    DEBUG["on"] = debug


app.command("build-kg")(build_kg)
app.add_typer(query_app, name="query")
app.command("stats")(stats)
app.command("export")(export)
app.command("pretrain")(pretrain)
app.command("complete")(complete)
app.command("runs")(runs)
app.command("evaluate")(evaluate)

if __name__ == "__main__":
    app()
