"""`kgmm export`: the graph as JSONL, CSV triples, Turtle, N-Triples or GraphML."""

from __future__ import annotations

import os
import sys
from enum import Enum
from typing import Annotated, Optional

import typer

from graph_store import open_store
from kg_builder.export import export as export_store

from .errors import guarded, stderr
from .options import DEFAULT_STORE_VALUE, DatabaseOption, PasswordOption, StoreOption, UserOption


class ExportFormat(str, Enum):
    jsonl = "jsonl"
    csv = "csv"
    ttl = "ttl"
    nt = "nt"
    graphml = "graphml"


@guarded
def export(
    format: Annotated[ExportFormat, typer.Option("--format", "-f", help="jsonl (round-trips through build-kg), csv (one row per triple), ttl, nt (schema.org), graphml.")] = ExportFormat.jsonl,
    out: Annotated[Optional[str], typer.Option("--out", "-o", help="Output file; standard output when omitted.")] = None,
    store: StoreOption = DEFAULT_STORE_VALUE,
    user: UserOption = None,
    password: PasswordOption = None,
    database: DatabaseOption = None,
) -> None:
    """Export the whole graph, with each value's source (catalog, text, model) and score."""
    with open_store(store, user=user, password=password, database=database) as graph:
        try:
            count = export_store(graph, format.value, out)
        except BrokenPipeError:
            _reader_went_away()
            return
    if out not in (None, "-"):
        stderr.print(f"wrote {count:,} {'rows' if format is ExportFormat.csv else 'products'} to {out}", markup=False)


def _reader_went_away() -> None:
    """`kgmm export | head`: the reader closed the pipe, which is how such a pipeline ends.

    Point stdout at /dev/null so that the interpreter's final flush does not raise again,
    and end quietly, as `cat` does.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
