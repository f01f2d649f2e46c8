"""Storage for product knowledge graphs behind one contract (:class:`GraphStore`).

``open_store`` picks the backend from the URI: a file path means the embedded
SQLite store; ``bolt://`` and ``neo4j://`` (and their ``+s``/``+ssc`` forms) mean Neo4j.
"""

from __future__ import annotations

import os

from .base import GraphStore
from .errors import ContractError, StoreError, StoreUnavailableError
from .models import BEHAVIOUR_KIND, SOURCES, AttributeEdge, BehaviourEdge, ProductNode, ProductView, RunInfo, SourceCode, StoreStats
from .snapshot import Snapshot

DEFAULT_STORE = "kgmm.db"
NEO4J_SCHEMES = ("bolt://", "bolt+s://", "bolt+ssc://", "neo4j://", "neo4j+s://", "neo4j+ssc://")

__all__ = [
    "AttributeEdge",
    "BEHAVIOUR_KIND",
    "BehaviourEdge",
    "ContractError",
    "GraphStore",
    "ProductNode",
    "ProductView",
    "RunInfo",
    "SOURCES",
    "Snapshot",
    "SourceCode",
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
        uri: a file path for the embedded store, or a ``bolt://``/``neo4j://`` URI
            (``+s``/``+ssc`` for TLS, e.g. Aura's ``neo4j+s://``).
        create: create an embedded store when the file does not exist yet (a Neo4j
            database always exists on its server).
        options: backend options. Neo4j: ``user``, ``password``, ``database`` (each falls back
            to ``$NEO4J_USER``, ``$NEO4J_PASSWORD``, ``$NEO4J_DATABASE`` when None), and the
            tuning knobs of :class:`graph_store.neo4j_store.Neo4jStore`. The embedded store
            ignores the Neo4j credentials.

    Raises:
        StoreUnavailableError: the Neo4j server is unreachable or refused the credentials.
        StoreError: anything else that prevents opening the store.
    """
    uri = uri or default_store_uri()
    if uri.startswith(NEO4J_SCHEMES):
        try:
            from .neo4j_store import Neo4jStore
        except ImportError:
            raise StoreError(f"{uri}: the Neo4j backend needs the neo4j driver: pip install 'kgmm[neo4j]'") from None
        store = Neo4jStore(uri, **{k: v for k, v in options.items() if v is not None})  # type: ignore[arg-type]
        try:
            return store.connect()
        except BaseException:
            store.close()
            raise
    if "://" in uri:
        raise StoreError(f"{uri}: unknown store scheme; use a file path or bolt:// / neo4j://")
    unknown = set(options) - {"user", "password", "database"}
    if unknown:
        raise TypeError(f"the embedded store takes no options {sorted(unknown)}")
    from .sqlite_store import SQLiteStore

    return SQLiteStore(uri, create=create)
