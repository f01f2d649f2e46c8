"""The Neo4j backend's catalog and text writes: what runs inside each write transaction.

Separate from :mod:`graph_store.cypher_catalog` (the query text) because the statements depend
on what the graph already holds: products are looked up first (their handles, and whether they
have edges of the source at all); the stale-edge statement runs only for those that do and
returns the edges a product keeps; those are updated in place and every other edge is created
without a search, grouped by value. On a fresh load no product has anything, so the
stale-edge statement is skipped and every HAS edge is a CREATE (measured in
docs/BENCHMARKS.md, "Loading into Neo4j").

A batch is written either in one transaction (:func:`upsert_products`, :func:`write_edges`) or,
when it is large, as the nodes that products share (:func:`write_shared_nodes`: categories and
values, one transaction) followed by one transaction per slice of its products
(:func:`split_by_product`), run at once by :mod:`graph_store.neo4j_parallel`.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

import neo4j

from . import cypher, cypher_catalog, neo4j_reviews
from .errors import StoreError
from .models import AttributeEdge, ProductNode


class Slice(NamedTuple):
    """Some of a batch's products, with every row and edge that names them."""

    product_ids: list[str]
    products: list[ProductNode]  # every row given for those ids, in the order given
    edges: list[AttributeEdge]


def chunks(params: dict[str, Any], size: int) -> Iterator[dict[str, Any]]:
    """``params`` with its ``rows`` split into slices of about ``size`` rows (a grouped row
    counts its edges: ``edges`` of a map, the last item of a list row); nothing when ``rows``
    is empty, ``params`` itself when it has none."""
    rows = params.get("rows")
    if rows is None:
        yield params
        return
    start, weight = 0, 0
    for end, row in enumerate(rows, 1):
        weight += _weight(row)
        if weight >= size:
            yield {**params, "rows": rows[start:end]}
            start, weight = end, 0
    if start < len(rows):
        yield {**params, "rows": rows[start:]}


def _weight(row: Any) -> int:
    if isinstance(row, dict):
        return len(row["edges"]) if "edges" in row else 1
    return len(row[-1]) if isinstance(row[-1], list) else 1


def run_statements(tx: neo4j.ManagedTransaction, statements: Sequence[cypher.Statement], batch_rows: int) -> None:
    """``statements`` in order, ``rows`` in chunks of about ``batch_rows``."""
    for query, params in statements:
        for chunk in chunks(params, batch_rows):
            tx.run(query, chunk).consume()


