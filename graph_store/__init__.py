"""Storage for product knowledge graphs behind one contract (:class:`GraphStore`).

``open_store`` (or :meth:`StoreSpec.open`) picks the backend registered for the URI's scheme
(:mod:`graph_store.backends`): a file path means the embedded SQLite store; ``bolt://`` and
``neo4j://`` (and their ``+s``/``+ssc`` forms) mean Neo4j. Driver errors never leave this
package: they arrive as :class:`StoreError` subclasses.
"""

from __future__ import annotations

from .backends import Backend, register_backend, registered, unregister_backend
from .base import GraphStore
from .errors import ContractError, ForeignStoreError, StoreError, StoreReadOnlyError, StoreUnavailableError
from .models import (
    BEHAVIOUR_KIND, DECISIONS, FACT_SOURCES, SOURCES, AttributeEdge, BehaviourEdge, ProductNode, ProductView, Review, RunInfo,
    SourceCode, StoreStats, flagged_value,
)
from .reviews import ReviewExistsError
from .snapshot import Snapshot
from .spec import DEFAULT_STORE, StoreLike, StoreSpec, default_store_uri, opened

NEO4J_SCHEMES = ("bolt://", "bolt+s://", "bolt+ssc://", "neo4j://", "neo4j+s://", "neo4j+ssc://")
"""Prefixes of Neo4j URIs (kept for callers that test a URI by its prefix)."""

__all__ = [
    "AttributeEdge",
    "Backend",
    "BEHAVIOUR_KIND",
    "BehaviourEdge",
    "ContractError",
    "DECISIONS",
    "FACT_SOURCES",
    "DEFAULT_STORE",
    "ForeignStoreError",
    "GraphStore",
    "ProductNode",
    "ProductView",
    "Review",
    "ReviewExistsError",
    "RunInfo",
    "SOURCES",
    "Snapshot",
    "SourceCode",
    "StoreError",
    "StoreLike",
    "StoreReadOnlyError",
    "StoreSpec",
    "StoreStats",
    "StoreUnavailableError",
    "default_store_uri",
    "flagged_value",
    "open_store",
    "opened",
    "register_backend",
    "registered",
    "unregister_backend",
]



def open_store(
    uri: str | None = None,
    *,
    create: bool = False,
    user: str | None = None,
    password: str | None = None,
    database: str | None = None,
    **options: object,
) -> GraphStore:
    """Open the store named by ``uri`` (default: :func:`default_store_uri`).

    The same as ``StoreSpec(uri, user, password, database).open(create=create, **options)``.

    Args:
        uri: a file path for the embedded store, or a URI whose scheme a backend serves
            (``bolt://``/``neo4j://``, ``+s``/``+ssc`` for TLS, e.g. Aura's ``neo4j+s://``).
            None means the default store; an empty string is an error.
        create: create an embedded store when the file does not exist yet (a Neo4j
            database always exists on its server).
        user, password, database: Neo4j credentials (each falls back to ``$NEO4J_USER``,
            ``$NEO4J_PASSWORD``, ``$NEO4J_DATABASE`` when None); the embedded store ignores them.
        options: backend options, e.g. the tuning knobs of
            :class:`graph_store.neo4j_store.Neo4jStore`.

    Raises:
        StoreUnavailableError: the Neo4j server is unreachable or refused the credentials.
        StoreError: anything else that prevents opening the store.
    """
    spec = StoreSpec(default_store_uri() if uri is None else uri, user=user, password=password, database=database)
    return spec.open(create=create, **options)
