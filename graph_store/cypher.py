"""The Cypher of the Neo4j backend, built by small pure functions (testable as strings).

Graph model::

    (:Product {id, title, description, image, image_status, image_reason, properties})
    (:Value {attribute, value})                       keyed by (attribute, value)
    (:Category {path, name})-[:CHILD_OF]->(:Category)
    (:Product)-[:IN_CATEGORY]->(:Category)
    (:Product)-[:HAS {source, raw, score, run_id}]->(:Value)   run_id and score: predictions only
    (:Product)-[:BEHAVIOUR {kind, weight}]->(:Product)   undirected: from the smaller id
    (:Run {run_id, model_version, created_at, params})
    (:Build {seq, created_at, report})

``properties``, ``params`` and ``report`` are JSON strings. A HAS edge is keyed by (product,
value, source, run_id) like the embedded store's primary key; catalog, text and reviewed edges
(facts) have no ``run_id`` (a product has one edge of a fact source per value), and no edge has
the attribute, which is its Value node's. Graphs written before session 10 also have
``attribute`` and ``run_id: ''`` on every HAS edge: no query matches on them or reads them, and
writes match edges on ``source`` (and ``run_id`` for predictions), which finds the old edges
too, so such a graph reads the same and a rebuild updates it without duplicates. Every node and
edge is written with ``MERGE`` on its natural key (or ``CREATE`` once the same transaction
found it missing), so a batch that is retried (the driver retries transient failures) or a
build that is rerun after a crash leaves exactly one copy.

No caller string is ever part of a query: every query below is a constant, and data travels
as parameters (``$rows`` is a list of maps, one per row, for ``UNWIND``). Functions that also
shape data return ``(query, parameters)`` pairs (:data:`Statement`). Edge rows are grouped by
product (``{pid, edges: [...]}``) so that each product is looked up once per statement.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

from .models import AttributeEdge, BehaviourEdge, RunInfo

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


# -- writes: predictions, behaviour, runs, builds ------------------------------------------------
#
# Catalog and text writes (products, categories, values and their HAS edges) are in
# :mod:`graph_store.cypher_catalog`.


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
        "WITH p, e WHERE size([(p)-[f:HAS]->(fv:Value) "
        "WHERE fv.attribute = e.a AND fv.value = e.v AND f.source IN ['catalog', 'text', 'reviewed'] | f]) = 0 "
        "MERGE (v:Value {attribute: e.a, value: e.v}) "
        "MERGE (p)-[h:HAS {source: 'model', run_id: $run_id}]->(v) "
        "SET h.raw = e.raw, h.score = e.score "
        "RETURN count(h) AS written"
    )


def delete_run_edges() -> str:
    """Delete the HAS edges of run ``$run_id``; returns ``removed``."""
    return "MATCH (:Product)-[h:HAS {source: 'model', run_id: $run_id}]->(:Value) DELETE h RETURN count(h) AS removed"


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
        "MATCH (p:Product) WHERE NOT EXISTS { MATCH (p)-[h:HAS]->(:Value {attribute: $attribute}) "
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
