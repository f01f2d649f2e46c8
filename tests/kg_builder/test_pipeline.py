"""build_graph end to end on real and synthetic catalogs: counts, idempotence, updates."""

from __future__ import annotations

import json
from pathlib import Path

from graph_store import GraphStore
from kg_builder import build_graph, open_catalog
from kg_builder.records.normalize import normalize_attribute, normalize_value


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_every_catalog_value_becomes_a_triple(example_catalog: Path, empty_store: GraphStore) -> None:
    report = build_graph(open_catalog(example_catalog), empty_store)
    expected = set()
    for line in example_catalog.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        for name, value in row.get("attributes", {}).items():
            for item in value if isinstance(value, list) else [value]:
                expected.add((row["id"], normalize_attribute(name), normalize_value(str(item))))
    stored = {(e.product_id, e.attribute, e.value) for e in empty_store.iter_triples(sources=["catalog"])}
    assert stored == expected
    assert report.triples_by_source["catalog"] == len(expected)
    assert report.products == empty_store.stats().products == 126


def test_flipkart_preset_loads_all_products_with_photos(flipkart_csv: Path, empty_store: GraphStore) -> None:
    report = build_graph(open_catalog(flipkart_csv, preset="flipkart"), empty_store)
    stats = empty_store.stats()
    assert report.products == stats.products == 1050 and report.rows_rejected == 0
    assert stats.products_with_image == 1047 and stats.images_missing == 3
    assert stats.top_categories[0][1] == 150 and len(stats.top_categories) == 7
    assert report.triples_by_source["text"] > 0
    # brand column and Brand specification are one attribute, and one value when they agree
    view = empty_store.get_product("55b85ea15a1536d46b7190ad6fff8ce7")
    assert [e.value for e in view.edges if e.attribute == "brand"] == ["elegance"]
    assert view.product.image.endswith("55b85ea15a1536d46b7190ad6fff8ce7.jpg")


def test_rebuilding_is_idempotent(example_catalog: Path, empty_store: GraphStore) -> None:
    build_graph(open_catalog(example_catalog), empty_store)
    first = empty_store.stats().as_dict()
    snapshot = empty_store.snapshot().content_hash()
    build_graph(open_catalog(example_catalog), empty_store)
    assert empty_store.stats().as_dict() == first
    assert empty_store.snapshot().content_hash() == snapshot


def test_second_catalog_updates_overlapping_ids_and_adds_the_rest(tmp_path: Path, empty_store: GraphStore) -> None:
    build_graph(open_catalog(jsonl(tmp_path / "a.jsonl", [
        {"id": "1", "title": "Red mug", "attributes": {"color": "Red"}},
        {"id": "2", "title": "Blue mug", "attributes": {"color": "Blue"}},
    ])), empty_store)
    build_graph(open_catalog(jsonl(tmp_path / "b.jsonl", [
        {"id": "2", "title": "Green mug", "attributes": {"color": "Green"}},
        {"id": "3", "title": "Plate", "attributes": {"material": "Steel"}},
    ])), empty_store)
    colors = {e.product_id: e.value for e in empty_store.products_with_attribute("color", sources=["catalog"])}
    assert colors == {"1": "red", "2": "green"}
    assert empty_store.get_product("2").product.title == "Green mug"
    assert empty_store.stats().products == 3
    assert ("color", "blue") not in empty_store.snapshot().values  # orphaned values are pruned


def test_duplicate_ids_last_row_wins_and_is_reported(tmp_path: Path, empty_store: GraphStore) -> None:
    path = jsonl(tmp_path / "c.jsonl", [
        {"id": "1", "title": "first", "attributes": {"color": "red"}},
        {"id": "1", "title": "second", "attributes": {"color": "blue"}},
        {"id": "2", "title": "same"},
        {"id": "2", "title": "same"},
    ])
    report = build_graph(open_catalog(path), empty_store, batch_size=10)
    view = empty_store.get_product("1")
    assert view.product.title == "second" and [e.value for e in view.edges] == ["blue"]
    assert report.duplicates == 2 and report.products == 2
    messages = [p.message for p in report.problems if p.field == "id"]
    assert "different values; this row wins over line 1" in messages[0] and "identical" in messages[1]
    assert report.triples_by_source["catalog"] == 1


def test_text_extraction_fills_gaps_with_source_text(tmp_path: Path, empty_store: GraphStore) -> None:
    rows = [{"id": str(i), "title": f"Steel mug {i}", "category": "Kitchen", "attributes": {"material": "Steel"}} for i in range(3)]
    rows.append({"id": "x", "title": "Steel bottle, 750 ml capacity, 24 cm in height", "category": "Kitchen"})
    build_graph(open_catalog(jsonl(tmp_path / "c.jsonl", rows)), empty_store)
    view = empty_store.get_product("x")
    assert {(e.attribute, e.value, e.source) for e in view.edges} == {
        ("material", "steel", "text"),
        ("capacity", "750 ml", "text"),
        ("height", "24 cm", "text"),
    }
