"""The Neo4j backend's Cypher, checked as strings: no server needed."""

from __future__ import annotations

import inspect
import re

import pytest

from graph_store import AttributeEdge, ProductNode, RunInfo, cypher, cypher_catalog
from graph_store.neo4j_writes import (
    Slice, chunks, product_statements, shared_node_statements, split_by_product, stale_edge_rows, value_edge_rows,
)

NASTY = "x'); DROP TABLE products; -- `}) DETACH DELETE n //\"\\ $rows {id: 1}"


def query_functions() -> dict[str, str]:
    """Every query-building function that takes no arguments, with its query."""
    found = {}
    for module in (cypher, cypher_catalog):
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ == module.__name__ and not inspect.signature(fn).parameters:
                result = fn()
                if isinstance(result, str):
                    found[name] = result
    found["edges_with_attribute(True)"] = cypher.edges_with_attribute(True)
    found["edges_with_attribute(False)"] = cypher.edges_with_attribute(False)
    found["create_edges(True)"] = cypher_catalog.create_edges(True)
    found["create_edges(False)"] = cypher_catalog.create_edges(False)
    return found


def hostile_statements() -> list[cypher.Statement]:
    product = ProductNode(NASTY, NASTY, NASTY, (NASTY, NASTY), NASTY, "missing", NASTY, {NASTY: NASTY})
    edges = [AttributeEdge(NASTY, NASTY, NASTY, "catalog", NASTY)]
    run = RunInfo(NASTY, NASTY, NASTY, params={NASTY: NASTY})
    predictions = [AttributeEdge(NASTY, NASTY, NASTY, "model", NASTY, 0.5, NASTY)]
    return [
        *product_statements([product]),
        *shared_node_statements([product], edges),
        *edge_statements("catalog", [NASTY], edges),
        *edge_statements("text", [NASTY], [edges[0]._replace(source="text")]),
        *cypher.write_predictions(run, predictions, NASTY),
    ]


def edge_statements(source: str, ids: list[str], edges: list[AttributeEdge]) -> list[cypher.Statement]:
    """The statements ``neo4j_writes.write_edges`` runs, with every edge both new and kept."""
    edges = cypher.unique_edges(edges)
    grouped = {"source": source, "rows": cypher.grouped_edge_rows(edges)}
    by_value = {"source": source, "rows": value_edge_rows(edges, {pid: 1 for pid in ids})}
    return [(cypher_catalog.product_handles(), {"ids": ids, "source": source}),
            (cypher_catalog.delete_stale_edges(), {"source": source, "rows": stale_edge_rows(ids, edges)}),
            (cypher_catalog.create_edges(), by_value), (cypher_catalog.merge_edges(), grouped),
            (cypher_catalog.create_edges(checked=False), {"source": source, "rows": value_edge_rows(edges, {pid: 1 for pid in ids}, False)})]


def test_queries_are_constants() -> None:
    first, second = query_functions(), query_functions()
    assert first == second and len(first) > 30


def test_caller_strings_travel_only_as_parameters() -> None:
    statements = hostile_statements()
    assert statements
    for query, params in statements:
        assert NASTY not in query and "DROP" not in query
        assert any(NASTY in text for text in strings(params))


def strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in strings(k) + strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in strings(item)]
    return []


def test_every_parameter_a_statement_uses_is_given() -> None:
    for query, params in hostile_statements():
        used = set(re.findall(r"\$(\w+)", query))
        assert used <= set(params), (query, used - set(params))


def test_schema_is_idempotent_and_community_compatible() -> None:
    schema = cypher.schema_statements()
    assert all(" IF NOT EXISTS " in s for s in schema)
    assert any("FOR (p:Product) REQUIRE p.id IS UNIQUE" in s for s in schema)
    # a composite uniqueness constraint (Community), not a NODE KEY (Enterprise only)
    assert any("FOR (v:Value) REQUIRE (v.attribute, v.value) IS UNIQUE" in s for s in schema)
    assert any("FOR (c:Category) REQUIRE c.path IS UNIQUE" in s for s in schema)
    assert any("FOR (r:Run) REQUIRE r.run_id IS UNIQUE" in s for s in schema)
    assert not any("NODE KEY" in s for s in schema)
    # no relationship index on HAS: it made the planner scan it inside MERGE (quadratic loads)
    assert not any("()-[" in s for s in schema)


