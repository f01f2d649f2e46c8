"""The Cypher of catalog and text writes: categories, products, values and their HAS edges.

Split from :mod:`graph_store.cypher` (the rest of the backend's query text) because these
statements and their rows are one piece of work, run by :mod:`graph_store.neo4j_writes` inside a
write transaction per slice of a batch. The same rules hold: every query is a constant, data
travels as parameters.

Write queries force their index seeks with ``USING INDEX SEEK``, and expansions from a bound
node are pattern comprehensions: the planner's statistics lag behind a graph that grows by
thousands of nodes a second (or was just emptied), and plans made from them scanned the whole
Value index once per edge row (measured: 17 s instead of 0.2 s per 10,000 edges) or started
from every Value node. The schema exists before any write, so the hints always hold.
"""

from __future__ import annotations

import json
from typing import Iterable, Sequence

from .models import CATEGORY_SEPARATOR, ProductNode



def merge_categories() -> str:
    """``$rows``: ``{path, name}``, every prefix of every path."""
    return "UNWIND $rows AS row MERGE (c:Category {path: row.path}) ON CREATE SET c.name = row.name"


def merge_category_parents() -> str:
    """``$rows``: ``{path, parent}`` for every category below the top level."""
    return (
        "UNWIND $rows AS row "
        "MATCH (c:Category {path: row.path}) USING INDEX SEEK c:Category(path) "
        "MATCH (parent:Category {path: row.parent}) USING INDEX SEEK parent:Category(path) "
        "MERGE (c)-[:CHILD_OF]->(parent)"
    )


def merge_products() -> str:
    """``$rows``: :func:`product_row` maps. Sets every property and the one IN_CATEGORY edge.

    The category edge is created only where the product lacks it, with ``CREATE``: a ``MERGE``
    of a relationship that is not there yet locks both of its nodes until the transaction ends,
    and every product of a batch points to a few shared Category nodes, so the write
    transactions that run at once (:mod:`graph_store.neo4j_parallel`) queued behind each other
    on them. The product itself is locked by ``SET`` before its edge is looked at, so no other
    transaction can add the same edge meanwhile. Categories exist already
    (:func:`merge_categories`, earlier in the same transaction or before it).
    """
    return (
        "UNWIND $rows AS row "
        "MERGE (p:Product {id: row.id}) "
        "SET p.title = row.title, p.description = row.description, p.image = row.image, "
        "p.image_status = row.image_status, p.image_reason = row.image_reason, p.properties = row.properties "
        "WITH p, row, [(p)-[r:IN_CATEGORY]->(c:Category) | [r, c.path]] AS current "
        "FOREACH (x IN [x IN current WHERE row.category IS NULL OR x[1] <> row.category] | DELETE x[0]) "
        "WITH p, row, current WHERE row.category IS NOT NULL AND none(x IN current WHERE x[1] = row.category) "
        "MATCH (c:Category {path: row.category}) USING INDEX SEEK c:Category(path) "
        "CREATE (p)-[:IN_CATEGORY]->(c)"
    )


def merge_values() -> str:
    """``$rows``: ``[attribute, value]`` pairs, sorted. Creates the Value nodes that are missing.

    Run in a transaction of its own before the write transactions of a batch run at once
    (:mod:`graph_store.neo4j_parallel`): those then find every value and only read its index
    entry, instead of queueing behind the one that creates it (a new value's index entry stays
    locked until the creating transaction commits).
    """
    return "UNWIND $rows AS row MERGE (:Value {attribute: row[0], value: row[1]})"


def product_handles() -> str:
    """``$ids``: product ids. For those in the graph: ``pid``, ``handle`` (the node's internal
    id, used by :func:`create_edges` inside the same transaction) and ``has_edges`` (whether the
    product has ``$source`` edges; only those need :func:`delete_stale_edges`)."""
    return (
        "UNWIND $ids AS pid "
        "MATCH (p:Product {id: pid}) USING INDEX SEEK p:Product(id) "
        "RETURN pid, id(p) AS handle, EXISTS { (p)-[:HAS {source: $source}]->() } AS has_edges"
    )


def delete_stale_edges() -> str:
    """Delete ``$source`` edges of products that are not in the new set; return the ones kept.

    ``$rows``: ``{pid, keep}`` where ``keep`` lists the ``[attribute, value]`` pairs the product
    keeps for that source (empty: delete all its ``$source`` edges). Returns ``pid, kept`` for
    products that kept some: those edges are updated in place by :func:`merge_edges` (a rebuild
    rewrites nothing that did not change) and every other edge is new, so :func:`create_edges`
    writes it without first searching for it. Run only for products that have ``$source``
    edges (:func:`product_handles`), so a fresh load skips it.
    """
    return (
        "UNWIND $rows AS row "
        "MATCH (p:Product {id: row.pid}) USING INDEX SEEK p:Product(id) "
        "WITH row, [(p)-[h:HAS {source: $source}]->(v:Value) | [h, [v.attribute, v.value]]] AS current "
        "FOREACH (c IN [c IN current WHERE NOT c[1] IN row.keep] | DELETE c[0]) "
        "WITH row, [c IN current WHERE c[1] IN row.keep | c[1]] AS kept WHERE size(kept) > 0 "
        "RETURN row.pid AS pid, kept"
    )


