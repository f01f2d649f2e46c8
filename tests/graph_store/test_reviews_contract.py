"""Reviews in the GraphStore contract, run against every backend (see conftest.BACKENDS).

A decision round-trips (recorded, listed, undone) and does to the edges what
graph_store.reviews says: accept makes a ``reviewed`` fact that survives rebuilds, run undo and
later runs; reject stops every later run proposing the value; flag decisions keep or replace the
catalog value.
"""

from __future__ import annotations

import pytest

from graph_store import AttributeEdge, ContractError, GraphStore, ProductNode, Review, ReviewExistsError, RunInfo

FLAG = "suspect catalog value 'red' (p=0.010)"


def edge(pid: str, attribute: str, value: str, source: str = "catalog", **kw) -> AttributeEdge:
    return AttributeEdge(pid, attribute, value, source, **kw)


def proposal(pid: str, attribute: str, value: str, score: float, run: str = "run-1", raw: str | None = None) -> AttributeEdge:
    return AttributeEdge(pid, attribute, value, "model", raw, score, run)


PRODUCTS = [ProductNode("p1", "red steel mug", category=("Home", "Kitchen")), ProductNode("p2", "blue cup", category=("Home",))]
CATALOG = [edge("p1", "color", "red", raw="Red"), edge("p2", "material", "steel")]


@pytest.fixture
def store(empty_store: GraphStore) -> GraphStore:
    empty_store.upsert_products(PRODUCTS, CATALOG)
    empty_store.write_predictions(
        RunInfo("run-1", "m1"),
        [
            proposal("p1", "material", "steel", 0.9),
            proposal("p1", "material", "glass", 0.4),
            proposal("p2", "color", "blue", 0.7),
            proposal("p1", "color", "blue", 0.8, raw=FLAG),  # a suggestion against the catalog's red
        ],
    )
    return empty_store


def triples(store: GraphStore, pid: str, attribute: str) -> set[tuple[str, str]]:
    return {(e.value, e.source) for e in store.get_product(pid).edges if e.attribute == attribute}


def test_accept_makes_a_reviewed_fact_that_survives_rebuild_run_undo_and_reruns(store: GraphStore) -> None:
    done = store.review(Review("p1", "material", "steel", "accept", reviewer="ann", note="photo shows steel"))
    assert (done.run_id, done.score, done.reviewer, done.seq) == ("run-1", 0.9, "ann", 1) and done.decided_at
    assert triples(store, "p1", "material") == {("steel", "reviewed"), ("glass", "model")}
    store.upsert_products(PRODUCTS, CATALOG)  # build-kg again
    store.delete_run("run-1")  # kgmm complete --undo
    assert triples(store, "p1", "material") == {("steel", "reviewed")}
    assert store.write_predictions(RunInfo("run-2"), [proposal("p1", "material", "steel", 0.95, "run-2")]) == 0
    snap = store.snapshot()
    assert ("material", "steel") in snap.values and store.stats().edges_by_source["reviewed"] == 1
    assert [(r.key, r.decision, r.note) for r in store.reviews()] == [(("p1", "material", "steel"), "accept", "photo shows steel")]


def test_reject_removes_the_proposal_and_no_later_run_proposes_it(store: GraphStore) -> None:
    store.review(Review("p1", "material", "glass", "reject", reviewer="bob"))
    assert triples(store, "p1", "material") == {("steel", "model")}
    written = store.write_predictions(
        RunInfo("run-2"), [proposal("p1", "material", "glass", 0.99, "run-2"), proposal("p2", "material", "glass", 0.5, "run-2")]
    )
    assert written == 1  # only p2's: the rejection is about p1
    assert triples(store, "p1", "material") == {("steel", "model")}


def test_undo_puts_back_exactly_what_a_decision_took(store: GraphStore) -> None:
    before = {(e.product_id, e.attribute, e.value, e.source, e.raw, e.score, e.run_id) for e in store.iter_triples()}
    store.review(Review("p1", "material", "steel", "accept"))
    store.review(Review("p1", "material", "glass", "reject"))
    store.review(Review("p1", "color", "blue", "replace"))
    assert [r.seq for r in store.reviews()] == [1, 2, 3]
    assert store.undo_review("p1", "color", "blue").decision == "replace"
    assert store.undo_review("p1", "material", "glass").decision == "reject"
    assert store.undo_review("p1", "material", "steel").decision == "accept"
    assert store.undo_review("p1", "material", "steel") is None
    after = {(e.product_id, e.attribute, e.value, e.source, e.raw, e.score, e.run_id) for e in store.iter_triples()}
    assert after == before and store.reviews() == []


def test_undo_after_run_undo_does_not_resurrect_the_run(store: GraphStore) -> None:
    store.review(Review("p2", "color", "blue", "reject"))
    store.delete_run("run-1")
    store.undo_review("p2", "color", "blue")
    assert list(store.iter_triples(["model"])) == []


def test_catalog_value_is_right_clears_the_flag_for_good(store: GraphStore) -> None:
    done = store.review(Review("p1", "color", "blue", "keep", reviewer="ann"))
    assert done.catalog_value == "red"  # read from the suggestion's note
    assert triples(store, "p1", "color") == {("red", "catalog")}
    again = [proposal("p1", "color", "green", 0.9, "run-2", raw=FLAG), proposal("p1", "color", "blue", 0.9, "run-2", raw=FLAG)]
    assert store.write_predictions(RunInfo("run-2"), again) == 0


def test_use_the_suggestion_supersedes_the_catalog_value_even_after_a_rebuild(store: GraphStore) -> None:
    store.review(Review("p1", "color", "blue", "replace", reviewer="ann"))
    view = store.get_product("p1")
    assert [(e.value, e.source, e.raw) for e in view.edges if e.attribute == "color"] == [("blue", "reviewed", "Red")]
    store.upsert_products(PRODUCTS, CATALOG)  # the feed still says red: it stays superseded
    assert triples(store, "p1", "color") == {("blue", "reviewed")}
    store.upsert_products(PRODUCTS[:1], [edge("p1", "color", "navy")])  # a different value is news: kept beside
    assert triples(store, "p1", "color") == {("blue", "reviewed"), ("navy", "catalog")}
    assert {("color", "navy"), ("color", "blue")} <= set(store.snapshot().values)  # both are facts for training


def test_decisions_are_checked(store: GraphStore) -> None:
    store.review(Review("p1", "material", "steel", "accept"))
    with pytest.raises(ReviewExistsError, match="already decided"):
        store.review(Review("p1", "material", "steel", "reject"))
    with pytest.raises(ContractError, match="no product"):
        store.review(Review("ghost", "color", "red", "accept"))
    with pytest.raises(ContractError, match="unknown decision"):
        store.review(Review("p1", "color", "red", "maybe"))
    with pytest.raises(ContractError, match="suspect catalog value"):
        store.review(Review("p2", "color", "blue", "keep"))  # a plain proposal flags nothing
    assert len(store.reviews()) == 1 and store.reviews(["p2"]) == []


def test_a_person_may_accept_a_value_nobody_proposed(store: GraphStore) -> None:
    done = store.review(Review("p2", "size", "large", "accept", reviewer="cy"))
    assert (done.run_id, done.score) == (None, None)
    assert triples(store, "p2", "size") == {("large", "reviewed")}
    store.undo_review("p2", "size", "large")
    assert triples(store, "p2", "size") == set()