def test_data_is_merged_on_natural_keys_never_created() -> None:
    for name, query in query_functions().items():
        if name in ("schema_statements", "create_edges(True)", "create_edges(False)", "merge_products"):
            continue
        without_on_create = query.replace("ON CREATE SET", "")
        assert not re.search(r"\bCREATE\b", without_on_create), name
    # the CREATEs: HAS edges the stale-edge statement just reported the product lacks; nodes are merged
    created, unchecked = cypher_catalog.create_edges(), cypher_catalog.create_edges(checked=False)
    for query in (created, unchecked):  # no attribute (the Value's) and no run_id (predictions only) on a fact edge
        assert re.findall(r"\bCREATE\b \([^\n]*?\(v\)", query) == ["CREATE (p)-[:HAS {source: $source, raw: e[1], score: e[2]}]->(v)"]
        assert "MERGE (v:Value {attribute: row[0], value: row[1]})" in query
    assert "MATCH (p:Product) WHERE id(p) = e[0] AND p.id = e[3]" in created  # the handle, checked against label and id
    assert "MATCH (p:Product) WHERE id(p) = e[0] " in unchecked and "e[3]" not in unchecked  # products locked by this transaction
    assert "RETURN row.pid AS pid, kept" in cypher_catalog.delete_stale_edges()
    # ... and the category edge, only where the (locked) product lacks it
    products = cypher_catalog.merge_products()
    assert "MERGE (p:Product {id: row.id})" in products
    assert re.findall(r"\bCREATE\b.*", products) == ["CREATE (p)-[:IN_CATEGORY]->(c)"]
    assert "WHERE row.category IS NOT NULL AND none(x IN current WHERE x[1] = row.category)" in products
    assert "MERGE (:Value {attribute: row[0], value: row[1]})" in cypher_catalog.merge_values()
    assert "MERGE (c:Category {path: row.path})" in cypher_catalog.merge_categories()
    assert "MERGE (c)-[:CHILD_OF]->(parent)" in cypher_catalog.merge_category_parents()
    assert "MERGE (r:Run {run_id: $run_id}) ON CREATE SET" in cypher.merge_run()
    edge = "MERGE (p)-[h:HAS {source: $source}]->(v) SET h.raw = e.raw, h.score = e.score"  # finds edges of older graphs too
    assert edge in cypher_catalog.merge_edges()


def test_write_queries_force_their_index_seeks() -> None:
    for query in (cypher_catalog.merge_edges(), cypher_catalog.product_handles(), cypher_catalog.delete_stale_edges(),
                  cypher.merge_predictions()):
        assert "USING INDEX SEEK p:Product(id)" in query
    assert "MERGE (v:Value {attribute: e.a, value: e.v})" in cypher_catalog.merge_edges()
    assert "USING INDEX SEEK c:Category(path)" in cypher_catalog.merge_products()


def test_batched_writes_unwind_rows() -> None:
    for query in (cypher_catalog.merge_categories(), cypher_catalog.merge_category_parents(), cypher_catalog.merge_products(),
                  cypher_catalog.merge_values(), cypher_catalog.delete_stale_edges(), cypher_catalog.merge_edges(),
                  cypher_catalog.create_edges(), cypher.merge_predictions()):
        assert query.startswith("UNWIND $rows AS row ")