def create_edges(checked: bool = True) -> str:
    """``$rows``: ``neo4j_writes.value_edge_rows``, ``[attribute, value, [[handle, raw, score(, pid)], ...]]``
    of ``$source`` edges the products do not have yet, one row per value, sorted by value (one lock
    order in every writer). Returns ``written``.

    A fresh load writes every edge here. Each value is merged once per statement (not once per
    edge), right where its edges are created, so an edge can never be lost to a concurrent
    :func:`graph_store.cypher.prune_orphan_values`; products are found by the handle
    :func:`product_handles` returned in this transaction (no index seek per edge). Neo4j reuses
    the internal ids of deleted nodes, so where another transaction could delete a product
    meanwhile and create another one (``checked``: the text pass, which only reads its products),
    every edge row carries its product id too and the label and id are checked; where this
    transaction has written the products itself (the catalog pass: they stay locked until it
    commits) the handle cannot change hands, and the 32-character id on every edge row (half the
    bytes of a row) and its check are left out. CREATE skips the search of the value's (often
    thousands of) HAS edges that MERGE makes. Lists, not maps, in the rows: half the client's
    encoding.

    The edge carries ``source``, ``raw`` and ``score`` (no score on catalog and text edges) and
    nothing else: the attribute is the Value node's, and ``run_id`` belongs to predictions
    (:func:`graph_store.cypher.merge_predictions`). Graphs written before also have ``attribute``
    and ``run_id: ''`` on these edges; no query reads or matches them (see ``docs/NEO4J.md``).
    Two fewer properties per edge is one property record less to build at commit, the server's
    largest cost on a load (``docs/BENCHMARKS.md``, session 10).
    """
    guard = " AND p.id = e[3]" if checked else ""
    return (
        "UNWIND $rows AS row "
        "MERGE (v:Value {attribute: row[0], value: row[1]}) "
        "WITH v, row UNWIND row[2] AS e "
        f"MATCH (p:Product) WHERE id(p) = e[0]{guard} "
        "CREATE (p)-[:HAS {source: $source, raw: e[1], score: e[2]}]->(v) "
        "RETURN count(*) AS written"
    )


def merge_edges() -> str:
    """``$rows``: :func:`graph_store.cypher.grouped_edge_rows` of source ``$source`` (``run_id`` ''), one row per product.

    Products must exist (they are skipped otherwise). The value is merged, not matched, so an
    edge can never be lost to a concurrent :func:`graph_store.cypher.prune_orphan_values`. Returns ``written``.
    The edge is matched on its source alone (a product has one edge of a fact source per value),
    so edges written before, which also carry ``attribute`` and ``run_id: ''``, are found and
    updated, never duplicated.
    """
    return (
        "UNWIND $rows AS row "
        "MATCH (p:Product {id: row.pid}) USING INDEX SEEK p:Product(id) "
        "UNWIND row.edges AS e "
        "MERGE (v:Value {attribute: e.a, value: e.v}) "
        "MERGE (p)-[h:HAS {source: $source}]->(v) "
        "SET h.raw = e.raw, h.score = e.score "
        "RETURN count(h) AS written"
    )


def count_reviews() -> str:
    """How many review decisions the graph holds (from the count store, without a scan)."""
    return "MATCH (r:Review) RETURN count(r)"


# -- rows: records -> parameter maps -------------------------------------------------------------

def category_rows(paths: Iterable[Sequence[str]]) -> tuple[list[dict], list[dict]]:
    """Every prefix of every path as ``{path, name}`` (shallowest first, then by path), and
    ``{path, parent}``."""
    nodes: dict[str, dict] = {}
    parents: list[dict] = []
    for path in sorted(set(map(tuple, paths)), key=lambda p: (len(p), p)):
        for depth in range(1, len(path) + 1):
            key = CATEGORY_SEPARATOR.join(path[:depth])
            if key in nodes:
                continue
            nodes[key] = {"path": key, "name": path[depth - 1]}
            if depth > 1:
                parents.append({"path": key, "parent": CATEGORY_SEPARATOR.join(path[: depth - 1])})
    return list(nodes.values()), parents


def product_row(product: ProductNode) -> dict:
    """The parameter map of one product for :func:`merge_products`."""
    return {
        "id": product.id,
        "title": product.title,
        "description": product.description,
        "image": product.image,
        "image_status": product.image_status,
        "image_reason": product.image_reason,
        "properties": json.dumps(product.properties, ensure_ascii=False, sort_keys=True),
        "category": product.category_path,
    }
