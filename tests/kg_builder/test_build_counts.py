"""The build report's value count taken from the scope counts when no id repeats, from the rows
that won when one does (a losing row's value is in the store only if another row has it)."""

from __future__ import annotations

import json
from pathlib import Path

from graph_store import GraphStore
from kg_builder import build_graph, open_catalog


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def stored_values(store: GraphStore) -> set[tuple[str, str]]:
    return {(e.attribute, e.value) for e in store.iter_triples(sources=["catalog"])}


def test_values_counted_without_duplicates_are_those_stored(tmp_path: Path, empty_store: GraphStore) -> None:
    rows = [{"id": str(i), "title": f"mug {i}", "category": ["Kitchen", "Garden"][i % 2],
             "attributes": {"color": ["red", "blue", "green"][i % 3], "size": str(i % 4)}} for i in range(12)]
    report = build_graph(open_catalog(jsonl(tmp_path / "c.jsonl", rows)), empty_store, extract_text=False)
    assert report.duplicates == 0 and report.values == stored_values(empty_store) and len(report.values) == 7
    assert report.attributes == {"color", "size"}


def test_a_losing_duplicate_row_value_is_not_counted(tmp_path: Path, empty_store: GraphStore) -> None:
    rows = [
        {"id": "1", "title": "first", "category": "Kitchen", "attributes": {"color": "red", "material": "oak"}},
        {"id": "2", "title": "other", "category": "Kitchen", "attributes": {"color": "blue"}},
        {"id": "1", "title": "second", "category": "Kitchen", "attributes": {"color": "blue"}},
    ]
    report = build_graph(open_catalog(jsonl(tmp_path / "c.jsonl", rows)), empty_store, extract_text=False, batch_size=1)
    assert report.duplicates == 1
    assert report.values == stored_values(empty_store) == {("color", "blue")} and report.attributes == {"color"}
