"""Options shared by several commands, declared once."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer

from graph_store import DEFAULT_STORE

StoreOption = Annotated[
    str,
    typer.Option(
        "--store",
        "-s",
        envvar="KGMM_STORE",
        help="Graph store: a file path for the embedded store, or bolt://HOST:PORT / neo4j://HOST:PORT.",
        show_default=True,
    ),
]
DEFAULT_STORE_VALUE = DEFAULT_STORE


class TableFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


class StatsFormat(str, Enum):
    table = "table"
    json = "json"


FormatOption = Annotated[TableFormat, typer.Option("--format", "-f", help="Output format.")]
LimitOption = Annotated[Optional[int], typer.Option("--limit", "-n", min=1, help="Show at most this many rows.")]
