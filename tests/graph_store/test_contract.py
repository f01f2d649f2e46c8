"""The GraphStore contract, run against every backend (see conftest.BACKENDS)."""

from __future__ import annotations

import numpy as np
import pytest

from graph_store import AttributeEdge, BehaviourEdge, ContractError, GraphStore, ProductNode, RunInfo, StoreError
from graph_store.models import CATEGORY_SEPARATOR
from graph_store.snapshot import build_snapshot


def product(pid: str, category: tuple[str, ...] = ("Home", "Kitchen"), **kw) -> ProductNode:
    return ProductNode(id=pid, title=kw.pop("title", f"title {pid}"), category=category, **kw)


def edge(pid: str, attribute: str, value: str, source: str = "catalog", **kw) -> AttributeEdge:
    return AttributeEdge(pid, attribute, value, source, **kw)


@pytest.fixture
def store(empty_store: GraphStore) -> GraphStore:
    empty_store.upsert_products(
        [product("p1"), product("p2", ("Home", "Bath")), product("p3", ())],
        [
            edge("p1", "color", "red", raw="Red"),
            edge("p1", "material", "steel"),
            edge("p2", "color", "blue"),
            edge("p2", "material", "steel"),
        ],
    )
    empty_store.replace_edges(["p3"], "text", [edge("p3", "color", "red", "text", raw="red")])
    return empty_store


def test_upsert_and_get_product_round_trip(store: GraphStore) -> None:
    view = store.get_product("p1")
    assert view is not None
    assert view.product.title == "title p1"
    assert view.product.category == ("Home", "Kitchen")
    assert {(e.attribute, e.value, e.source, e.raw) for e in view.edges} == {
        ("color", "red", "catalog", "Red"),
        ("material", "steel", "catalog", None),
    }
    assert store.get_product("nope") is None


def test_writes_are_idempotent(store: GraphStore) -> None:
    before = store.stats().as_dict()
    store.upsert_products([product("p1")], [edge("p1", "color", "red", raw="Red"), edge("p1", "material", "steel")])
    store.upsert_products([product("p1")], [edge("p1", "color", "red", raw="Red"), edge("p1", "material", "steel")])
    assert store.stats().as_dict() == before


def test_update_replaces_catalog_edges_but_keeps_text_edges(store: GraphStore) -> None:
    store.replace_edges(["p1"], "text", [edge("p1", "size", "large", "text")])
    store.upsert_products([product("p1", title="renamed")], [edge("p1", "color", "green")])
    view = store.get_product("p1")
    assert view.product.title == "renamed"
    assert {(e.attribute, e.value, e.source) for e in view.edges} == {("color", "green", "catalog"), ("size", "large", "text")}


def test_stats_count_nodes_edges_and_categories(store: GraphStore) -> None:
    stats = store.stats()
    assert (stats.products, stats.values, stats.attributes) == (3, 3, 2)
    assert stats.edges_by_source == {"catalog": 4, "text": 1}
    assert stats.categories == 3  # Home, Home > Kitchen, Home > Bath
    assert stats.top_attributes[0] == ("color", 3, 2)
    assert stats.top_categories == [("Home", 2)]


def test_iter_triples_is_ordered_and_filtered(store: GraphStore) -> None:
    triples = [(e.product_id, e.attribute, e.value) for e in store.iter_triples()]
    assert triples == sorted(triples)
    assert len(triples) == 5
    assert [(e.product_id, e.value) for e in store.iter_triples(sources=["text"])] == [("p3", "red")]
    with pytest.raises(ContractError):
        list(store.iter_triples(sources=["bogus"]))


def test_attribute_queries(store: GraphStore) -> None:
    assert [e.product_id for e in store.products_with_attribute("color", "red")] == ["p1", "p3"]
    assert [e.product_id for e in store.products_with_attribute("color", "red", sources=["catalog"])] == ["p1"]
    assert store.products_missing_attribute("material") == ["p3"]
    assert store.products_missing_attribute("color", sources=["catalog"]) == ["p3"]
    assert store.attribute_vocabulary() == {"color": {"red", "blue"}, "material": {"steel"}}


