"""The Cypher of the Neo4j backend, built by small pure functions (testable as strings).

Graph model::

    (:Product {id, title, description, image, image_status, image_reason, properties})
    (:Value {attribute, value})                       keyed by (attribute, value)
    (:Category {path, name})-[:CHILD_OF]->(:Category)
    (:Product)-[:IN_CATEGORY]->(:Category)
    (:Product)-[:HAS {attribute, source, run_id, raw, score}]->(:Value)
    (:Product)-[:BEHAVIOUR {kind, weight}]->(:Product)   undirected: from the smaller id
    (:Run {run_id, model_version, created_at, params})
    (:Build {seq, created_at, report})

``properties``, ``params`` and ``report`` are JSON strings; ``run_id`` is ``''`` on catalog
and text edges, so a HAS edge is keyed by (product, value, source, run_id) like the embedded
store's primary key. Every node and edge is written with ``MERGE`` on its natural key, so a
batch that is retried (the driver retries transient failures) or a build that is rerun after
a crash leaves exactly one copy.

No caller string is ever part of a query: every query below is a constant, and data travels
as parameters (``$rows`` is a list of maps, one per row, for ``UNWIND``). Functions that also
shape data return ``(query, parameters)`` pairs (:data:`Statement`). Edge rows are grouped by
product (``{pid, edges: [...]}``) so that each product is looked up once per statement.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

from .models import CATEGORY_SEPARATOR, AttributeEdge, BehaviourEdge, ProductNode, RunInfo

Statement = tuple[str, dict[str, Any]]
"""A query and its parameters; a ``rows`` parameter may be split into chunks by the caller."""

_SCORE_FILTER = "($min_score IS NULL OR h.source <> 'model' OR h.score >= $min_score)"


# -- schema ------------------------------------------------------------------------------------


def schema_statements() -> list[str]:
    """Constraints and indexes, each idempotent (``IF NOT EXISTS``); run before any MERGE.

    The composite uniqueness constraint on (attribute, value) works in Community Edition
    (a node key would need Enterprise); its backing index serves every Value lookup.

    Deliberately no relationship index on ``HAS.run_id``: with one, the planner (whose
    statistics lag behind a fast-growing graph) answers the ``MERGE (p)-[:HAS {..run_id..}]->(v)``
    of a fresh load by scanning that index instead of expanding between the two bound nodes,
    which made loading quadratic (measured: 19,714 edges took 85 s instead of 1.3 s). Deleting
    or counting a run's edges scans HAS relationships instead; that is linear and rare.
    """
    return [
        "CREATE CONSTRAINT kgmm_product_id IF NOT EXISTS FOR (p:Product) REQUIRE p.id IS UNIQUE",
        "CREATE CONSTRAINT kgmm_value_key IF NOT EXISTS FOR (v:Value) REQUIRE (v.attribute, v.value) IS UNIQUE",
        "CREATE CONSTRAINT kgmm_category_path IF NOT EXISTS FOR (c:Category) REQUIRE c.path IS UNIQUE",
        "CREATE CONSTRAINT kgmm_run_id IF NOT EXISTS FOR (r:Run) REQUIRE r.run_id IS UNIQUE",
        "CREATE INDEX kgmm_value_attribute IF NOT EXISTS FOR (v:Value) ON (v.attribute)",
        "CREATE INDEX kgmm_build_seq IF NOT EXISTS FOR (b:Build) ON (b.seq)",
    ]


def await_indexes() -> str:
    """Block until every index is online (``$seconds`` at most)."""
    return "CALL db.awaitIndexes($seconds)"


def ping() -> str:
    """A read that proves connectivity, credentials and that the database exists."""
    return "RETURN 1 AS ok"


# -- writes: categories, products, values, edges ------------------------------------------------
#
# Write queries force their index seeks with ``USING INDEX SEEK``, and expansions from a bound
# node are pattern comprehensions: the planner's statistics lag behind a graph that grows by
# thousands of nodes a second (or was just emptied), and plans made from them scanned the whole
# Value index once per edge row (measured: 17 s instead of 0.2 s per 10,000 edges) or started
# from every Value node. The schema exists before any write, so the hints always hold.


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
    """``$rows``: :func:`product_row` maps. Sets every property and the one IN_CATEGORY edge."""
    return (
        "UNWIND $rows AS row "
        "MERGE (p:Product {id: row.id}) "
        "SET p.title = row.title, p.description = row.description, p.image = row.image, "
        "p.image_status = row.image_status, p.image_reason = row.image_reason, p.properties = row.properties "
        "WITH p, row, [(p)-[r:IN_CATEGORY]->(c:Category) "
        "WHERE row.category IS NULL OR c.path <> row.category | r] AS stale "
        "FOREACH (r IN stale | DELETE r) "
        "WITH p, row WHERE row.category IS NOT NULL "
        "MATCH (c:Category {path: row.category}) USING INDEX SEEK c:Category(path) "
        "MERGE (p)-[:IN_CATEGORY]->(c)"
    )


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


def create_edges() -> str:
    """``$rows``: ``neo4j_writes.value_edge_rows``, ``[attribute, value, [[handle, raw, score, pid], ...]]`` of
    ``$source`` edges the products do not have yet, one row per value, sorted by value (one lock
    order in every writer). Returns ``written``.

    A fresh load writes every edge here. Each value is merged once per statement (not once per
    edge), right where its edges are created, so an edge can never be lost to a concurrent
    :func:`prune_orphan_values`; products are found by the handle :func:`product_handles`
    returned in this transaction (no index seek per edge), the label and the product id guarding
    against a handle that no longer names that product (Neo4j reuses the internal ids of deleted
    nodes: without the id check, a product deleted and another created meanwhile by a concurrent
    transaction would receive these edges). CREATE skips the search of the value's (often thousands
    of) HAS edges that MERGE makes. Lists, not maps, in the rows: half the client's encoding.
    """
    return (
        "UNWIND $rows AS row "
        "MERGE (v:Value {attribute: row[0], value: row[1]}) "
        "WITH v, row UNWIND row[2] AS e "
        "MATCH (p:Product) WHERE id(p) = e[0] AND p.id = e[3] "
        "CREATE (p)-[:HAS {attribute: row[0], source: $source, run_id: '', raw: e[1], score: e[2]}]->(v) "
        "RETURN count(*) AS written"
    )


def merge_edges() -> str:
    """``$rows``: :func:`grouped_edge_rows` of source ``$source`` (``run_id`` ''), one row per product.

    Products must exist (they are skipped otherwise). The value is merged, not matched, so an
    edge can never be lost to a concurrent :func:`prune_orphan_values`. Returns ``written``.
    """
    return (
        "UNWIND $rows AS row "
        "MATCH (p:Product {id: row.pid}) USING INDEX SEEK p:Product(id) "
        "UNWIND row.edges AS e "
        "MERGE (v:Value {attribute: e.a, value: e.v}) "
        "MERGE (p)-[h:HAS {attribute: e.a, source: $source, run_id: ''}]->(v) "
        "SET h.raw = e.raw, h.score = e.score "
        "RETURN count(h) AS written"
    )


def count_reviews() -> str:
    """How many review decisions the graph holds (from the count store, without a scan)."""
    return "MATCH (r:Review) RETURN count(r)"


def unknown_products() -> str:
    """Which of ``$ids`` name no product."""
    return "UNWIND $ids AS pid OPTIONAL MATCH (p:Product {id: pid}) WITH pid, p WHERE p IS NULL RETURN pid"


def merge_behaviour() -> str:
    """``$rows``: :func:`behaviour_rows`. Creates or re-weights one BEHAVIOUR edge per (a, b, kind).

    Both products must exist (the store checks that first, in the same transaction); the
    relationship is merged between two bound nodes, so a rerun leaves one copy.
    """
    return (
        "UNWIND $rows AS row "
        "MATCH (a:Product {id: row.a}) USING INDEX SEEK a:Product(id) "
        "MATCH (b:Product {id: row.b}) USING INDEX SEEK b:Product(id) "
        "MERGE (a)-[r:BEHAVIOUR {kind: row.kind}]->(b) "
        "SET r.weight = row.weight"
    )


def merge_run() -> str:
    """Create the run once (later calls with the same id add to it and keep its metadata)."""
    return (
        "MERGE (r:Run {run_id: $run_id}) "
        "ON CREATE SET r.model_version = $model_version, r.created_at = $created_at, r.params = $params"
    )


def merge_predictions() -> str:
    """``$rows``: :func:`grouped_edge_rows` of run ``$run_id``; returns ``written``.

    A prediction for a (product, value) pair that a catalog, text or reviewed edge already asserts is
    skipped, so predictions never shadow facts; its Value node is not even created.
    """
    return (
        "UNWIND $rows AS row "
        "MATCH (p:Product {id: row.pid}) USING INDEX SEEK p:Product(id) "
        "UNWIND row.edges AS e "
        "WITH p, e WHERE size([(p)-[f:HAS {attribute: e.a}]->(fv:Value) "
        "WHERE fv.value = e.v AND f.source IN ['catalog', 'text', 'reviewed'] | f]) = 0 "
        "MERGE (v:Value {attribute: e.a, value: e.v}) "
        "MERGE (p)-[h:HAS {attribute: e.a, source: 'model', run_id: $run_id}]->(v) "
        "SET h.raw = e.raw, h.score = e.score "
        "RETURN count(h) AS written"
    )


def delete_run_edges() -> str:
    """Delete the HAS edges of run ``$run_id``; returns ``removed``."""
    return "MATCH (:Product)-[h:HAS {run_id: $run_id}]->(:Value) DELETE h RETURN count(h) AS removed"


def delete_run() -> str:
    return "MATCH (r:Run {run_id: $run_id}) DETACH DELETE r"


def prune_orphan_values() -> str:
    """Delete Value nodes that no edge points to any more; returns ``pruned``."""
    return "MATCH (v:Value) WHERE NOT EXISTS { (v)<-[:HAS]-() } DELETE v RETURN count(v) AS pruned"


def record_build() -> str:
    """Append a build report (``$created_at``, ``$report`` as JSON) under the next ``seq``."""
    return (
        "OPTIONAL MATCH (old:Build) WITH coalesce(max(old.seq), 0) + 1 AS seq "
        "MERGE (b:Build {seq: seq}) SET b.created_at = $created_at, b.report = $report"
    )


def last_build() -> str:
    return "MATCH (b:Build) RETURN b.report AS report ORDER BY b.seq DESC LIMIT 1"


def delete_some_relationships() -> str:
    """Delete up to ``$limit`` relationships of any kind; returns ``deleted`` (for clearing a graph)."""
    return "MATCH ()-[r]->() WITH r LIMIT $limit DELETE r RETURN count(r) AS deleted"


def delete_some_nodes() -> str:
    """Delete up to ``$limit`` nodes; returns ``deleted`` (after their relationships are gone)."""
    return "MATCH (n) WITH n LIMIT $limit DETACH DELETE n RETURN count(n) AS deleted"


# -- reads -------------------------------------------------------------------------------------
#
# Reads return one row per product (or value) with its edges as a list, anchored on that node,
# and the caller orders edges in Python, so the order is the embedded store's whatever
# collation the server uses. Reads carry no index hints: a read-only account on a database
# that kgmm never wrote to has no kgmm indexes.

_PRODUCT_FIELDS = (
    "p.id AS id, p.title AS title, p.description AS description, "
    "head([(p)-[:IN_CATEGORY]->(c:Category) | c.path]) AS category, p.image AS image, "
    "p.image_status AS image_status, p.image_reason AS image_reason, p.properties AS properties"
)
_NEXT_PAGE = "MATCH (p:Product) WHERE p.id > $after WITH p ORDER BY p.id LIMIT $limit "


def product_by_id() -> str:
    """Product ``$id`` and its edges as ``[attribute, value, source, raw, score, run_id]`` lists."""
    return (
        f"MATCH (p:Product {{id: $id}}) RETURN {_PRODUCT_FIELDS}, "
        "[(p)-[h:HAS]->(v:Value) | [v.attribute, v.value, h.source, h.raw, h.score, h.run_id]] AS edges"
    )


def products_page() -> str:
    """Up to ``$limit`` products with id greater than ``$after``, ordered by id (keyset paging)."""
    return _NEXT_PAGE + f"RETURN {_PRODUCT_FIELDS} ORDER BY id"


def triples_page() -> str:
    """The next ``$limit`` products after ``$after``, each with its edges among ``$sources``
    (model edges scoring at least ``$min_score``) as ``[attribute, value, source, raw, score, run_id]``."""
    return (
        _NEXT_PAGE + "RETURN p.id AS pid, "
        f"[(p)-[h:HAS]->(v:Value) WHERE h.source IN $sources AND {_SCORE_FILTER} "
        "| [v.attribute, v.value, h.source, h.raw, h.score, h.run_id]] AS edges ORDER BY pid"
    )


def snapshot_products_page() -> str:
    """Like :func:`products_page`, with only what a snapshot needs (image only when it checked ok)."""
    return (
        _NEXT_PAGE + "RETURN p.id AS id, p.title AS title, p.description AS description, "
        "CASE WHEN p.image_status = 'ok' THEN p.image END AS image, "
        "head([(p)-[:IN_CATEGORY]->(c:Category) | c.path]) AS category ORDER BY id"
    )


def snapshot_edges_page() -> str:
    """The next ``$limit`` products with their edges as ``[attribute, value, source, score]``."""
    return (
        _NEXT_PAGE + "RETURN p.id AS pid, "
        f"[(p)-[h:HAS]->(v:Value) WHERE h.source IN $sources AND {_SCORE_FILTER} "
        "| [v.attribute, v.value, h.source, h.score]] AS edges ORDER BY pid"
    )


def known_products() -> str:
    """Which of ``$ids`` name a product."""
    return "UNWIND $ids AS pid MATCH (p:Product {id: pid}) RETURN p.id AS id"


def behaviour_page() -> str:
    """The next ``$limit`` products after ``$after``, each with its outgoing BEHAVIOUR edges of
    ``$kinds`` (all when null) as ``[other id, kind, weight]``; edges run from the smaller id."""
    return (
        _NEXT_PAGE + "RETURN p.id AS pid, "
        "[(p)-[r:BEHAVIOUR]->(q:Product) WHERE $kinds IS NULL OR r.kind IN $kinds "
        "| [q.id, r.kind, r.weight]] AS edges ORDER BY pid"
    )


def count_behaviour_by_kind() -> str:
    return "MATCH (:Product)-[r:BEHAVIOUR]->(:Product) RETURN r.kind AS kind, count(r) AS n"


def category_paths() -> str:
    return "MATCH (c:Category) RETURN c.path AS path"


def edges_with_attribute(with_value: bool) -> str:
    """Values of ``$attribute`` (only ``$value`` when ``with_value``), each with its edges among
    ``$sources`` as ``[product id, source, raw, score, run_id]``."""
    match = "MATCH (v:Value {attribute: $attribute, value: $value}) " if with_value else "MATCH (v:Value {attribute: $attribute}) "
    return (
        match + "RETURN v.value AS value, "
        f"[(v)<-[h:HAS]-(p:Product) WHERE h.source IN $sources AND {_SCORE_FILTER} "
        "| [p.id, h.source, h.raw, h.score, h.run_id]] AS edges"
    )


def products_missing_attribute() -> str:
    return (
        "MATCH (p:Product) WHERE NOT EXISTS { MATCH (p)-[h:HAS {attribute: $attribute}]->() "
        "WHERE h.source IN $sources } RETURN p.id AS id"
    )


def attribute_vocabulary() -> str:
    return (
        "MATCH (v:Value) WHERE EXISTS { MATCH (v)<-[h:HAS]-() WHERE h.source IN $sources } "
        "RETURN v.attribute AS attribute, v.value AS value"
    )


def count_product_modalities() -> str:
    return (
        "MATCH (p:Product) RETURN count(p) AS products, "
        "count(CASE WHEN p.title <> '' THEN 1 END) AS with_title, "
        "count(CASE WHEN p.description <> '' THEN 1 END) AS with_description, "
        "count(CASE WHEN p.image_status = 'ok' THEN 1 END) AS with_image, "
        "count(CASE WHEN p.image_status = 'missing' THEN 1 END) AS images_missing"
    )


def count_used_values() -> str:
    return "MATCH (v:Value) WHERE EXISTS { (v)<-[:HAS]-() } RETURN count(v) AS n"


def count_categories() -> str:
    return "MATCH (c:Category) RETURN count(c) AS n"


def count_runs() -> str:
    return "MATCH (r:Run) RETURN count(r) AS n"


def count_edges_by_source() -> str:
    return "MATCH ()-[h:HAS]->() RETURN h.source AS source, count(h) AS n"


def attribute_usage() -> str:
    """(attribute, products having it, distinct values) for every attribute, unordered."""
    return (
        "MATCH (p:Product)-[h:HAS]->(v:Value) "
        "RETURN v.attribute AS attribute, count(DISTINCT p) AS products, count(DISTINCT v) AS distinct_values"
    )


def top_categories() -> str:
    """(top-level category, products) for every top-level category, unordered; ``$separator``."""
    return (
        "MATCH (p:Product)-[:IN_CATEGORY]->(c:Category) "
        "RETURN split(c.path, $separator)[0] AS root, count(p) AS products"
    )


def list_runs() -> str:
    """Runs with their metadata (edge counts come from :func:`count_edges_by_run`)."""
    return (
        "MATCH (r:Run) RETURN r.run_id AS run_id, r.model_version AS model_version, "
        "r.created_at AS created_at, r.params AS params"
    )


def count_edges_by_run() -> str:
    """(run id, predicted edges) in one pass over the HAS relationships."""
    return "MATCH (:Product)-[h:HAS {source: 'model'}]->(:Value) RETURN h.run_id AS run_id, count(h) AS edges"


# -- rows: records -> parameter maps -------------------------------------------------------------


def category_rows(paths: Iterable[Sequence[str]]) -> tuple[list[dict], list[dict]]:
    """Every prefix of every path as ``{path, name}`` (shallowest first), and ``{path, parent}``."""
    nodes: dict[str, dict] = {}
    parents: list[dict] = []
    for path in sorted(set(map(tuple, paths)), key=len):
        for depth in range(1, len(path) + 1):
            key = CATEGORY_SEPARATOR.join(path[:depth])
            if key in nodes:
                continue
            nodes[key] = {"path": key, "name": path[depth - 1]}
            if depth > 1:
                parents.append({"path": key, "parent": CATEGORY_SEPARATOR.join(path[: depth - 1])})
    return list(nodes.values()), parents


def product_row(product: ProductNode) -> dict:
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


def grouped_edge_rows(edges: Iterable[AttributeEdge]) -> list[dict]:
    """``{pid, edges: [{a, v, raw, score}]}``, one row per product (products are looked up once)."""
    grouped: dict[str, list[dict]] = {}
    for e in edges:
        grouped.setdefault(e.product_id, []).append({"a": e.attribute, "v": e.value, "raw": e.raw, "score": e.score})
    return [{"pid": pid, "edges": items} for pid, items in grouped.items()]


def unique_edges(edges: Iterable[AttributeEdge]) -> list[AttributeEdge]:
    """One edge per (product, attribute, value, source, run id); the first one given wins."""
    seen: dict[tuple, AttributeEdge] = {}
    for edge in edges:
        seen.setdefault((edge.product_id, edge.attribute, edge.value, edge.source, edge.run_id or ""), edge)
    return list(seen.values())


def write_predictions(run: RunInfo, edges: Sequence[AttributeEdge], created_at: str) -> list[Statement]:
    """Create the run, then add its predicted edges (the last statement returns ``written``)."""
    return [
        (merge_run(), run_params(run, created_at)),
        (merge_predictions(), {"run_id": run.run_id, "rows": grouped_edge_rows(unique_edges(edges))}),
    ]


def behaviour_rows(edges: Iterable[BehaviourEdge]) -> list[dict]:
    """``{a, b, kind, weight}`` per edge (already canonical and unique, see ``upsert_behaviour``)."""
    return [{"a": e.product_a, "b": e.product_b, "kind": e.kind, "weight": e.weight} for e in edges]


def run_params(run: RunInfo, created_at: str) -> dict:
    return {
        "run_id": run.run_id,
        "model_version": run.model_version,
        "created_at": run.created_at or created_at,
        "params": json.dumps(dict(run.params), sort_keys=True),
    }
