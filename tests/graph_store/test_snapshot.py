"""Snapshot assembly: ordering, de-duplication by trust, hashing and the .npz round trip."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from graph_store.snapshot import Snapshot, build_snapshot


def _snapshot() -> Snapshot:
    products = [("b", "B", "", None, "X > Y"), ("a", "A", "desc", "/img/a.jpg", None)]
    edges = [
        ("b", "color", "red", "model", 0.4),
        ("b", "color", "red", "text", None),  # text beats model for the same pair
        ("a", "size", "xl", "model", 0.9),
        ("a", "size", "xl", "model", 0.3),  # the higher score of one source wins
        ("a", "color", "blue", "catalog", None),
    ]
    return build_snapshot(products, ["X > Y"], edges)


def test_build_snapshot_orders_and_deduplicates() -> None:
    snap = _snapshot()
    assert snap.product_ids == ["a", "b"]
    assert snap.categories == ["X", "X > Y"]
    assert snap.product_category.tolist() == [-1, 1]
    assert snap.values == [("color", "blue"), ("color", "red"), ("size", "xl")]
    assert list(zip(snap.edge_product.tolist(), snap.edge_value.tolist())) == [(0, 0), (0, 2), (1, 1)]
    assert snap.edge_source.tolist() == [0, 2, 1]
    assert np.allclose(snap.edge_score, [1.0, 0.9, 1.0])
    assert snap.has_image().tolist() == [True, False]
    assert snap.has_description().tolist() == [True, False]


def test_hash_is_stable_and_sensitive() -> None:
    assert _snapshot().content_hash() == _snapshot().content_hash()
    other = build_snapshot([("a", "A", "", None, None)], [], [])
    assert other.content_hash() != _snapshot().content_hash()
    assert other.num_edges == 0 and other.edge_product.dtype == np.int64


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    snap = _snapshot()
    snap.save(tmp_path / "snap.npz")
    loaded = Snapshot.load(tmp_path / "snap.npz")
    assert loaded.content_hash() == snap.content_hash()
    assert loaded.values == snap.values and loaded.images == snap.images


def _with_behaviour() -> Snapshot:
    products = [("b", "B", "", None, "X > Y"), ("a", "A", "desc", "/img/a.jpg", None), ("c", "", "", None, None)]
    edges = [("a", "color", "blue", "catalog", None)]
    behaviour = [("c", "a", "co_view", 3.0), ("b", "a", "same_query", 0.5), ("a", "b", "co_view", 1.0)]
    return build_snapshot(products, ["X > Y"], edges, behaviour)


def test_behaviour_arrays_are_sorted_with_src_below_dst() -> None:
    snap = _with_behaviour()
    assert snap.behaviour_kinds == ["co_view", "same_query"]
    assert list(zip(snap.behaviour_src.tolist(), snap.behaviour_dst.tolist(), snap.behaviour_kind.tolist())) == [
        (0, 1, 0), (0, 1, 1), (0, 2, 0)
    ]
    assert snap.behaviour_weight.tolist() == [1.0, 0.5, 3.0] and snap.behaviour_weight.dtype == np.float32
    assert snap.num_behaviour_edges == 3


def test_hash_without_behaviour_is_unchanged() -> None:
    # The hash of a graph without behaviour edges must not move: checkpoints store it (value from
    # the code before behaviour edges existed).
    snap = _snapshot()
    assert snap.behaviour_src.shape == (0,) and snap.behaviour_weight.dtype == np.float32
    assert snap.content_hash() == "48f7cada539a13460a394fff80697d954e2b8a904f7d884de6c42a793c067341"
    with_behaviour = build_snapshot(
        [("b", "B", "", None, "X > Y"), ("a", "A", "desc", "/img/a.jpg", None)],
        ["X > Y"],
        [("b", "color", "red", "model", 0.4), ("b", "color", "red", "text", None), ("a", "size", "xl", "model", 0.9),
         ("a", "size", "xl", "model", 0.3), ("a", "color", "blue", "catalog", None)],
        [("a", "b", "co_view", 1.0)],
    )
    assert with_behaviour.content_hash() != snap.content_hash()
    reweighted = _with_behaviour()
    assert reweighted.content_hash() == _with_behaviour().content_hash()
    changed = dataclasses.replace(reweighted, behaviour_weight=reweighted.behaviour_weight * 2)
    assert changed.content_hash() != reweighted.content_hash()


def test_behaviour_save_and_load_round_trip(tmp_path: Path) -> None:
    snap = _with_behaviour()
    snap.save(tmp_path / "snap.npz")
    loaded = Snapshot.load(tmp_path / "snap.npz")
    assert loaded.content_hash() == snap.content_hash()
    assert loaded.behaviour_kinds == snap.behaviour_kinds
    for name in ("behaviour_src", "behaviour_dst", "behaviour_kind", "behaviour_weight"):
        assert np.array_equal(getattr(loaded, name), getattr(snap, name)) and getattr(loaded, name).dtype == getattr(snap, name).dtype


def test_snapshot_files_from_before_behaviour_still_load(tmp_path: Path) -> None:
    snap = _snapshot()
    lists = {name: list(getattr(snap, name)) for name in ("product_ids", "attributes", "values", "categories", "titles", "descriptions", "images")}
    arrays = {name: getattr(snap, name) for name in ("value_attribute", "category_parent", "product_category", "edge_product",
                                                     "edge_attribute", "edge_value", "edge_source", "edge_score")}
    with open(tmp_path / "old.npz", "wb") as handle:  # the layout written before behaviour edges existed
        np.savez(handle, _lists=np.frombuffer(json.dumps(lists).encode(), dtype=np.uint8), **arrays)
    loaded = Snapshot.load(tmp_path / "old.npz")
    assert loaded.num_behaviour_edges == 0 and loaded.content_hash() == snap.content_hash()


def test_an_sqlite_edge_whose_product_or_value_is_gone_is_not_read(tmp_path: Path) -> None:
    """The embedded store reads its edges as packed integer keys; an edge naming a product or a
    value the store no longer has (a hand-edited or damaged file) must be skipped, as a join of
    named rows skips it, never decoded into another product's fact."""
    import sqlite3

    from graph_store import AttributeEdge, ProductNode, open_store

    path = tmp_path / "g.db"
    with open_store(str(path), create=True) as store:
        store.upsert_products([ProductNode(id="p1", title="a"), ProductNode(id="p2", title="b")],
                              [AttributeEdge("p1", "color", "red", "catalog"), AttributeEdge("p2", "color", "blue", "catalog")])
        before = store.snapshot()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("INSERT INTO edges (product_pk, value_pk, source, run_id) VALUES (1, 99999, 0, ''), (99999, 1, 0, '')")
    conn.commit()
    conn.close()
    with open_store(str(path)) as store:
        after = store.snapshot()
    assert after.content_hash() == before.content_hash() and after.num_edges == 2