def test_predictions_are_tagged_listed_filtered_and_undone(store: GraphStore) -> None:
    before = store.stats().as_dict()
    run = RunInfo("run-1", model_version="m1")
    written = store.write_predictions(
        run,
        [
            edge("p3", "material", "steel", "model", score=0.9, run_id="run-1"),
            edge("p2", "material", "steel", "model", score=0.8, run_id="run-1"),  # a catalog fact: skipped
            edge("p1", "size", "xl", "model", score=0.2, run_id="run-1"),  # a brand-new value
        ],
    )
    assert written == 2
    [listed] = store.list_runs()
    assert (listed.run_id, listed.model_version, listed.edges) == ("run-1", "m1", 2)
    assert [e.product_id for e in store.products_with_attribute("material", sources=["model"])] == ["p3"]
    assert store.products_with_attribute("size", min_score=0.5) == []
    view = store.get_product("p2")
    assert {e.source for e in view.edges if e.attribute == "material"} == {"catalog"}
    assert store.delete_run("run-1") == 2
    assert store.list_runs() == []
    assert store.stats().as_dict() == before


def test_delete_run_removes_only_that_run(store: GraphStore) -> None:
    store.write_predictions(RunInfo("a"), [edge("p3", "material", "steel", "model", score=0.9, run_id="a")])
    store.write_predictions(RunInfo("b"), [edge("p3", "material", "wood", "model", score=0.4, run_id="b")])
    assert store.delete_run("a") == 1
    assert [(e.value, e.run_id) for e in store.iter_triples(sources=["model"])] == [("wood", "b")]


def test_predictions_validate_scores_and_products(store: GraphStore) -> None:
    with pytest.raises(ContractError):
        store.write_predictions(RunInfo("r"), [edge("p1", "size", "xl", "model", score=1.5, run_id="r")])
    with pytest.raises(ContractError):
        store.write_predictions(RunInfo("r"), [edge("p1", "size", "xl", "catalog", score=0.5, run_id="r")])
    with pytest.raises(ContractError):
        store.write_predictions(RunInfo("r"), [edge("ghost", "size", "xl", "model", score=0.5, run_id="r")])


def test_contract_rejects_bad_batches(empty_store: GraphStore) -> None:
    with pytest.raises(ContractError):
        empty_store.upsert_products([product("")])
    with pytest.raises(ContractError):
        empty_store.upsert_products([product("a")], [edge("b", "color", "red")])
    with pytest.raises(ContractError):
        empty_store.upsert_products([product("a")], [edge("a", "color", "red", "text")])
    assert empty_store.stats().products == 0


def test_hostile_strings_are_stored_verbatim(empty_store: GraphStore) -> None:
    nasty = "x'); DROP TABLE products; -- `}) DETACH DELETE n //\"\\"
    empty_store.upsert_products([product(nasty, (nasty,), title=nasty)], [edge(nasty, nasty, nasty)])
    view = empty_store.get_product(nasty)
    assert view.product.title == nasty and view.product.category == (nasty,)
    assert [(e.attribute, e.value) for e in view.edges] == [(nasty, nasty)]


