"""The embedded store's side of reviews: :class:`ReviewOps` over an open SQLite transaction.

The rules live in :mod:`graph_store.reviews`; this module only reads and writes rows. It works
on the connection directly (no cached keys), so a decision never leaves the store's value cache
pointing at a row it deleted: it deletes edges, never Value rows.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Sequence

from .models import AttributeEdge, Review
from .sqlite_schema import SOURCE_CODE

_EDGE = (
    "SELECT e.raw, e.score, e.run_id FROM edges e JOIN value_nodes v ON v.pk = e.value_pk "
    "JOIN products p ON p.pk = e.product_pk WHERE p.id = ? AND v.attribute = ? AND v.value = ? AND e.source = ? "
    "ORDER BY e.score DESC, e.run_id"
)
_REVIEW_COLUMNS = "product_id, attribute, value, decision, reviewer, decided_at, note, run_id, score, raw, catalog_value, seq"


class SQLiteReviewOps:
    """:class:`graph_store.reviews.ReviewOps` on ``conn``, inside the caller's transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def product_exists(self, product_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM products WHERE id = ?", (product_id,)).fetchone() is not None

    def edges(self, product_id: str, attribute: str, value: str, source: str) -> list[AttributeEdge]:
        rows = self.conn.execute(_EDGE, (product_id, attribute, value, SOURCE_CODE[source]))
        return [AttributeEdge(product_id, attribute, value, source, raw, score, run or None) for raw, score, run in rows]  # type: ignore[arg-type]

    def delete_edges(self, product_id: str, attribute: str, value: str, source: str) -> None:
        self.conn.execute(
            "DELETE FROM edges WHERE source = ? AND product_pk = (SELECT pk FROM products WHERE id = ?) "
            "AND value_pk = (SELECT pk FROM value_nodes WHERE attribute = ? AND value = ?)",
            (SOURCE_CODE[source], product_id, attribute, value),
        )

    def put_edge(self, edge: AttributeEdge) -> None:
        self.conn.execute("INSERT OR IGNORE INTO value_nodes(attribute, value) VALUES (?, ?)", (edge.attribute, edge.value))
        self.conn.execute(
            "INSERT OR REPLACE INTO edges(product_pk, value_pk, source, run_id, raw, score) "
            "SELECT p.pk, v.pk, ?, ?, ?, ? FROM products p, value_nodes v WHERE p.id = ? AND v.attribute = ? AND v.value = ?",
            (SOURCE_CODE[edge.source], edge.run_id or "", edge.raw, edge.score, edge.product_id, edge.attribute, edge.value),
        )

    def run_exists(self, run_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is not None

    def get(self, key: tuple[str, str, str]) -> Review | None:
        row = self.conn.execute(
            f"SELECT {_REVIEW_COLUMNS} FROM reviews WHERE product_id = ? AND attribute = ? AND value = ?", key
        ).fetchone()
        return Review(*row) if row else None

    def put(self, review: Review) -> Review:
        seq = self.conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM reviews").fetchone()[0]
        stored = Review(*review_row(review)[:-1], seq=seq)
        self.conn.execute(f"INSERT INTO reviews({_REVIEW_COLUMNS}) VALUES ({', '.join('?' * 12)})", review_row(stored))
        return stored

    def delete(self, key: tuple[str, str, str]) -> None:
        self.conn.execute("DELETE FROM reviews WHERE product_id = ? AND attribute = ? AND value = ?", key)


def review_row(review: Review) -> tuple:
    """The columns of :data:`_REVIEW_COLUMNS`, in order."""
    r = review
    return (r.product_id, r.attribute, r.value, r.decision, r.reviewer, r.decided_at, r.note, r.run_id, r.score, r.raw,
            r.catalog_value, r.seq)


def read_reviews(conn: sqlite3.Connection, product_ids: Sequence[str] | None) -> list[Review]:
    """Decisions in ``seq`` order, of ``product_ids`` only unless None."""
    if product_ids is None:
        rows = conn.execute(f"SELECT {_REVIEW_COLUMNS} FROM reviews ORDER BY seq")
    else:
        rows = conn.execute(
            f"SELECT {_REVIEW_COLUMNS} FROM reviews WHERE product_id IN (SELECT value FROM json_each(?)) ORDER BY seq",
            (json.dumps(list(product_ids)),),
        )
    return [Review(*row) for row in rows]


def drop_replaced_catalog_values(conn: sqlite3.Connection, product_pks: Sequence[int]) -> None:
    """Delete catalog edges of ``product_pks`` that a ``replace`` decision superseded (after a rebuild
    wrote them again); free when no decision replaced anything."""
    if conn.execute("SELECT 1 FROM reviews WHERE decision = 'replace' LIMIT 1").fetchone() is None:
        return
    conn.execute(
        "DELETE FROM edges WHERE source = 0 AND product_pk IN (SELECT value FROM json_each(?)) AND EXISTS ("
        "SELECT 1 FROM reviews r JOIN products p ON p.id = r.product_id JOIN value_nodes v "
        "ON v.attribute = r.attribute AND v.value = r.catalog_value WHERE r.decision = 'replace' "
        "AND p.pk = edges.product_pk AND v.pk = edges.value_pk)",
        (json.dumps(list(product_pks)),),
    )
