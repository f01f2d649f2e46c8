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

# Neo4j credentials; the embedded store ignores them. None means "from the variable, else the default".
UserOption = Annotated[
    Optional[str], typer.Option("--user", envvar="NEO4J_USER", help="Neo4j user (default: neo4j).", show_default=False)
]
PasswordOption = Annotated[
    Optional[str],
    typer.Option(
        "--password",
        envvar="NEO4J_PASSWORD",
        help="Neo4j password; prefer the variable, which stays out of shell history and `ps`.",
        show_default=False,
    ),
]
DatabaseOption = Annotated[
    Optional[str],
    typer.Option("--database", envvar="NEO4J_DATABASE", help="Neo4j database (default: neo4j).", show_default=False),
]


class TableFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


class StatsFormat(str, Enum):
    table = "table"
    json = "json"


FormatOption = Annotated[TableFormat, typer.Option("--format", "-f", help="Output format.")]
LimitOption = Annotated[Optional[int], typer.Option("--limit", "-n", min=1, help="Show at most this many rows.")]