def test_predictions_skip_facts_and_are_written_under_their_run() -> None:
    query = cypher.merge_predictions()
    assert "f.source IN ['catalog', 'text', 'reviewed']" in query and "= 0" in query
    assert "MERGE (p)-[h:HAS {source: 'model', run_id: $run_id}]->(v)" in query
    assert "fv.attribute = e.a AND fv.value = e.v" in query  # the attribute is the Value node's
    assert query.endswith("RETURN count(h) AS written")
    assert "{source: 'model', run_id: $run_id}" in cypher.delete_run_edges() and "DETACH DELETE r" in cypher.delete_run()


def test_product_statements_run_in_dependency_order() -> None:
    products = [ProductNode("a", category=("Home", "Kitchen")), ProductNode("b")]
    assert [q for q, _ in product_statements(products)] == [
        cypher_catalog.merge_categories(), cypher_catalog.merge_category_parents(), cypher_catalog.merge_products()]


def test_rows_of_a_batch() -> None:
    products = [
        ProductNode("a", "old", category=("Home",)),
        ProductNode("b", category=("Home", "Kitchen", "Mugs")),
        ProductNode("a", "new", category=("Home", "Bath"), properties={"z": 1, "b": "ü"}),
    ]
    edges = [
        AttributeEdge("a", "color", "red", raw="Red"),
        AttributeEdge("a", "color", "red", raw="RED"),  # the first of a key wins
        AttributeEdge("a", "size", "xl"),
        AttributeEdge("b", "color", "red"),
    ]
    (_, categories), (_, parents), (_, rows) = product_statements(products)
    unique = cypher.unique_edges(edges)
    stale = {"source": "catalog", "rows": stale_edge_rows(["a", "b"], unique)}
    by_value = value_edge_rows(unique + [AttributeEdge("gone", "color", "blue")], {"a": 11, "b": 12})
    grouped = {"source": "catalog", "rows": cypher.grouped_edge_rows(unique)}
    assert [c["path"] for c in categories["rows"]] == ["Home", "Home > Bath", "Home > Kitchen", "Home > Kitchen > Mugs"]
    assert {(p["path"], p["parent"]) for p in parents["rows"]} == {
        ("Home > Bath", "Home"), ("Home > Kitchen", "Home"), ("Home > Kitchen > Mugs", "Home > Kitchen")
    }
    assert [(r["id"], r["title"], r["category"]) for r in rows["rows"]] == [("a", "new", "Home > Bath"), ("b", "", "Home > Kitchen > Mugs")]
    assert rows["rows"][0]["properties"] == '{"b": "ü", "z": 1}'  # JSON, sorted keys, not escaped
    assert stale == {"source": "catalog", "rows": [
        {"pid": "a", "keep": [["color", "red"], ["size", "xl"]]}, {"pid": "b", "keep": [["color", "red"]]}
    ]}
    # one row per value, sorted (one lock order); a product without a handle is left out
    assert by_value == [["color", "red", [(11, "Red", None, "a"), (12, None, None, "b")]], ["size", "xl", [(11, None, None, "a")]]]
    # products this transaction wrote (locked): no product id on the edge rows
    assert value_edge_rows(unique, {"a": 11, "b": 12}, checked=False) == [
        ["color", "red", [(11, "Red", None), (12, None, None)]], ["size", "xl", [(11, None, None)]]]
    assert grouped["source"] == "catalog"
    assert grouped["rows"] == [
        {"pid": "a", "edges": [{"a": "color", "v": "red", "raw": "Red", "score": None}, {"a": "size", "v": "xl", "raw": None, "score": None}]},
        {"pid": "b", "edges": [{"a": "color", "v": "red", "raw": None, "score": None}]},
    ]


def test_replacing_with_nothing_deletes_every_edge_of_that_source() -> None:
    assert stale_edge_rows(["p1", "p2"], []) == [{"pid": "p1", "keep": []}, {"pid": "p2", "keep": []}]
    assert value_edge_rows([], {"p1": 1}) == [] and cypher.grouped_edge_rows([]) == []


