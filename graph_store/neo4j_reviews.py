"""The Neo4j store's side of reviews: :class:`ReviewOps` over a managed write transaction.

A decision is a ``(:Review {product_id, attribute, value, decision, reviewer, decided_at, note,
run_id, score, raw, catalog_value, seq})`` node, unique on (product_id, attribute, value), keyed
by the product's catalog id like the embedded store's ``reviews`` rows, so it outlives whatever
a rebuild does to the Product node. The rules live in :mod:`graph_store.reviews`; the queries
here are constants and take every value as a parameter, like :mod:`graph_store.cypher`.
"""

from __future__ import annotations

from typing import Any, Sequence

import neo4j

from .models import AttributeEdge, Review

SCHEMA = [
    "CREATE CONSTRAINT kgmm_review_key IF NOT EXISTS FOR (r:Review) REQUIRE (r.product_id, r.attribute, r.value) IS UNIQUE",
    "CREATE INDEX kgmm_review_decision IF NOT EXISTS FOR (r:Review) ON (r.decision)",
]

_FIELDS = ("product_id", "attribute", "value", "decision", "reviewer", "decided_at", "note", "run_id", "score", "raw",
           "catalog_value", "seq")
_RETURN = "RETURN " + ", ".join(f"r.{name} AS {name}" for name in _FIELDS)

PRODUCT_EXISTS = "MATCH (p:Product {id: $pid}) RETURN count(p) AS n"
EDGES = (
    "MATCH (p:Product {id: $pid})-[h:HAS {source: $source}]->(v:Value {attribute: $a, value: $v}) "
    "RETURN h.raw AS raw, h.score AS score, h.run_id AS run_id ORDER BY h.score DESC, h.run_id"
)
DELETE_EDGES = (
    "MATCH (p:Product {id: $pid})-[h:HAS {source: $source}]->(v:Value {attribute: $a, value: $v}) DELETE h"
)
PUT_EDGE = (
    "MATCH (p:Product {id: $pid}) MERGE (v:Value {attribute: $a, value: $v}) "
    "MERGE (p)-[h:HAS {source: $source}]->(v) SET h.raw = $raw, h.score = $score"
)
"""A fact edge (catalog, text, reviewed): keyed by its source, as the catalog writes key it (no
``attribute``, no ``run_id``; an edge written before with those is found and updated)."""
PUT_MODEL_EDGE = (
    "MATCH (p:Product {id: $pid}) MERGE (v:Value {attribute: $a, value: $v}) "
    "MERGE (p)-[h:HAS {source: $source, run_id: $run_id}]->(v) SET h.raw = $raw, h.score = $score"
)
RUN_EXISTS = "MATCH (r:Run {run_id: $run_id}) RETURN count(r) AS n"
GET = "MATCH (r:Review {product_id: $pid, attribute: $a, value: $v}) " + _RETURN
PUT = (
    "OPTIONAL MATCH (old:Review) WITH coalesce(max(old.seq), 0) + 1 AS seq "
    "CREATE (r:Review {product_id: $pid, attribute: $a, value: $v}) SET r += $props, r.seq = seq RETURN seq"
)
DELETE = "MATCH (r:Review {product_id: $pid, attribute: $a, value: $v}) DELETE r"
ALL = "MATCH (r:Review) WHERE $ids IS NULL OR r.product_id IN $ids " + _RETURN + " ORDER BY seq"
DROP_REPLACED = (
    "UNWIND $ids AS pid MATCH (r:Review {product_id: pid, decision: 'replace'}) "
    "MATCH (p:Product {id: pid})-[h:HAS {source: 'catalog'}]->(v:Value) "
    "WHERE v.attribute = r.attribute AND v.value = r.catalog_value DELETE h"
)
"""Catalog edges of ``$ids`` that a ``replace`` decision superseded, written again by a rebuild: deleted."""


class Neo4jReviewOps:
    """:class:`graph_store.reviews.ReviewOps` inside one managed write transaction ``tx``."""

    def __init__(self, tx: neo4j.ManagedTransaction) -> None:
        self.tx = tx

    def _one(self, query: str, **params: Any) -> Any:
        return self.tx.run(query, params).single(strict=True)[0]

    def product_exists(self, product_id: str) -> bool:
        return self._one(PRODUCT_EXISTS, pid=product_id) > 0

    def edges(self, product_id: str, attribute: str, value: str, source: str) -> list[AttributeEdge]:
        rows = self.tx.run(EDGES, pid=product_id, a=attribute, v=value, source=source).values()
        return [AttributeEdge(product_id, attribute, value, source, raw, score, run or None) for raw, score, run in rows]  # type: ignore[arg-type]

    def delete_edges(self, product_id: str, attribute: str, value: str, source: str) -> None:
        self.tx.run(DELETE_EDGES, pid=product_id, a=attribute, v=value, source=source).consume()

    def put_edge(self, edge: AttributeEdge) -> None:
        query = PUT_MODEL_EDGE if edge.source == "model" else PUT_EDGE
        self.tx.run(query, pid=edge.product_id, a=edge.attribute, v=edge.value, source=edge.source,
                    run_id=edge.run_id or "", raw=edge.raw, score=edge.score).consume()

    def run_exists(self, run_id: str) -> bool:
        return self._one(RUN_EXISTS, run_id=run_id) > 0

    def get(self, key: tuple[str, str, str]) -> Review | None:
        record = self.tx.run(GET, pid=key[0], a=key[1], v=key[2]).single()
        return _review(record.values()) if record else None

    def put(self, review: Review) -> Review:
        props = {name: getattr(review, name) for name in _FIELDS[3:-1]}
        seq = self._one(PUT, pid=review.product_id, a=review.attribute, v=review.value, props=props)
        return Review(*(getattr(review, name) for name in _FIELDS[:-1]), seq=seq)

    def delete(self, key: tuple[str, str, str]) -> None:
        self.tx.run(DELETE, pid=key[0], a=key[1], v=key[2]).consume()


def read_reviews(tx: neo4j.ManagedTransaction, product_ids: Sequence[str] | None) -> list[Review]:
    ids = list(product_ids) if product_ids is not None else None
    return [_review(row) for row in tx.run(ALL, ids=ids).values()]


def _review(row: Sequence) -> Review:
    values = dict(zip(_FIELDS, row))
    values["reviewer"] = values["reviewer"] or ""
    values["decided_at"] = values["decided_at"] or ""
    values["seq"] = values["seq"] or 0
    return Review(**values)
