"""Entry point of the ``kgmm`` command."""

from __future__ import annotations

from typing import Annotated

import typer

from kgmm import __version__
from kgmm.memory import return_freed_memory

from .build import build_kg
from .complete import complete, runs
from .errors import DEBUG, KgmmCommand, KgmmGroup
from .evaluate import evaluate
from .export import export
from .pretrain import pretrain
from .query import query_app, stats
from .review import review_app
from .serve import serve

app = typer.Typer(
    name="kgmm",
    help="Product knowledge graphs and knowledge-aware multimodal pretraining for e-commerce catalogs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=KgmmGroup,
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
    return_freed_memory()  # a large catalog's temporaries go back to the system when freed (kgmm/memory.py)


# KgmmCommand: `kgmm build-kg ... --debug` works like `kgmm --debug build-kg ...`, flags show as flags in --help
app.command("build-kg", cls=KgmmCommand)(build_kg)
app.add_typer(query_app, name="query")
app.add_typer(review_app, name="review")
app.command("stats", cls=KgmmCommand)(stats)
app.command("export", cls=KgmmCommand)(export)
app.command("pretrain", cls=KgmmCommand)(pretrain)
app.command("complete", cls=KgmmCommand)(complete)
app.command("runs", cls=KgmmCommand)(runs)
app.command("evaluate", cls=KgmmCommand)(evaluate)
app.command("serve", cls=KgmmCommand)(serve)

if __name__ == "__main__":
    app()