def test_snapshot_has_sorted_id_maps_and_consistent_edges(store: GraphStore) -> None:
    snap = store.snapshot()
    assert snap.product_ids == ["p1", "p2", "p3"]
    assert snap.attributes == ["color", "material"]
    assert snap.values == [("color", "blue"), ("color", "red"), ("material", "steel")]
    assert snap.categories == ["Home", "Home > Bath", "Home > Kitchen"]
    assert snap.category_parent.tolist() == [-1, 0, 0]
    assert snap.product_category.tolist() == [2, 1, -1]
    triples = {
        (snap.product_ids[p], snap.attributes[a], snap.values[v][1])
        for p, a, v in zip(snap.edge_product, snap.edge_attribute, snap.edge_value)
    }
    assert triples == {(e.product_id, e.attribute, e.value) for e in store.iter_triples()}
    assert all(snap.values[v][0] == snap.attributes[a] for a, v in zip(snap.edge_attribute, snap.edge_value))
    assert snap.edge_source.tolist() == [0, 0, 0, 0, 1]
    assert snap.edge_product.dtype == np.int64 and snap.has_title().all()


def test_snapshot_excludes_predictions_unless_asked(store: GraphStore) -> None:
    plain = store.snapshot()
    store.write_predictions(RunInfo("r"), [edge("p3", "material", "steel", "model", score=0.7, run_id="r")])
    assert store.snapshot().content_hash() == plain.content_hash()
    with_predictions = store.snapshot(include_predicted=True)
    assert with_predictions.num_edges == plain.num_edges + 1
    assert store.snapshot(include_predicted=True, min_score=0.9).num_edges == plain.num_edges


def test_build_reports_are_recorded(store: GraphStore) -> None:
    assert store.last_build() is None
    store.record_build({"products": 3})
    store.record_build({"products": 4})
    assert store.last_build() == {"products": 4}


# -- behaviour edges (product-product) -----------------------------------------------------------


def test_behaviour_edges_are_undirected_upserted_and_ordered(store: GraphStore) -> None:
    written = store.upsert_behaviour(
        [
            BehaviourEdge("p2", "p1", "co_view", 2.0),  # stored as (p1, p2)
            BehaviourEdge("p1", "p2", "co_view", 5.0),  # same pair: the last weight wins
            BehaviourEdge("p3", "p1", "co_purchase", 1),
            BehaviourEdge("p1", "p2", "same_query", 0.5),
        ]
    )
    assert written == 3
    assert list(store.iter_behaviour()) == [
        BehaviourEdge("p1", "p2", "co_view", 5.0),
        BehaviourEdge("p1", "p2", "same_query", 0.5),
        BehaviourEdge("p1", "p3", "co_purchase", 1.0),
    ]
    assert [e.kind for e in store.iter_behaviour(kinds=["co_purchase"])] == ["co_purchase"]
    store.upsert_behaviour([BehaviourEdge("p2", "p1", "co_view", 7.5)])  # a later load re-weights
    assert store.stats().behaviour_edges == {"co_purchase": 1, "co_view": 1, "same_query": 1}
    assert next(store.iter_behaviour()).weight == 7.5


def test_behaviour_writes_are_idempotent(store: GraphStore) -> None:
    edges = [BehaviourEdge("p1", "p2", "co_view", 3.0), BehaviourEdge("p3", "p2", "co_purchase", 1.0)]
    store.upsert_behaviour(edges)
    before = (store.stats().as_dict(), list(store.iter_behaviour()), store.snapshot().content_hash())
    store.upsert_behaviour(edges)
    store.upsert_behaviour(list(reversed(edges)))
    assert (store.stats().as_dict(), list(store.iter_behaviour()), store.snapshot().content_hash()) == before


def test_behaviour_contract_rejects_bad_edges_and_unknown_products(store: GraphStore) -> None:
    for bad in (
        BehaviourEdge("", "p1"),
        BehaviourEdge("p1", "p1"),
        BehaviourEdge("p1", "p2", "Co View"),
        BehaviourEdge("p1", "p2", "co_view", 0.0),
        BehaviourEdge("p1", "p2", "co_view", float("nan")),
        BehaviourEdge("p1", "p2", "co_view", -1.0),
    ):
        with pytest.raises(ContractError):
            store.upsert_behaviour([bad])
    with pytest.raises(ContractError, match="ghost"):  # the whole batch, good edge included, is refused
        store.upsert_behaviour([BehaviourEdge("p1", "p2"), BehaviourEdge("p1", "ghost")])
    assert list(store.iter_behaviour()) == [] and store.stats().behaviour_edges == {}
    assert store.known_products(["p1", "ghost", "p3", ""]) == {"p1", "p3"}


