"""The Neo4j backend's catalog and text writes: what runs inside one write transaction.

Separate from :mod:`graph_store.cypher` (the query text) because the statements depend on
what the graph already holds: the stale-edge statement returns the edges a product keeps,
those are updated in place and every other edge is created without a search. On a fresh
load no product keeps anything, so every HAS edge is a CREATE (measured in
docs/BENCHMARKS.md against the MERGE of every edge).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Sequence

import neo4j

from . import cypher, neo4j_reviews
from .models import AttributeEdge, ProductNode


def chunks(params: dict[str, Any], size: int) -> Iterator[dict[str, Any]]:
    """``params`` with its ``rows`` split into slices of about ``size`` rows (a grouped row
    counts its ``edges``); nothing when ``rows`` is empty, ``params`` itself when it has none."""
    rows = params.get("rows")
    if rows is None:
        yield params
        return
    start, weight = 0, 0
    for end, row in enumerate(rows, 1):
        weight += len(row["edges"]) if "edges" in row else 1
        if weight >= size:
            yield {**params, "rows": rows[start:end]}
            start, weight = end, 0
    if start < len(rows):
        yield {**params, "rows": rows[start:]}


def run_statements(tx: neo4j.ManagedTransaction, statements: Sequence[cypher.Statement], batch_rows: int) -> None:
    """``statements`` in order, ``rows`` in chunks of about ``batch_rows``."""
    for query, params in statements:
        for chunk in chunks(params, batch_rows):
            tx.run(query, chunk).consume()


def upsert_products(
    tx: neo4j.ManagedTransaction, products: Sequence[ProductNode], edges: Sequence[AttributeEdge], batch_rows: int
) -> None:
    """Products, their categories and catalog edges; catalog values a reviewer replaced dropped again."""
    ids = list(dict.fromkeys(p.id for p in products))
    run_statements(tx, product_statements(products), batch_rows)
    write_edges(tx, "catalog", ids, edges, batch_rows)
    if tx.run(cypher.count_reviews()).single(strict=True)[0]:  # the count store: no scan
        run_statements(tx, [(neo4j_reviews.DROP_REPLACED, {"ids": ids})], batch_rows)


def write_edges(
    tx: neo4j.ManagedTransaction, source: str, product_ids: Sequence[str], edges: Sequence[AttributeEdge], batch_rows: int
) -> None:
    """Replace the ``source`` edges of ``product_ids`` by ``edges``: stale ones out, kept ones
    updated in place, new ones created. Products absent from the graph are skipped."""
    edges = cypher.unique_edges(edges)
    kept: dict[str, set[tuple[str, str]]] = {}
    for chunk in chunks({"source": source, "rows": stale_edge_rows(product_ids, edges)}, batch_rows):
        for pid, pairs in tx.run(cypher.delete_stale_edges(), chunk).values():
            kept[pid] = {(a, v) for a, v in pairs}
    old = [e for e in edges if (e.attribute, e.value) in kept.get(e.product_id, ())]
    new = [e for e in edges if (e.attribute, e.value) not in kept.get(e.product_id, ())]
    run_statements(tx, [
        (cypher.merge_values(), {"rows": value_rows(edges)}),
        (cypher.create_edges(), {"source": source, "rows": cypher.grouped_edge_rows(new)}),
        (cypher.merge_edges(), {"source": source, "rows": cypher.grouped_edge_rows(old)}),
    ], batch_rows)


def stale_edge_rows(product_ids: Sequence[str], edges: Sequence[AttributeEdge]) -> list[dict]:
    """``{pid, keep}`` rows for :func:`cypher.delete_stale_edges` (``edges`` already unique)."""
    keep: dict[str, list[list[str]]] = {pid: [] for pid in product_ids}
    for edge in edges:
        keep[edge.product_id].append([edge.attribute, edge.value])
    return [{"pid": pid, "keep": k} for pid, k in keep.items()]


def value_rows(edges: Iterable[AttributeEdge]) -> list[dict]:
    """``{a, v}`` for :func:`cypher.merge_values`, distinct and sorted (the same lock order in every writer)."""
    return [{"a": a, "v": v} for a, v in sorted({(e.attribute, e.value) for e in edges})]


def product_statements(products: Sequence[ProductNode]) -> list[cypher.Statement]:
    """Categories, then products with their category edge; the last row of an id wins."""
    latest = {p.id: p for p in products}
    nodes, parents = cypher.category_rows(p.category for p in latest.values() if p.category)
    return [
        (cypher.merge_categories(), {"rows": nodes}),
        (cypher.merge_category_parents(), {"rows": parents}),
        (cypher.merge_products(), {"rows": [cypher.product_row(p) for p in latest.values()]}),
    ]