def test_edge_order_is_the_four_key_lexsort_with_and_without_scores() -> None:
    from graph_store.snapshot import _edge_order

    rng = np.random.default_rng(3)
    n, values = 5000, 40
    product = np.sort(rng.integers(0, 300, n))  # nearly in product order, as a store returns them
    product[rng.integers(0, n, 50)] = rng.integers(0, 300, 50)
    value, source = rng.integers(0, values, n), rng.integers(0, 4, n).astype(np.int8)
    for score in (np.ones(n, np.float32), rng.choice([0.2, 0.7, 1.0], n).astype(np.float32)):
        expected = np.lexsort((-score, source, value, product))
        assert np.array_equal(_edge_order(product, value, source, score, values), expected)
    empty = np.zeros(0, np.int64)
    assert _edge_order(empty, empty, empty.astype(np.int8), empty.astype(np.float32), 0).size == 0


def test_used_values_are_numpy_unique_with_inverse() -> None:
    from graph_store.sqlite_snapshot import _used

    positions = np.random.default_rng(4).integers(0, 100, 2000) * 3 % 250
    used, inverse = _used(positions, 250)
    expected_used, expected_inverse = np.unique(positions, return_inverse=True)
    assert np.array_equal(used, expected_used) and np.array_equal(inverse, expected_inverse.reshape(-1))
    assert [a.size for a in _used(np.zeros(0, np.int64), 0)] == [0, 0]