def split_by_product(
    product_ids: Sequence[str], products: Sequence[ProductNode], edges: Sequence[AttributeEdge], parts: int
) -> list[Slice]:
    """``product_ids`` (unique) in ``parts`` contiguous slices of about equal size, each with its
    products and edges; every row of a product lands in its product's slice, in the order given,
    so the last row of an id still wins and no product is split between transactions."""
    size = -(-len(product_ids) // max(parts, 1))
    slices = [Slice(list(product_ids[start : start + size]), [], []) for start in range(0, len(product_ids), size)]
    where = {pid: piece for piece in slices for pid in piece.product_ids}
    for product in products:
        where[product.id].products.append(product)
    for edge in edges:
        where[edge.product_id].edges.append(edge)
    return slices


def write_shared_nodes(
    tx: neo4j.ManagedTransaction, products: Sequence[ProductNode], edges: Sequence[AttributeEdge], batch_rows: int
) -> None:
    """The categories and values of a batch, in one transaction before its slices are written.

    Products of different slices share them; a slice that created one would hold its index
    entry locked until it committed, and the other slices needing it would wait that long.
    """
    run_statements(tx, shared_node_statements(products, edges), batch_rows)


def shared_node_statements(products: Sequence[ProductNode], edges: Sequence[AttributeEdge]) -> list[cypher.Statement]:
    """Categories (with their parents) and values, sorted (one lock order): :func:`write_shared_nodes`."""
    values = sorted({(e.attribute, e.value) for e in edges})
    return [*category_statements(products), (cypher_catalog.merge_values(), {"rows": [list(v) for v in values]})]


def upsert_products(
    tx: neo4j.ManagedTransaction,
    products: Sequence[ProductNode],
    edges: Sequence[AttributeEdge],
    batch_rows: int,
    *,
    categories_written: bool = False,
) -> None:
    """Products, their categories (unless ``categories_written`` by :func:`write_shared_nodes`)
    and catalog edges; catalog values a reviewer replaced dropped again."""
    ids = list(dict.fromkeys(p.id for p in products))
    # Counted first, while the transaction has written nothing: the count store, no scan (after
    # the writes, the count has to merge the transaction's state and took 0.1-0.2 s a batch).
    reviews = tx.run(cypher_catalog.count_reviews()).single(strict=True)[0]
    statements = [] if categories_written else category_statements(products)
    run_statements(tx, statements + [product_statement(products)], batch_rows)
    write_edges(tx, "catalog", ids, edges, batch_rows, locked=True)
    if reviews:
        run_statements(tx, [(neo4j_reviews.DROP_REPLACED, {"ids": ids})], batch_rows)


def write_edges(
    tx: neo4j.ManagedTransaction,
    source: str,
    product_ids: Sequence[str],
    edges: Sequence[AttributeEdge],
    batch_rows: int,
    *,
    locked: bool = False,
) -> None:
    """Replace the ``source`` edges of ``product_ids`` by ``edges``: stale ones out, kept ones
    updated in place, new ones created. Products absent from the graph are skipped.

    ``locked``: this transaction wrote the products already (they stay locked until it commits),
    so their handles cannot name another node meanwhile and new edges skip the product id check
    (:func:`graph_store.cypher_catalog.create_edges`)."""
    edges = cypher.unique_edges(edges)
    handles: dict[str, int] = {}
    with_edges: set[str] = set()
    for pid, handle, has_edges in tx.run(cypher_catalog.product_handles(), ids=list(product_ids), source=source).values():
        handles[pid] = handle
        if has_edges:
            with_edges.add(pid)
    kept: dict[str, set[tuple[str, str]]] = {}
    if with_edges:  # a fresh load has none: no stale-edge rows to build or send
        stale = [row for row in stale_edge_rows(product_ids, edges) if row["pid"] in with_edges]
        for chunk in chunks({"source": source, "rows": stale}, batch_rows):
            for pid, pairs in tx.run(cypher_catalog.delete_stale_edges(), chunk).values():
                kept[pid] = {(a, v) for a, v in pairs}
    if kept:
        old = [e for e in edges if (e.attribute, e.value) in kept.get(e.product_id, ())]
        new = [e for e in edges if (e.attribute, e.value) not in kept.get(e.product_id, ())]
    else:
        old, new = [], edges
    expected = sum(1 for e in new if e.product_id in handles)
    written = 0
    rows = value_edge_rows(new, handles, checked=not locked)
    for chunk in chunks({"source": source, "rows": rows}, batch_rows):
        written += tx.run(cypher_catalog.create_edges(checked=not locked), chunk).single(strict=True)[0]
    if written != expected:  # a product deleted by another transaction since it was looked up
        raise StoreError(f"{expected - written} {source} edges lost their product while being written; nothing was committed")
    if old:
        run_statements(tx, [(cypher_catalog.merge_edges(), {"source": source, "rows": cypher.grouped_edge_rows(old)})], batch_rows)


def stale_edge_rows(product_ids: Sequence[str], edges: Sequence[AttributeEdge]) -> list[dict]:
    """``{pid, keep}`` rows for :func:`cypher_catalog.delete_stale_edges` (``edges`` already unique)."""
    keep: dict[str, list[list[str]]] = {pid: [] for pid in product_ids}
    for edge in edges:
        keep[edge.product_id].append([edge.attribute, edge.value])
    return [{"pid": pid, "keep": k} for pid, k in keep.items()]


def value_edge_rows(edges: Iterable[AttributeEdge], handles: dict[str, int], checked: bool = True) -> list[list]:
    """``[attribute, value, [(handle, raw, score, product id), ...]]`` for :func:`cypher_catalog.create_edges`,
    one row per value, sorted by value; edges of products without a handle (not in the graph) are
    left out. Without ``checked`` the product id is left out of the edge rows (``(handle, raw, score)``).

    Written for speed (a fresh load sends every edge through here): tuples unpacked rather than
    read by field name, and tuples rather than lists for the edges (the driver packs both as
    lists): 0.7-0.9 us an edge instead of 2.6-3.0."""
    grouped: defaultdict[tuple[str, str], list[tuple]] = defaultdict(list)
    get = handles.get
    for pid, attribute, value, _source, raw, score, _run in edges:
        handle = get(pid)
        if handle is not None:
            grouped[attribute, value].append((handle, raw, score, pid) if checked else (handle, raw, score))
    return [[a, v, items] for (a, v), items in sorted(grouped.items())]


def category_statements(products: Sequence[ProductNode]) -> list[cypher.Statement]:
    """Every category the products name (the last row of an id), with its ancestors and CHILD_OF edges."""
    latest = {p.id: p for p in products}
    nodes, parents = cypher_catalog.category_rows(p.category for p in latest.values() if p.category)
    return [(cypher_catalog.merge_categories(), {"rows": nodes}), (cypher_catalog.merge_category_parents(), {"rows": parents})]


def product_statement(products: Sequence[ProductNode]) -> cypher.Statement:
    """Products with their category edge (categories already exist); the last row of an id wins."""
    latest = {p.id: p for p in products}
    return cypher_catalog.merge_products(), {"rows": [cypher_catalog.product_row(p) for p in latest.values()]}


def product_statements(products: Sequence[ProductNode]) -> list[cypher.Statement]:
    """Categories, then products with their category edge: what one transaction runs."""
    return [*category_statements(products), product_statement(products)]
