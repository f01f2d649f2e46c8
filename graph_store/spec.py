"""``StoreSpec``: which store to open and as whom, passed whole from the CLI to every entry point.

A URI alone cannot reach a Neo4j server that needs a password, and a password must not travel
inside the URI (it would land in logs, reports and ``ps``). So every entry point that reads or
writes a graph (``build-kg``, ``pretrain``, ``complete``, ``evaluate``, ``query``...) takes a
:class:`StoreSpec` (or, for backwards compatibility, a plain path or URI string) and opens it
the same way, credentials included.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Union
from urllib.parse import urlsplit

from .backends import FILE_SCHEME, backend_for, scheme_of
from .base import GraphStore
from .errors import StoreError

DEFAULT_STORE = "kgmm.db"
ENV_STORE = "KGMM_STORE"
ENV_USER, ENV_PASSWORD, ENV_DATABASE = "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE"


def default_store_uri() -> str:
    """``$KGMM_STORE`` when set, else ``./kgmm.db``."""
    return os.environ.get(ENV_STORE) or DEFAULT_STORE


@dataclass(frozen=True)
class StoreSpec:
    """A store to open: its URI and, for server backends, the credentials.

    Args:
        uri: a file path (the embedded store) or ``scheme://...`` served by a registered backend
            (``bolt://``, ``neo4j://`` and their ``+s``/``+ssc`` forms for Neo4j).
        user, password, database: for server backends; None means ``$NEO4J_USER``,
            ``$NEO4J_PASSWORD``, ``$NEO4J_DATABASE`` (read when the store is opened), then the
            backend's default. The embedded store ignores them. The password never appears in
            ``repr``/``str``.

    Raises:
        StoreError: the URI is empty (``--store ""`` must not quietly become ``./kgmm.db``).
    """

    uri: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    database: str | None = None

    def __post_init__(self) -> None:
        uri = os.fspath(self.uri) if isinstance(self.uri, os.PathLike) else self.uri
        if not isinstance(uri, str) or not uri.strip():
            raise StoreError(
                f"the store is empty ({uri!r}): name a file (e.g. {DEFAULT_STORE}) or a bolt:// / neo4j:// URI"
            )
        object.__setattr__(self, "uri", uri)

    @classmethod
    def coerce(cls, store: "StoreLike | None") -> "StoreSpec":
        """``store`` as a spec: a spec as is, a path or URI string wrapped, None the default store."""
        if isinstance(store, StoreSpec):
            return store
        return cls(default_store_uri() if store is None else store)  # type: ignore[arg-type]

    @property
    def scheme(self) -> str:
        """The URI scheme, ``""`` for a file path."""
        return scheme_of(self.uri)

    @property
    def is_file(self) -> bool:
        """True for the embedded store: a file in a folder (reports can sit next to it)."""
        return self.scheme == FILE_SCHEME

    def open(self, *, create: bool = False, **options: object) -> GraphStore:
        """Open the store with the backend registered for its scheme.

        Args:
            create: create an embedded store when the file does not exist yet (a server's
                database always exists).
            options: backend options (e.g. Neo4j's ``batch_rows``, ``max_retry_time``).

        Raises:
            StoreUnavailableError: the server is unreachable or refused the credentials.
            StoreError: anything else that prevents opening the store.
        """
        return backend_for(self.uri).load()(self, create=create, **options)

    def slug(self) -> str:
        """A file-name-safe name of the store, e.g. ``bolt-db.example.com-7687-neo4j``.

        For files written on behalf of a server store, which has no folder of its own (the
        database is named only when given, here or in ``$NEO4J_DATABASE``).
        """
        if self.is_file:
            return os.path.basename(self.uri) or DEFAULT_STORE
        parts = urlsplit(self.uri)
        host = parts.netloc.rsplit("@", 1)[-1].replace(":", "-")
        name = "-".join(p for p in (self.scheme, host, self.database or os.environ.get(ENV_DATABASE)) if p)
        return "".join(c if c.isalnum() or c in "-._" else "_" for c in name)

    def __str__(self) -> str:
        return self.uri


StoreLike = Union[StoreSpec, str, "os.PathLike[str]"]
"""What entry points accept as a store: a spec, or a path / URI string (no credentials)."""


@contextmanager
def opened(store: GraphStore | StoreLike | None, *, create: bool = False) -> Iterator[GraphStore]:
    """An open store for the length of a ``with`` block.

    An already open :class:`GraphStore` is used as is and left open (its owner closes it);
    a spec, path or URI is opened here and closed on leaving the block.
    """
    if isinstance(store, GraphStore):
        yield store
        return
    graph = StoreSpec.coerce(store).open(create=create)
    try:
        yield graph
    finally:
        graph.close()
