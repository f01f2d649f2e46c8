"""Options shared by several commands, declared once.

Every command that reads or writes a graph takes ``--store`` with ``--user/--password/--database``
and hands them on together as one :class:`graph_store.StoreSpec` (:func:`store_spec`), so a
password-protected Neo4j works the same for build-kg, query, pretrain, complete and evaluate.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer

from graph_store import DEFAULT_STORE, StoreSpec

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
OptionalStoreOption = Annotated[
    Optional[str],
    typer.Option(
        "--store",
        "-s",
        help="Use this graph store (a file path, or bolt://HOST:PORT / neo4j://HOST:PORT) instead of a catalog file.",
        show_default=False,
    ),
]
"""For commands where the store is an alternative to another input (no $KGMM_STORE: it would
silently win over the catalog argument)."""

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


def store_spec(store: str, user: Optional[str], password: Optional[str], database: Optional[str]) -> StoreSpec:
    """The four store options as one spec (None credentials fall back to NEO4J_* when opened).

    Raises:
        StoreError: ``--store ""`` (an empty store must not quietly become ./kgmm.db).
    """
    return StoreSpec(store, user=user, password=password, database=database)


class TableFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


class StatsFormat(str, Enum):
    table = "table"
    json = "json"


FormatOption = Annotated[TableFormat, typer.Option("--format", "-f", help="Output format.")]
LimitOption = Annotated[Optional[int], typer.Option("--limit", "-n", min=1, help="Show at most this many rows.")]
