"""Storage for product knowledge graphs behind one contract (:class:`GraphStore`).

``open_store`` picks the backend from the URI: a file path means the embedded
SQLite store; ``bolt://`` and ``neo4j://`` (and their ``+s``/``+ssc`` forms) mean Neo4j.
"""

from __future__ import annotations

import os

from .base import GraphStore
from .errors import ContractError, StoreError, StoreUnavailableError
from .models import SOURCES, AttributeEdge, ProductNode, ProductView, RunInfo, StoreStats
from .snapshot import Snapshot

DEFAULT_STORE = "kgmm.db"
NEO4J_SCHEMES = ("bolt://", "bolt+s://", "bolt+ssc://", "neo4j://", "neo4j+s://", "neo4j+ssc://")

__all__ = [
    "AttributeEdge",
    "ContractError",
    "GraphStore",
    "ProductNode",
    "ProductView",
    "RunInfo",
    "SOURCES",
    "Snapshot",
    "StoreError",
    "StoreStats",
    "StoreUnavailableError",
    "default_store_uri",
    "open_store",
]


def default_store_uri() -> str:
    """``$KGMM_STORE`` when set, else ``./kgmm.db``."""
    return os.environ.get("KGMM_STORE") or DEFAULT_STORE


def open_store(uri: str | None = None, *, create: bool = False, **options: object) -> GraphStore:
    """Open the store named by ``uri`` (default: :func:`default_store_uri`).

    Args:
        uri: a file path for the embedded store, or a ``bolt://``/``neo4j://`` URI.
        create: create an embedded store when the file does not exist yet.
        options: backend options (Neo4j: user, password, database).
    """
    uri = uri or default_store_uri()
    if uri.startswith(NEO4J_SCHEMES):
        raise StoreError(f"{uri}: the Neo4j backend is not available in this version of kgmm")
    if "://" in uri:
        raise StoreError(f"{uri}: unknown store scheme; use a file path or bolt:// / neo4j://")
    from .sqlite_store import SQLiteStore

    return SQLiteStore(uri, create=create)
