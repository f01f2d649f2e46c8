"""The Neo4j backend: the same contract as the embedded store, over Bolt with the official driver.

* Every write runs in managed transactions (``session.execute_write``), so the driver retries
  them on transient failures (a lost connection, a leader switch, a deadlock); every node is
  written with ``MERGE`` on its natural key, and an edge with ``MERGE`` or with ``CREATE`` once
  the same transaction found it missing, so a retried or rerun batch leaves one copy. Large row
  lists are sent in chunks of ``batch_rows`` inside a transaction. A write is one transaction,
  except a batch of catalog or text writes of at least ``2 * min_slice`` products: its
  categories and values are written first, then its products in up to ``write_threads``
  slices, one transaction each, at once (:mod:`graph_store.neo4j_parallel` says why that
  cannot deadlock and what a failure leaves committed).
* Constraints and indexes (:func:`graph_store.cypher.schema_statements`) are created
  idempotently before the first write, so read-only accounts can still query.
* Reads that can be large (products, triples, snapshot) are paged by product id (keyset
  paging on the unique index), one short read transaction per page, so memory is bounded
  by a page plus what the caller keeps.
* The constructor makes no network call; :meth:`Neo4jStore.connect` (called by
  ``open_store``) proves the server, the credentials and the database, and every driver
  failure becomes a :class:`StoreError` with one line that names the URI, never the password
  (``repr`` and log lines never contain it either; credentials inside the URI are refused).
"""

from __future__ import annotations

import json
import logging
import os
import re
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Callable, ContextManager, Iterator, Sequence, TypeVar
from urllib.parse import urlsplit, urlunsplit

import neo4j
from neo4j.exceptions import (
    AuthError,
    ConfigurationError,
    DriverError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
)

from . import cypher, neo4j_parallel, neo4j_reviews, neo4j_writes
from .base import GraphStore
from .errors import ContractError, StoreError, StoreUnavailableError
from .models import (
    CATEGORY_SEPARATOR, FACT_SOURCES, AttributeEdge, BehaviourEdge, ProductNode, ProductView, Review, RunInfo, StoreStats,
)
from .reviews import ReviewOps
from .snapshot import Snapshot, build_snapshot
from .spec import ENV_DATABASE, ENV_PASSWORD, ENV_USER, StoreSpec

log = logging.getLogger(__name__)
T = TypeVar("T")

# Without a handler anywhere, Python prints the driver's WARNINGs (each retry of a transaction,
# with multi-line socket errors) on stderr; the store's own error says it in one line instead.
# Applications that configure logging still receive every driver record.
logging.getLogger("neo4j").addHandler(logging.NullHandler())

DEFAULT_USER = "neo4j"
DEFAULT_DATABASE = "neo4j"


def open_neo4j(spec: StoreSpec, *, create: bool = False, **options: Any) -> "Neo4jStore":
    """The registered opener of ``bolt://`` and ``neo4j://`` URIs (:mod:`graph_store.backends`).

    Connects once, so a wrong address or password is reported here; ``create`` has no
    meaning for a server (its database exists) and is ignored. ``options`` are the tuning
    knobs of :class:`Neo4jStore`.
    """
    knobs = {k: v for k, v in options.items() if v is not None}
    store = Neo4jStore(spec.uri, user=spec.user, password=spec.password, database=spec.database, **knobs)
    try:
        return store.connect()
    except BaseException:
        store.close()
        raise