def test_chunks_count_the_edges_of_grouped_rows() -> None:
    rows = [["a", "1", [[1, None, None]] * 3], ["a", "2", [[2, None, None]]], ["b", "1", [[3, None, None]] * 2]]
    assert [len(c["rows"]) for c in chunks({"source": "x", "rows": rows}, 3)] == [1, 2]
    maps = [{"pid": "p", "edges": [{}] * 2}, {"pid": "q", "edges": [{}]}, {"id": "r"}]
    assert [len(c["rows"]) for c in chunks({"rows": maps}, 2)] == [1, 2]
    assert list(chunks({"rows": []}, 5)) == [] and list(chunks({"x": 1}, 5)) == [{"x": 1}]
    values = [["color", "red"], ["color", "blue"], ["size", "xl"]]  # merge_values rows: one each
    assert [len(c["rows"]) for c in chunks({"rows": values}, 2)] == [2, 1]


def test_shared_nodes_of_a_batch_are_its_categories_and_sorted_values() -> None:
    products = [ProductNode("a", category=("Home", "Kitchen")), ProductNode("b"), ProductNode("a", category=("Toys",))]
    edges = [AttributeEdge("b", "size", "xl"), AttributeEdge("a", "color", "red"), AttributeEdge("b", "color", "red")]
    (q1, categories), (q2, _), (q3, values) = shared_node_statements(products, edges)
    assert (q1, q2, q3) == (cypher_catalog.merge_categories(), cypher_catalog.merge_category_parents(), cypher_catalog.merge_values())
    assert [c["path"] for c in categories["rows"]] == ["Toys"]  # the last row of "a" wins: no category of a superseded row
    assert values["rows"] == [["color", "red"], ["size", "xl"]]


def test_split_by_product_keeps_every_row_of_a_product_in_one_slice() -> None:
    products = [ProductNode(f"p{n}", f"t{n}") for n in range(5)] + [ProductNode("p1", "later")]
    edges = [AttributeEdge("p4", "color", "red"), AttributeEdge("p1", "size", "xl"), AttributeEdge("p1", "size", "l")]
    slices = split_by_product([f"p{n}" for n in range(5)], products, edges, 2)
    assert [s.product_ids for s in slices] == [["p0", "p1", "p2"], ["p3", "p4"]]
    assert [p.title for p in slices[0].products] == ["t0", "t1", "t2", "later"]  # duplicates in the order given
    assert slices[0].edges == edges[1:] and slices[1].edges == edges[:1]
    assert split_by_product(["a", "b"], [], [], 4) == [Slice(["a"], [], []), Slice(["b"], [], [])]


def test_runs_keep_their_metadata_as_json() -> None:
    (query, params), (_, predictions) = cypher.write_predictions(
        RunInfo("r1", "m1", params={"k": 5, "a": [1]}), [AttributeEdge("p", "size", "xl", "model", None, 0.7, "r1")], "2026-01-01T00:00:00+00:00"
    )
    assert query == cypher.merge_run()
    assert params == {"run_id": "r1", "model_version": "m1", "created_at": "2026-01-01T00:00:00+00:00", "params": '{"a": [1], "k": 5}'}
    assert predictions["run_id"] == "r1"
    assert predictions["rows"] == [{"pid": "p", "edges": [{"a": "size", "v": "xl", "raw": None, "score": 0.7}]}]


@pytest.mark.parametrize("with_value", [True, False])
def test_attribute_lookup_matches_the_value_key(with_value: bool) -> None:
    query = cypher.edges_with_attribute(with_value)
    assert ("value: $value" in query) is with_value
    assert query.startswith("MATCH (v:Value {attribute: $attribute")


def test_reads_page_on_product_id() -> None:
    for query in (cypher.products_page(), cypher.triples_page(), cypher.snapshot_products_page(), cypher.snapshot_edges_page()):
        assert query.startswith("MATCH (p:Product) WHERE p.id > $after WITH p ORDER BY p.id LIMIT $limit ")
        assert query.split(" RETURN ", 1)[1].split(", ")[0].startswith("p.id AS ")
    assert "$min_score IS NULL OR h.source <> 'model' OR h.score >= $min_score" in cypher.triples_page()
