"""Snapshot assembly: ordering, de-duplication by trust, hashing and the .npz round trip."""

from __future__ import annotations

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
