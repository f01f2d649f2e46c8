"""Graphs written before session 10 stay correct under the current code.

Until then every HAS edge carried ``attribute`` (its Value node's) and ``run_id`` (``''`` on
catalog, text and reviewed edges); the current code writes neither on those edges, and
``attribute`` on none (docs/NEO4J.md, "The graph"). Existing databases keep the old edges, so
every read, the rebuild's in-place updates, predictions (which must not shadow facts), reviews
and deleting a run must give on such a graph what they give on the embedded store, without ever
writing a second copy of an old edge. The old graph is made here the way the old code left it:
the current writes, then the two properties added to every HAS edge.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("neo4j")

from graph_store import AttributeEdge, GraphStore, ProductNode, RunInfo, open_store  # noqa: E402
from graph_store.models import Review  # noqa: E402

from tests.graph_store.test_neo4j_backend import DUPLICATES, assert_same_snapshot  # noqa: E402

OLD_EDGES = "MATCH (:Product)-[h:HAS]->(v:Value) SET h.attribute = v.attribute, h.run_id = coalesce(h.run_id, '')"
IDS = [f"p{n}" for n in range(6)]


def catalog(colours: dict[str, str], raw: str) -> tuple[list[ProductNode], list[AttributeEdge]]:
    products = [ProductNode(pid, f"Mug {pid}", category=("Home", "Mugs")) for pid in IDS]
    edges = [AttributeEdge(pid, "color", colours.get(pid, "blue"), raw=raw) for pid in IDS]
    edges += [AttributeEdge(pid, "size", "l") for pid in IDS[::2]]
    return products, edges


def first_writes(store: GraphStore) -> None:
    store.upsert_products(*catalog({"p1": "red", "p3": "red"}, "Blue"))
    store.replace_edges(IDS, "text", [AttributeEdge("p0", "material", "steel", "text", "Steel"),
                                      AttributeEdge("p2", "material", "glass", "text")])
    store.write_predictions(RunInfo("r1", "m1", "2026-01-01T00:00:00+00:00"), [
        AttributeEdge("p0", "material", "steel", "model", None, 0.9, "r1"),  # a text fact: skipped
        AttributeEdge("p1", "material", "glass", "model", "Glass", 0.7, "r1"),
        AttributeEdge("p4", "size", "xl", "model", None, 0.4, "r1"),
    ])
    store.review(Review("p3", "color", "green", "replace", reviewer="ann", decided_at="2026-01-02", catalog_value="red"))
    store.review(Review("p4", "size", "xl", "accept", reviewer="ann", decided_at="2026-01-02"))


def second_writes(store: GraphStore) -> None:
    # a rebuild: p1's colour changes (stale edge out, new one in), every raw spelling changes (kept
    # edges updated in place), p3's replaced catalog value comes back and is dropped again
    store.upsert_products(*catalog({"p1": "grey", "p3": "red"}, "BLUE"))
    store.replace_edges(IDS, "text", [AttributeEdge("p0", "material", "steel", "text", "steel"),
                                      AttributeEdge("p5", "material", "wood", "text")])
    store.write_predictions(RunInfo("r2", "m1", "2026-01-03T00:00:00+00:00"), [
        AttributeEdge("p1", "material", "glass", "model", None, 0.6, "r2"),
        AttributeEdge("p5", "material", "wood", "model", None, 0.8, "r2"),  # a text fact now: skipped
        AttributeEdge("p3", "color", "green", "model", None, 0.8, "r2"),  # a reviewed fact: skipped
    ])
    store.undo_review("p4", "size", "xl")  # the proposal of r1 comes back
    store.delete_run("r1")


def reads(store: GraphStore) -> dict:
    return {
        "triples": list(store.iter_triples(sources=("catalog", "text", "model", "reviewed"))),
        "products": [store.get_product(pid) for pid in IDS],
        "missing material": store.products_missing_attribute("material"),
        "missing color (catalog)": store.products_missing_attribute("color", ["catalog"]),
        "color": store.products_with_attribute("color"),
        "material (model)": store.products_with_attribute("material", sources=["model"]),
        "vocabulary": store.attribute_vocabulary(("catalog", "text")),
        "stats": store.stats().as_dict(),
        "runs": store.list_runs(),
        "reviews": [(r.key, r.decision, r.run_id, r.catalog_value) for r in store.reviews()],
    }


@pytest.mark.neo4j
def test_a_graph_with_old_edges_reads_and_updates_like_the_embedded_store(neo4j_store: GraphStore, tmp_path: Path) -> None:
    with open_store(str(tmp_path / "legacy.db"), create=True) as sqlite, neo4j_store._driver.session() as session:
        first_writes(sqlite)
        first_writes(neo4j_store)
        assert reads(neo4j_store) == reads(sqlite)  # written by the current code
        old = session.run(OLD_EDGES + " RETURN count(h)").single()[0]
        assert old == sum(sqlite.stats().as_dict()["edges_by_source"].values())
        assert reads(neo4j_store) == reads(sqlite)  # the same graph as the old code left it
        assert_same_snapshot(sqlite, neo4j_store)

        second_writes(sqlite)
        second_writes(neo4j_store)
        assert reads(neo4j_store) == reads(sqlite)
        assert_same_snapshot(sqlite, neo4j_store)
        assert {k: session.run(q).single()[0] for k, q in DUPLICATES.items()} == dict.fromkeys(DUPLICATES, 0)
        # kept edges are the old ones, updated in place; edges written since have neither property
        rows = session.run("MATCH (p:Product)-[h:HAS]->(v:Value) RETURN p.id, v.value, h.source, "
                           "h.attribute IS NOT NULL, h.run_id").values()
        kept = {(pid, value, source): (has_attribute, run) for pid, value, source, has_attribute, run in rows}
        assert kept[("p0", "blue", "catalog")] == (True, "") and kept[("p0", "steel", "text")] == (True, "")
        assert kept[("p1", "grey", "catalog")] == (False, None) and kept[("p5", "wood", "text")] == (False, None)
        assert kept[("p1", "glass", "model")] == (False, "r2")
