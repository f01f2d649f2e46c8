"""The embedded backend: one SQLite file in WAL mode, no server.

Why SQLite: it ships with Python, a killed writer never corrupts it (WAL), and
batched ``executemany`` inside one transaction loads hundreds of thousands of rows
a second. Node keys (category path, value key) are cached in memory for the
lifetime of a connection; the caches are dropped whenever a transaction fails.

Opening is careful with files that are not ours: an SQLite file without kgmm's schema
version (someone's ``shop.db``) is refused before anything is written to it, and a store
on read-only media or without write permission is opened read-only (``mode=ro``, else
``immutable=1`` when not even the WAL index can be made), so it can still be queried.
Every ``sqlite3.Error`` becomes a :class:`StoreError` (see :func:`_store_error`).
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from operator import itemgetter
from pathlib import Path
from typing import Callable, Iterator, Sequence, TypeVar

from .base import GraphStore
from .errors import ContractError, ForeignStoreError, StoreError, StoreReadOnlyError
from .models import (
    CATEGORY_SEPARATOR, FACT_SOURCES, AttributeEdge, BehaviourEdge, ProductNode, ProductView, Review, RunInfo, StoreStats,
)
from .reviews import ReviewOps
from .snapshot import Snapshot
from .sqlite_snapshot import read_snapshot
from .spec import StoreSpec
from .sqlite_files import check_creatable, connect, connect_read_only, store_error, writable
from . import sqlite_reviews
from .sqlite_bulk import ensure_value_index, insert_rows, used_values_sql, value_index_deferred
from .sqlite_stats import read_stats
from .sqlite_schema import (
    BEHAVIOUR_DDL, BEHAVIOUR_STAND_IN, DDL, READABLE_VERSIONS, REVIEWS_DDL, REVIEWS_STAND_IN, SCHEMA_VERSION, SOURCE_CODE,
    SOURCE_NAME,
)

T = TypeVar("T")
_PRODUCT_ID, _PAIR, _SOURCE, _RAW, _SCORE, _RUN_ID = (itemgetter(*i) for i in ((0,), (1, 2), (3,), (4,), (5,), (6,)))
"""Fields of an AttributeEdge by position, for ``map`` (C speed where an attribute read is a Python step)."""
_properties_json = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
"""``json.dumps(p, ensure_ascii=False, sort_keys=True)`` without making an encoder per call (a build
writes a million products)."""
_PRODUCT_COLUMNS = "p.id, p.title, p.description, c.path, p.image, p.image_status, p.image_reason, p.properties"
_BEHAVIOUR_SELECT = (
    "SELECT pa.id, pb.id, b.kind, b.weight FROM behaviour b "
    "JOIN products pa ON pa.pk = b.a_pk JOIN products pb ON pb.pk = b.b_pk"
)
_EDGE_SELECT = (
    "SELECT p.id, v.attribute, v.value, e.source, e.raw, e.score, e.run_id "
    "FROM edges e JOIN products p ON p.pk = e.product_pk JOIN value_nodes v ON v.pk = e.value_pk"
)


def open_sqlite(spec: StoreSpec, *, create: bool = False, read_only: bool | None = None) -> "SQLiteStore":
    """The registered opener of plain file paths (:mod:`graph_store.backends`); the Neo4j
    credentials in ``spec`` do not apply to a file and are ignored."""
    return SQLiteStore(spec.uri, create=create, read_only=read_only)


class SQLiteStore(GraphStore):
    """GraphStore in a single SQLite file.

    Args:
        path: the database file.
        create: create the file when absent; read commands pass False so that a
            mistyped path is an error instead of a new empty store.
        read_only: open without writing anything (no WAL switch, no schema upgrade); None
            decides from the file system: read-only when the file or its folder is not
            writable (read-only media, permissions), since SQLite needs both to write.

    Raises:
        ForeignStoreError: the file is SQLite but not a kgmm store, or not SQLite at all
            (nothing is written to it).
        StoreError: the file cannot be opened or created.
    """

    def __init__(self, path: str | os.PathLike[str], create: bool = True, read_only: bool | None = None) -> None:
        self.path = Path(path)
        self.uri = str(self.path)
        if not self.path.exists():
            if not create:
                raise StoreError(f"no store at {self.path}: build one with `kgmm build-kg CATALOG --store {self.path}`")
            if read_only:
                raise StoreError(f"no store at {self.path} to open read-only")
            check_creatable(self.path)
        elif self.path.is_dir():
            raise StoreError(f"{self.path} is a directory, not a store file: name a file such as {self.path / 'kgmm.db'}")
        if read_only is None:  # a new file is made writable; an existing one is read as the file system allows
            read_only = self.path.exists() and not writable(self.path)
        self.read_only = read_only
        self._categories: dict[str, int] | None = None
        self._values: dict[tuple[str, str], int] | None = None
        with self._driver_errors("opening the store"):
            self._conn = connect_read_only(self.path) if self.read_only else connect(self.path)
            try:
                self._ensure_schema()
            except BaseException:
                self._conn.close()
                raise

    # -- plumbing ----------------------------------------------------------------

    def _ensure_schema(self) -> None:
        """Check the file is a kgmm store (or empty) before writing a byte, then set it up.

        An SQLite file with tables but no kgmm schema version is someone else's database:
        refused, untouched (WAL mode is switched on only after this check).
        """
        tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = None
        if "meta" in tables:
            row = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = row[0] if row else None
        if version is None and tables:
            shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
            raise ForeignStoreError(
                f"{self.path} is an SQLite database but not a kgmm store (it has tables {shown}); "
                "it was left untouched: pick another --store path"
            )
        if version is not None and version not in READABLE_VERSIONS:
            raise StoreError(f"store {self.path} has schema version {version}, this kgmm reads {', '.join(READABLE_VERSIONS)}")
        if self.read_only:
            if version is None:
                raise StoreError(f"{self.path} is empty and read-only: there is no store to read")
            if "behaviour" not in tables:  # an older store: an empty stand-in, nothing written to the file
                self._conn.executescript(BEHAVIOUR_STAND_IN)
            if "reviews" not in tables:
                self._conn.executescript(REVIEWS_STAND_IN)
            return
        self._conn.execute("PRAGMA journal_mode = WAL")
        stamp = f"INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');"
        if version is None:
            self._conn.executescript("BEGIN IMMEDIATE;" + DDL + BEHAVIOUR_DDL + REVIEWS_DDL + stamp + "COMMIT;")
            return
        missing = (BEHAVIOUR_DDL if "behaviour" not in tables else "") + (REVIEWS_DDL if "reviews" not in tables else "")
        if missing or version != SCHEMA_VERSION:  # an older store: the additions are additive, then the new version
            self._conn.executescript("BEGIN IMMEDIATE;" + missing + stamp + "COMMIT;")

    @contextmanager
    def _driver_errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as err:
            raise store_error(self.path, action, err, self.read_only) from err

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; on any failure it rolls back and forgets cached keys."""
        if self.read_only:
            raise StoreReadOnlyError(
                f"store {self.path} is read-only (read-only media or no write permission on the file or its folder); "
                "copy it somewhere writable to change it"
            )
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            if self._conn.in_transaction:  # SQLite may already have rolled back (disk full, I/O error)
                self._conn.execute("ROLLBACK")
            self._categories = self._values = None
            raise
        self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def bulk_load(self) -> Iterator[bool]:
        """Writes inside the block skip the value index when the store has no edges yet; it is
        built once when the block ends (see :mod:`graph_store.sqlite_bulk`). Yields whether.

        A build wraps its passes in this (:meth:`GraphStore.bulk_load`; other backends have no bulk
        mode); reads inside the block stay correct.
        """
        if self.read_only:
            yield False
            return
        with self._driver_errors("building the value index"), value_index_deferred(self._conn) as deferred:
            yield deferred

    def _category_cache(self) -> dict[str, int]:
        if self._categories is None:
            self._categories = dict(self._conn.execute("SELECT path, pk FROM categories"))
        return self._categories

    def _value_cache(self) -> dict[tuple[str, str], int]:
        if self._values is None:
            self._values = {(a, v): pk for a, v, pk in self._conn.execute("SELECT attribute, value, pk FROM value_nodes")}
        return self._values

    def _category_pks(self, paths: set[tuple[str, ...]]) -> dict[tuple[str, ...], int]:
        """Ensure every path and its prefixes exist; returns leaf path -> pk."""
        cache = self._category_cache()
        for path in sorted(paths, key=len):
            for depth in range(1, len(path) + 1):
                key = CATEGORY_SEPARATOR.join(path[:depth])
                if key in cache:
                    continue
                parent = cache.get(CATEGORY_SEPARATOR.join(path[: depth - 1])) if depth > 1 else None
                self._conn.execute(
                    "INSERT OR IGNORE INTO categories(path, name, parent_pk) VALUES (?, ?, ?)",
                    (key, path[depth - 1], parent),
                )
                cache[key] = self._conn.execute("SELECT pk FROM categories WHERE path = ?", (key,)).fetchone()[0]
        return {path: cache[CATEGORY_SEPARATOR.join(path)] for path in paths}

    def _value_pks(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        cache = self._value_cache()
        missing = [key for key in keys if key not in cache]
        if missing:
            self._conn.executemany("INSERT OR IGNORE INTO value_nodes(attribute, value) VALUES (?, ?)", missing)
            rows = self._conn.execute(
                "SELECT v.attribute, v.value, v.pk FROM value_nodes v "
                "JOIN json_each(?) j ON v.attribute = j.value ->> 0 AND v.value = j.value ->> 1",
                (json.dumps(missing),),
            )
            cache.update(((a, v), pk) for a, v, pk in rows)
        return cache

    def _product_pks(self, ids: Sequence[str]) -> dict[str, int]:
        rows = self._conn.execute(
            "SELECT p.id, p.pk FROM products p JOIN json_each(?) j ON p.id = j.value", (json.dumps(list(ids)),)
        )
        return dict(rows)

    def _insert_replaced_edges(self, product_pks: dict[str, int], edges: Sequence[AttributeEdge]) -> None:
        """:meth:`_insert_edges` for edges whose sources' edges of these products were deleted in this
        transaction: no stored row can share a key, only an earlier edge of the same call, which wins
        (as there), so SQLite skips the later one (OR IGNORE) and no dictionary is built per edge.
        The rows stream from C iterators: a build passes ten million edges through here.
        """
        pairs = list(map(_PAIR, edges))
        values = self._value_pks(set(pairs))
        products, value_pks = map(product_pks.__getitem__, map(_PRODUCT_ID, edges)), map(values.__getitem__, pairs)
        insert = "INSERT OR IGNORE INTO edges(product_pk, value_pk, source, run_id, raw, score)"
        sources = set(map(_SOURCE, edges))
        if len(sources) == 1 and set(map(_RUN_ID, edges)) <= {None, ""} and set(map(_SCORE, edges)) == {None}:
            # a build's edges: one source, no run, no score; only what differs is bound
            code = int(SOURCE_CODE[sources.pop()])
            insert_rows(self._conn, insert, zip(products, value_pks, map(_RAW, edges)), 3, row=f"(?, ?, {code}, '', ?, NULL)")
            return
        rows = zip(
            products, value_pks, map(SOURCE_CODE.__getitem__, map(_SOURCE, edges)),
            [run or "" for run in map(_RUN_ID, edges)], map(_RAW, edges), map(_SCORE, edges),
        )
        insert_rows(self._conn, insert, rows, 6)

    def _insert_edges(self, product_pks: dict[str, int], edges: Sequence[AttributeEdge]) -> int:
        values = self._value_pks({(e.attribute, e.value) for e in edges})
        rows: dict[tuple[int, int, int, str], tuple] = {}
        for e in edges:
            key = (product_pks[e.product_id], values[(e.attribute, e.value)], SOURCE_CODE[e.source], e.run_id or "")
            rows.setdefault(key, key + (e.raw, e.score))
        self._conn.executemany(
            "INSERT OR REPLACE INTO edges(product_pk, value_pk, source, run_id, raw, score) VALUES (?, ?, ?, ?, ?, ?)",
            list(rows.values()),
        )
        return len(rows)

    # -- writes ------------------------------------------------------------------

    def _upsert_products(self, products: Sequence[ProductNode], edges: Sequence[AttributeEdge]) -> None:
        latest = {p.id: p for p in products}  # within a batch, the last row of an id wins
        with self._write():
            categories = self._category_pks({p.category for p in latest.values() if p.category})
            insert_rows(
                self._conn,
                "INSERT INTO products(id, title, description, category_pk, image, image_status, image_reason, properties)",
                [
                    (p.id, p.title, p.description, categories.get(p.category), p.image, p.image_status,
                     p.image_reason, _properties_json(p.properties))
                    for p in latest.values()
                ],
                8,
                "ON CONFLICT(id) DO UPDATE SET title=excluded.title, description=excluded.description, "
                "category_pk=excluded.category_pk, image=excluded.image, image_status=excluded.image_status, "
                "image_reason=excluded.image_reason, properties=excluded.properties",
            )
            pks = self._product_pks(list(latest))
            self._conn.execute(
                "DELETE FROM edges WHERE source = 0 AND product_pk IN (SELECT value FROM json_each(?))",
                (json.dumps(list(pks.values())),),
            )
            self._insert_replaced_edges(pks, edges)
            sqlite_reviews.drop_replaced_catalog_values(self._conn, list(pks.values()))

    def _replace_edges(self, product_ids: Sequence[str], source: str, edges: Sequence[AttributeEdge]) -> None:
        with self._write():
            pks = self._product_pks(product_ids)
            self._conn.execute(
                "DELETE FROM edges WHERE source = ? AND product_pk IN (SELECT value FROM json_each(?))",
                (SOURCE_CODE[source], json.dumps(list(pks.values()))),
            )
            self._insert_replaced_edges(pks, [e for e in edges if e.product_id in pks])

    def _write_predictions(self, run: RunInfo, edges: Sequence[AttributeEdge]) -> int:
        with self._write():
            self._conn.execute(
                "INSERT OR IGNORE INTO runs(run_id, model_version, created_at, params) VALUES (?, ?, ?, ?)",
                (run.run_id, run.model_version, run.created_at or _now(), json.dumps(dict(run.params), sort_keys=True)),
            )
            pks = self._product_pks(sorted({e.product_id for e in edges}))
            unknown = {e.product_id for e in edges} - pks.keys()
            if unknown:
                raise ContractError(f"predictions for unknown products: {sorted(unknown)[:5]}")
            values = self._value_pks({(e.attribute, e.value) for e in edges})
            facts = set(
                self._conn.execute(
                    "SELECT e.product_pk, e.value_pk FROM edges e JOIN json_each(?) j ON e.product_pk = j.value "
                    "WHERE e.source IN (0, 1, 3)",
                    (json.dumps(sorted(set(pks.values()))),),
                )
            )
            kept = [e for e in edges if (pks[e.product_id], values[(e.attribute, e.value)]) not in facts]
            return self._insert_edges(pks, kept)

    def _upsert_behaviour(self, edges: Sequence[BehaviourEdge]) -> int:
        with self._write():
            pks = self._product_pks(sorted({pid for e in edges for pid in (e.product_a, e.product_b)}))
            unknown = {pid for e in edges for pid in (e.product_a, e.product_b)} - pks.keys()
            if unknown:
                raise ContractError(f"behaviour edges for unknown products: {sorted(unknown)[:5]}")
            self._conn.executemany(
                "INSERT INTO behaviour(a_pk, b_pk, kind, weight) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(a_pk, b_pk, kind) DO UPDATE SET weight = excluded.weight",
                [(pks[e.product_a], pks[e.product_b], e.kind, e.weight) for e in edges],
            )
        return len(edges)

    def _known_products(self, product_ids: Sequence[str]) -> set[str]:
        return set(self._product_pks(product_ids))

    def _iter_behaviour(self, kinds: tuple[str, ...] | None) -> Iterator[BehaviourEdge]:
        where = f" WHERE b.kind IN ({_marks(kinds)})" if kinds is not None else ""
        rows = self._conn.execute(_BEHAVIOUR_SELECT + where + " ORDER BY pa.id, pb.id, b.kind", kinds or ())
        return (BehaviourEdge(*row) for row in rows)

    def _delete_run(self, run_id: str) -> int:
        with self._write():
            removed = self._conn.execute("DELETE FROM edges WHERE run_id = ?", (run_id,)).rowcount
            self._conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
        return removed

    def _prune_orphans(self) -> int:
        with self._write():
            ensure_value_index(self._conn)  # a probe per value: without the index, a scan of every edge per value
            count = self._conn.execute(
                "DELETE FROM value_nodes WHERE NOT EXISTS (SELECT 1 FROM edges e WHERE e.value_pk = value_nodes.pk)"
            ).rowcount
        self._values = None
        return count

    def _record_build(self, report: dict) -> None:
        with self._write():
            self._conn.execute(
                "INSERT INTO builds(created_at, report) VALUES (?, ?)", (_now(), json.dumps(report, ensure_ascii=False))
            )

    def _last_build(self) -> dict | None:
        row = self._conn.execute("SELECT report FROM builds ORDER BY pk DESC LIMIT 1").fetchone()
        return json.loads(row[0]) if row else None

    def _in_review_transaction(self, work: Callable[[ReviewOps], T]) -> T:
        with self._write():
            return work(sqlite_reviews.SQLiteReviewOps(self._conn))

    def _reviews(self, product_ids: Sequence[str] | None) -> list[Review]:
        return sqlite_reviews.read_reviews(self._conn, product_ids)

    # -- reads -------------------------------------------------------------------

    def _get_product(self, product_id: str) -> ProductView | None:
        row = self._conn.execute(
            f"SELECT {_PRODUCT_COLUMNS} FROM products p LEFT JOIN categories c ON c.pk = p.category_pk WHERE p.id = ?",
            (product_id,),
        ).fetchone()
        if row is None:
            return None
        edges = self._conn.execute(
            _EDGE_SELECT + " WHERE p.id = ? ORDER BY v.attribute, e.source, e.score DESC, v.value", (product_id,)
        )
        return ProductView(_product(row), tuple(_edge(r) for r in edges))

    def _iter_products(self) -> Iterator[ProductNode]:
        rows = self._conn.execute(
            f"SELECT {_PRODUCT_COLUMNS} FROM products p LEFT JOIN categories c ON c.pk = p.category_pk ORDER BY p.id"
        )
        return (_product(row) for row in rows)

    def _iter_triples(self, sources: tuple[str, ...], min_score: float | None) -> Iterator[AttributeEdge]:
        where, params = _edge_filter(sources, min_score)
        rows = self._conn.execute(
            _EDGE_SELECT + f" WHERE {where} ORDER BY p.id, v.attribute, v.value, e.source, e.run_id", params
        )
        return (_edge(r) for r in rows)

    def _products_with_attribute(
        self, attribute: str, value: str | None, sources: tuple[str, ...], min_score: float | None
    ) -> list[AttributeEdge]:
        where, params = _edge_filter(sources, min_score)
        where += " AND v.attribute = ?"
        params.append(attribute)
        if value is not None:
            where += " AND v.value = ?"
            params.append(value)
        rows = self._conn.execute(
            _EDGE_SELECT + f" WHERE {where} ORDER BY p.id, e.source, e.score DESC, v.value", params
        )
        return [_edge(r) for r in rows]

    def _products_missing_attribute(self, attribute: str, sources: tuple[str, ...]) -> list[str]:
        codes = [SOURCE_CODE[s] for s in sources]
        rows = self._conn.execute(
            "SELECT p.id FROM products p WHERE NOT EXISTS (SELECT 1 FROM edges e JOIN value_nodes v ON v.pk = e.value_pk "
            f"WHERE e.product_pk = p.pk AND v.attribute = ? AND e.source IN ({_marks(codes)})) ORDER BY p.id",
            [attribute, *codes],
        )
        return [r[0] for r in rows]

    def _attribute_vocabulary(self, sources: tuple[str, ...]) -> dict[str, set[str]]:
        codes = [SOURCE_CODE[s] for s in sources]
        vocabulary: dict[str, set[str]] = {}
        used = used_values_sql(self._conn, codes)
        rows = self._conn.execute(f"SELECT v.attribute, v.value FROM value_nodes v WHERE {used}", codes)
        for attribute, value in rows:
            vocabulary.setdefault(attribute, set()).add(value)
        return vocabulary

    def _stats(self, top: int) -> StoreStats:
        return read_stats(self._conn, top)

    def _list_runs(self) -> list[RunInfo]:
        rows = self._conn.execute(
            "SELECT r.run_id, r.model_version, r.created_at, r.params, "
            "(SELECT COUNT(*) FROM edges e WHERE e.run_id = r.run_id) FROM runs r ORDER BY r.created_at, r.run_id"
        )
        return [RunInfo(rid, version, created, n, json.loads(params)) for rid, version, created, params, n in rows]

    def _snapshot(self, include_predicted: bool, min_score: float | None) -> Snapshot:
        sources = FACT_SOURCES + ("model",) if include_predicted else FACT_SOURCES
        where, params = _edge_filter(sources, min_score)
        return read_snapshot(self._conn, where, params, _BEHAVIOUR_SELECT)


def _edge_filter(sources: tuple[str, ...], min_score: float | None) -> tuple[str, list]:
    codes = [SOURCE_CODE[s] for s in sources]
    where = f"e.source IN ({_marks(codes)})"
    params: list = list(codes)
    if min_score is not None:
        where += " AND (e.source != 2 OR e.score >= ?)"
        params.append(min_score)
    return where, params


def _marks(items: Sequence) -> str:
    return ", ".join("?" * len(items)) or "NULL"


def _product(row: tuple) -> ProductNode:
    pid, title, description, path, image, status, reason, properties = row
    return ProductNode(
        id=pid,
        title=title,
        description=description,
        category=tuple(path.split(CATEGORY_SEPARATOR)) if path else (),
        image=image,
        image_status=status,
        image_reason=reason,
        properties=json.loads(properties),
    )


def _edge(row: tuple) -> AttributeEdge:
    pid, attribute, value, source, raw, score, run_id = row
    return AttributeEdge(pid, attribute, value, SOURCE_NAME[source], raw, score, run_id or None)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