def test_snapshot_carries_behaviour_edges_by_product_index(store: GraphStore) -> None:
    plain = store.snapshot()
    assert plain.num_behaviour_edges == 0 and plain.behaviour_kinds == []
    store.upsert_behaviour([BehaviourEdge("p3", "p1", "co_view", 2.0), BehaviourEdge("p2", "p3", "co_purchase", 0.25)])
    snap = store.snapshot()
    assert snap.behaviour_kinds == ["co_purchase", "co_view"]
    assert snap.behaviour_src.tolist() == [0, 1] and snap.behaviour_dst.tolist() == [2, 2]
    assert snap.behaviour_kind.tolist() == [1, 0]
    assert snap.behaviour_weight.dtype == np.float32 and snap.behaviour_weight.tolist() == [2.0, 0.25]
    assert snap.behaviour_src.dtype == np.int64 and snap.behaviour_kind.dtype == np.int64
    assert snap.content_hash() != plain.content_hash()
    assert snap.edge_product.tolist() == plain.edge_product.tolist()  # attribute edges untouched


def test_prune_orphans_is_in_the_contract_and_removes_only_unused_values(store: GraphStore) -> None:
    """Callers reach it as a contract method (a build calls it once at its end), never via getattr."""
    assert store.prune_orphans() == 0
    store.upsert_products([product("p2", ("Home", "Bath"))], [edge("p2", "color", "green"), edge("p2", "material", "steel")])
    assert store.prune_orphans() == 1  # "blue": only p2 used it
    assert store.prune_orphans() == 0
    assert store.attribute_vocabulary(("catalog", "text")) == {"color": {"green", "red"}, "material": {"steel"}}

def test_closed_store_raises_store_error_not_a_driver_error(store: GraphStore) -> None:
    """Driver errors never leave graph_store: using a closed store is a StoreError on every backend."""
    store.close()
    for call in (lambda: store.stats(), lambda: list(store.iter_products()), lambda: store.get_product("p1")):
        with pytest.raises(StoreError):
            call()


@pytest.mark.parametrize("include_predicted, min_score", [(False, None), (True, None), (True, 0.5)])
def test_snapshot_equals_the_one_built_from_the_stores_named_rows(store: GraphStore, include_predicted: bool, min_score) -> None:
    """A backend may read its edges its own way (SQLite reads integer keys); the snapshot must be
    the one :func:`build_snapshot` makes from the products and triples the contract lists."""
    store.write_predictions(RunInfo("run-1", model_version="m1"), [
        edge("p3", "material", "steel", "model", score=0.9, run_id="run-1"),
        edge("p1", "size", "xl", "model", score=0.2, run_id="run-1"),
    ])
    store.upsert_behaviour([BehaviourEdge("p3", "p1", "co_view", 2.0)])
    sources = ("catalog", "text", "reviewed", "model") if include_predicted else ("catalog", "text", "reviewed")
    products = [(p.id, p.title, p.description, p.image if p.image_status == "ok" else None,
                 CATEGORY_SEPARATOR.join(p.category) or None) for p in store.iter_products()]
    triples = [(e.product_id, e.attribute, e.value, e.source, e.score) for e in store.iter_triples(sources, min_score)]
    expected = build_snapshot(products, [], triples, [(b.product_a, b.product_b, b.kind, b.weight) for b in store.iter_behaviour()])
    got = store.snapshot(include_predicted=include_predicted, min_score=min_score)
    assert got.content_hash() == expected.content_hash()
    assert got.num_edges == expected.num_edges > 0 and got.edge_score.tolist() == expected.edge_score.tolist()