class Neo4jStore(GraphStore):
    """GraphStore in a Neo4j 5 database (Community or Enterprise, local or Aura).

    Args:
        uri: ``bolt://``, ``neo4j://`` or their ``+s`` / ``+ssc`` forms.
        user: defaults to ``$NEO4J_USER``, then ``neo4j``.
        password: defaults to ``$NEO4J_PASSWORD``; kept only inside the driver's auth token.
        database: defaults to ``$NEO4J_DATABASE``, then ``neo4j``.
        batch_rows: rows per ``UNWIND`` statement inside a write transaction.
        page_size: products per page when streaming products, triples and snapshots.
        connection_timeout: seconds to wait for a TCP connection.
        max_retry_time: seconds the driver keeps retrying a transaction that failed transiently.
        write_threads: transactions one catalog or text batch may run at once (1: one transaction).
        min_slice: products below which a batch is not sliced further. Below about that size a
            slice's own transaction, and the one for the shared nodes, cost more than the
            parallel work saves: the Flipkart sample's one batch of 1,050 products took 0.15-0.3 s
            longer in two slices than in one transaction (so 600: it stays one transaction,
            while the default batch of 2,000 products is written in three slices).
    """

    def __init__(
        self,
        uri: str,
        *,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        batch_rows: int = 10_000,
        page_size: int = 2_000,
        connection_timeout: float = 10.0,
        max_retry_time: float = 30.0,
        write_threads: int = 4,
        min_slice: int = 600,
    ) -> None:
        self.uri = _redact(uri)
        if self.uri != uri:
            raise StoreError(
                f"{self.uri}: credentials in the URI are not supported; pass --user/--password "
                "or set NEO4J_USER/NEO4J_PASSWORD"
            )
        self.user = user or os.environ.get(ENV_USER) or DEFAULT_USER
        self.database = database or os.environ.get(ENV_DATABASE) or DEFAULT_DATABASE
        self.batch_rows = batch_rows
        self.page_size = page_size
        self.write_threads = write_threads
        self.min_slice = min_slice
        self._parallel = neo4j_parallel.ParallelWrites(max(write_threads, 1))
        if password is None:
            password = os.environ.get(ENV_PASSWORD)
        self._password_given = bool(password)
        self._schema_ready = False
        try:
            self._driver = neo4j.GraphDatabase.driver(
                uri,
                auth=neo4j.basic_auth(self.user, password or ""),
                connection_timeout=connection_timeout,
                max_transaction_retry_time=max_retry_time,
                user_agent="kgmm",
                # The queries are fixed, so server notifications (e.g. "property `score` does
                # not exist yet" on a graph without predictions) are noise to a user: off.
                notifications_min_severity="OFF",
            )
        except (ConfigurationError, ValueError) as err:
            raise StoreError(f"{self.uri}: not a usable Neo4j URI ({_one_line(err)})") from None

    def __repr__(self) -> str:
        return f"Neo4jStore(uri={self.uri!r}, user={self.user!r}, database={self.database!r})"

    __str__ = __repr__

    # -- plumbing ----------------------------------------------------------------

    def connect(self) -> "Neo4jStore":
        """Check the server, the credentials and the database once (no retry loop); returns self."""
        try:
            with self._translate("connecting"), self._session() as session:
                session.run(cypher.ping()).consume()
        except ValueError as err:  # e.g. a port that is not a number, found when resolving
            raise StoreError(f"{self.uri}: not a usable Neo4j URI ({_one_line(err)})") from None
        log.debug("connected to %s as %s, database %s", self.uri, self.user, self.database)
        return self

    def close(self) -> None:
        self._parallel.close()
        self._driver.close()

    def _session(self) -> neo4j.Session:
        return self._driver.session(database=self.database)

    def _driver_errors(self, action: str) -> ContextManager[None]:
        return self._translate(action)

    @contextmanager
    def _translate(self, action: str) -> Iterator[None]:
        """Turn driver failures into one-line store errors that name the URI, never the password."""
        try:
            yield
        except AuthError as err:
            hint = (
                " (check --user/--password or NEO4J_USER/NEO4J_PASSWORD)"
                if self._password_given
                else " (no password given: pass --password or set NEO4J_PASSWORD)"
            )
            raise StoreUnavailableError(
                f"Neo4j at {self.uri} refused the credentials of user {self.user!r}{hint}"
            ) from err
        except (ServiceUnavailable, SessionExpired) as err:
            reason = _unavailable_reason(err)
            if action == "connecting":
                message = f"cannot reach Neo4j at {self.uri} ({reason}); is the server running?"
            else:
                message = f"lost Neo4j at {self.uri} while {action} ({reason}); rerun when the server is back"
            raise StoreUnavailableError(message) from err
        except Neo4jError as err:
            if err.code == "Neo.ClientError.Database.DatabaseNotFound":
                raise StoreError(
                    f"Neo4j at {self.uri} has no database {self.database!r} (pass --database or set NEO4J_DATABASE)"
                ) from err
            raise StoreError(f"Neo4j at {self.uri} failed while {action}: {_one_line(err.message or err)}") from err
        except DriverError as err:
            raise StoreUnavailableError(f"Neo4j at {self.uri} failed while {action}: {_one_line(err)}") from err

    def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        with self._translate("creating constraints"), self._session() as session:
            for statement in cypher.schema_statements() + neo4j_reviews.SCHEMA:
                session.run(statement).consume()
            session.run(cypher.await_indexes(), seconds=300).consume()
        self._schema_ready = True

    def _write(self, action: str, work: Callable[[neo4j.ManagedTransaction], T]) -> T:
        self._ensure_schema()
        with self._translate(action), self._session() as session:
            return session.execute_write(work)

    def _read(self, action: str, work: Callable[[neo4j.ManagedTransaction], T]) -> T:
        with self._translate(action), self._session() as session:
            return session.execute_read(work)

    def _rows(self, action: str, query: str, **params: Any) -> list[list]:
        return self._read(action, lambda tx: tx.run(query, params).values())

    def _pages(self, action: str, query: str, **params: Any) -> Iterator[list]:
        """Rows of a keyset-paged query whose first column is the product id it pages on."""
        after = ""
        while True:
            rows = self._rows(action, query, after=after, limit=self.page_size, **params)
            if not rows:
                return
            yield from rows
            after = rows[-1][0]

    # -- writes ------------------------------------------------------------------

    def _slices(self, count: int) -> int:
        """How many transactions write a batch of ``count`` products."""
        return max(1, min(self.write_threads, count // max(self.min_slice, 1)))

    def _upsert_products(self, products: Sequence[ProductNode], edges: Sequence[AttributeEdge]) -> None:
        rows = self.batch_rows
        self._sliced_write(
            "writing products", "writing categories and values", list(dict.fromkeys(p.id for p in products)), products, edges,
            lambda tx: neo4j_writes.upsert_products(tx, products, edges, rows),
            lambda piece: lambda tx: neo4j_writes.upsert_products(tx, piece.products, piece.edges, rows, categories_written=True),
        )

    def _replace_edges(self, product_ids: Sequence[str], source: str, edges: Sequence[AttributeEdge]) -> None:
        ids, rows = list(dict.fromkeys(product_ids)), self.batch_rows
        self._sliced_write(
            f"writing {source} edges", "writing values", ids, (), edges,
            lambda tx: neo4j_writes.write_edges(tx, source, ids, edges, rows),
            lambda piece: lambda tx: neo4j_writes.write_edges(tx, source, piece.product_ids, piece.edges, rows),
        )

    def _sliced_write(
        self,
        action: str,
        shared_action: str,
        ids: list[str],
        products: Sequence[ProductNode],
        edges: Sequence[AttributeEdge],
        whole: neo4j_parallel.Work,
        per_slice: Callable[[neo4j_writes.Slice], neo4j_parallel.Work],
    ) -> None:
        """A batch of ``ids``: ``whole`` in one transaction when it is small; else its shared nodes
        (categories, values) in one transaction, then ``per_slice`` of each slice of its products,
        one transaction each, at once (:mod:`graph_store.neo4j_parallel`)."""
        parts = self._slices(len(ids))
        if parts == 1:
            self._write(action, whole)
            return
        self._write(shared_action, lambda tx: neo4j_writes.write_shared_nodes(tx, products, edges, self.batch_rows))
        pieces = neo4j_writes.split_by_product(ids, products, edges, parts)
        self._parallel.run(action, self._write, [(len(piece.product_ids), per_slice(piece)) for piece in pieces])

    def _write_predictions(self, run: RunInfo, edges: Sequence[AttributeEdge]) -> int:
        ids = sorted({e.product_id for e in edges})
        (run_query, run_params), (query, params) = cypher.write_predictions(run, edges, _now())

        def work(tx: neo4j.ManagedTransaction) -> int:
            unknown = [r[0] for r in tx.run(cypher.unknown_products(), ids=ids).values()]
            if unknown:
                raise ContractError(f"predictions for unknown products: {sorted(unknown)[:5]}")
            tx.run(run_query, run_params).consume()
            return sum(tx.run(query, chunk).single(strict=True)["written"] for chunk in neo4j_writes.chunks(params, self.batch_rows))

        return self._write("writing predictions", work)

    def _upsert_behaviour(self, edges: Sequence[BehaviourEdge]) -> int:
        ids = sorted({pid for e in edges for pid in (e.product_a, e.product_b)})
        params = {"rows": cypher.behaviour_rows(edges)}

        def work(tx: neo4j.ManagedTransaction) -> int:
            unknown = [r[0] for r in tx.run(cypher.unknown_products(), ids=ids).values()]
            if unknown:
                raise ContractError(f"behaviour edges for unknown products: {sorted(unknown)[:5]}")
            for chunk in neo4j_writes.chunks(params, self.batch_rows):
                tx.run(cypher.merge_behaviour(), chunk).consume()
            return len(edges)

        return self._write("writing behaviour edges", work)

    def _known_products(self, product_ids: Sequence[str]) -> set[str]:
        return {r[0] for r in self._rows("looking up products", cypher.known_products(), ids=list(product_ids))}

    def _iter_behaviour(self, kinds: tuple[str, ...] | None) -> Iterator[BehaviourEdge]:
        pages = self._pages("reading behaviour edges", cypher.behaviour_page(), kinds=list(kinds) if kinds is not None else None)
        for pid, edges in pages:
            for other, kind, weight in sorted(edges):
                yield BehaviourEdge(pid, other, kind, weight)

    def _delete_run(self, run_id: str) -> int:
        def work(tx: neo4j.ManagedTransaction) -> int:
            removed = tx.run(cypher.delete_run_edges(), run_id=run_id).single(strict=True)["removed"]
            tx.run(cypher.delete_run(), run_id=run_id).consume()
            return removed

        return self._write("deleting a run", work)

    def _prune_orphans(self) -> int:
        return self._write(
            "pruning values", lambda tx: tx.run(cypher.prune_orphan_values()).single(strict=True)["pruned"]
        )

    def _record_build(self, report: dict) -> None:
        params = {"created_at": _now(), "report": json.dumps(report, ensure_ascii=False)}
        self._write("recording the build", lambda tx: tx.run(cypher.record_build(), params).consume())

    def _last_build(self) -> dict | None:
        rows = self._rows("reading the build report", cypher.last_build())
        return json.loads(rows[0][0]) if rows else None

    def _in_review_transaction(self, work: Callable[[ReviewOps], T]) -> T:
        return self._write("recording a review", lambda tx: work(neo4j_reviews.Neo4jReviewOps(tx)))

    def _reviews(self, product_ids: Sequence[str] | None) -> list[Review]:
        return self._read("reading reviews", lambda tx: neo4j_reviews.read_reviews(tx, product_ids))

    # -- reads -------------------------------------------------------------------

    def _get_product(self, product_id: str) -> ProductView | None:
        rows = self._rows("reading a product", cypher.product_by_id(), id=product_id)
        if not rows:
            return None
        *fields, edges = rows[0]
        ordered = sorted(((product_id, *e) for e in edges), key=_for_people)
        return ProductView(_product(fields), tuple(_edge(e) for e in ordered))

    def _iter_products(self) -> Iterator[ProductNode]:
        return (_product(row) for row in self._pages("reading products", cypher.products_page()))

    def _iter_triples(self, sources: tuple[str, ...], min_score: float | None) -> Iterator[AttributeEdge]:
        pages = self._pages("reading triples", cypher.triples_page(), sources=list(sources), min_score=min_score)
        for pid, edges in pages:
            for a, v, source, raw, score, run_id in sorted(edges, key=_by_key):
                yield AttributeEdge(pid, a, v, source, raw, score, run_id or None)

    def _products_with_attribute(
        self, attribute: str, value: str | None, sources: tuple[str, ...], min_score: float | None
    ) -> list[AttributeEdge]:
        rows = self._rows(
            "reading an attribute",
            cypher.edges_with_attribute(with_value=value is not None),
            attribute=attribute,
            value=value,
            sources=list(sources),
            min_score=min_score,
        )
        edges = [(pid, attribute, v, source, raw, score, run_id) for v, found in rows for pid, source, raw, score, run_id in found]
        return [_edge(e) for e in sorted(edges, key=lambda e: (e[0], *_for_people(e)[1:]))]

    def _products_missing_attribute(self, attribute: str, sources: tuple[str, ...]) -> list[str]:
        rows = self._rows("reading an attribute", cypher.products_missing_attribute(), attribute=attribute, sources=list(sources))
        return sorted(r[0] for r in rows)

    def _attribute_vocabulary(self, sources: tuple[str, ...]) -> dict[str, set[str]]:
        vocabulary: dict[str, set[str]] = {}
        rows = self._rows("reading the vocabulary", cypher.attribute_vocabulary(), sources=list(sources))
        for attribute, value in sorted(rows):  # one insertion order, whatever order the server scans in
            vocabulary.setdefault(attribute, set()).add(value)
        return vocabulary

    def _stats(self, top: int) -> StoreStats:
        def work(tx: neo4j.ManagedTransaction) -> StoreStats:
            one = lambda query: tx.run(query).single(strict=True)[0]  # noqa: E731
            products, titled, described, imaged, missing = tx.run(cypher.count_product_modalities()).single(strict=True)
            stats = StoreStats(
                products=products,
                values=one(cypher.count_used_values()),
                categories=one(cypher.count_categories()),
                products_with_title=titled,
                products_with_description=described,
                products_with_image=imaged,
                images_missing=missing,
                runs=one(cypher.count_runs()),
            )
            stats.edges_by_source = {s: n for s, n in tx.run(cypher.count_edges_by_source()).values()}
            stats.behaviour_edges = {k: n for k, n in tx.run(cypher.count_behaviour_by_kind()).values()}
            usage = sorted((tuple(r) for r in tx.run(cypher.attribute_usage()).values()), key=lambda r: (-r[1], r[0]))
            stats.attributes = len(usage)
            stats.top_attributes = usage[:top]
            roots = tx.run(cypher.top_categories(), separator=CATEGORY_SEPARATOR).values()
            stats.top_categories = sorted((tuple(r) for r in roots), key=lambda r: (-r[1], r[0]))[:top]
            return stats

        return self._read("reading statistics", work)

    def _list_runs(self) -> list[RunInfo]:
        def work(tx: neo4j.ManagedTransaction) -> list[RunInfo]:
            counts = dict(tx.run(cypher.count_edges_by_run()).values())
            runs = [
                RunInfo(rid, version or "", created or "", counts.get(rid, 0), json.loads(params or "{}"))
                for rid, version, created, params in tx.run(cypher.list_runs()).values()
            ]
            return sorted(runs, key=lambda r: (r.created_at, r.run_id))

        return self._read("listing runs", work)

    def _snapshot(self, include_predicted: bool, min_score: float | None) -> Snapshot:
        products = [tuple(r) for r in self._pages("reading a snapshot", cypher.snapshot_products_page())]
        categories = [r[0] for r in self._rows("reading a snapshot", cypher.category_paths())]
        sources = [*FACT_SOURCES, "model"] if include_predicted else list(FACT_SOURCES)
        pages = self._pages("reading a snapshot", cypher.snapshot_edges_page(), sources=sources, min_score=min_score)
        edges = ((pid, a, v, source, score) for pid, found in pages for a, v, source, score in found)
        behaviour = ((e.product_a, e.product_b, e.kind, e.weight) for e in self._iter_behaviour(None))
        return build_snapshot(products, categories, edges, behaviour)


def clear_graph(store: Neo4jStore, batch: int = 50_000) -> None:
    """Delete every node and relationship in the store's database, in bounded transactions.

    Destructive and meant for tests and benchmarks; constraints and indexes stay.
    """
    for query in (cypher.delete_some_relationships(), cypher.delete_some_nodes()):
        while store._write("clearing the graph", lambda tx, query=query: tx.run(query, limit=batch).single(strict=True)[0]):
            pass


def _product(row: Sequence) -> ProductNode:
    pid, title, description, path, image, status, reason, properties = row
    return ProductNode(
        id=pid,
        title=title or "",
        description=description or "",
        category=tuple(path.split(CATEGORY_SEPARATOR)) if path else (),
        image=image,
        image_status=status or "none",
        image_reason=reason,
        properties=json.loads(properties) if properties else {},
    )


_RANK = {"catalog": 0, "text": 1, "model": 2, "reviewed": 3}


def _by_key(edge: Sequence) -> tuple:
    """[attribute, value, source, raw, score, run_id] in the contract's triple order."""
    return edge[0], edge[1], _RANK.get(edge[2], 3), edge[5] or ""


def _for_people(edge: Sequence) -> tuple:
    """(pid, attribute, value, source, raw, score, run_id): by attribute, then trust, best score
    first (no score last, like SQL's DESC), then value, as the embedded store orders them."""
    _, attribute, value, source, _, score, run_id = edge
    return attribute, _RANK.get(source, 3), score is None, -(score or 0.0), value, run_id or ""


def _edge(row: Sequence) -> AttributeEdge:
    pid, attribute, value, source, raw, score, run_id = row
    return AttributeEdge(pid, attribute, value, source, raw, score, run_id or None)


def _redact(uri: str) -> str:
    """The URI without any ``user:password@`` part, for messages and ``repr``."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri.split("@")[-1]
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _unavailable_reason(err: Exception) -> str:
    text = _one_line(err)
    match = re.search(r"reason (.+?)\)*$", text) or re.search(r"(Cannot resolve address [^\s)]+|Failed to DNS resolve[^)]*)", text)
    return match.group(1) if match else text[:200]


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
