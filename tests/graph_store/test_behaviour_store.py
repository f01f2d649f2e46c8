"""Behaviour edges in storage: schema migration, the Cypher as strings, and both backends agreeing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from graph_store import BehaviourEdge, GraphStore, ProductNode, cypher, open_store
from kg_builder import build_graph, open_catalog, open_pairs

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_a_store_made_before_behaviour_edges_gains_the_table(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with open_store(str(path), create=True) as store:
        store.upsert_products([ProductNode("a"), ProductNode("b")])
    with sqlite3.connect(path) as conn:  # what a store written by the previous kgmm looks like
        conn.executescript("DROP INDEX behaviour_by_b; DROP TABLE behaviour;")
    with open_store(str(path)) as store:
        assert store.snapshot().num_behaviour_edges == 0 and store.stats().behaviour_edges == {}
        store.upsert_behaviour([BehaviourEdge("b", "a", "co_purchase", 2.0)])
        assert list(store.iter_behaviour()) == [BehaviourEdge("a", "b", "co_purchase", 2.0)]


def test_behaviour_cypher_merges_between_bound_products() -> None:
    query = cypher.merge_behaviour()
    assert query.startswith("UNWIND $rows AS row ")
    assert "USING INDEX SEEK a:Product(id)" in query and "USING INDEX SEEK b:Product(id)" in query
    assert "MERGE (a)-[r:BEHAVIOUR {kind: row.kind}]->(b) SET r.weight = row.weight" in query
    assert "CREATE" not in query
    nasty = "x'}) DETACH DELETE n //"
    rows = cypher.behaviour_rows([BehaviourEdge(nasty, "z", nasty, 1.5)])
    assert rows == [{"a": nasty, "b": "z", "kind": nasty, "weight": 1.5}]
    assert cypher.behaviour_page().startswith("MATCH (p:Product) WHERE p.id > $after WITH p ORDER BY p.id LIMIT $limit ")


def build_example(store: GraphStore) -> None:
    build_graph(open_catalog(EXAMPLES / "catalog.jsonl"), store, behaviour=[open_pairs(EXAMPLES / "behaviour.csv")])


@pytest.mark.neo4j
def test_both_backends_store_and_snapshot_the_same_behaviour(neo4j_store: GraphStore, tmp_path: Path) -> None:
    with open_store(str(tmp_path / "g.db"), create=True) as sqlite:
        build_example(sqlite)
        build_example(neo4j_store)
        left, right = sqlite.snapshot(), neo4j_store.snapshot()
        assert left.num_behaviour_edges == 275 and left.behaviour_kinds == right.behaviour_kinds
        for name in ("behaviour_src", "behaviour_dst", "behaviour_kind", "behaviour_weight"):
            assert np.array_equal(getattr(left, name), getattr(right, name)), name
        assert left.content_hash() == right.content_hash()
        assert list(neo4j_store.iter_behaviour()) == list(sqlite.iter_behaviour())
        assert neo4j_store.stats().behaviour_edges == sqlite.stats().behaviour_edges
        digest = right.content_hash()
        build_example(neo4j_store)  # a rerun changes nothing
        assert neo4j_store.snapshot().content_hash() == digest
        assert neo4j_store.stats().behaviour_edges == {"co_purchase": 20, "co_view": 221, "same_query": 34}
