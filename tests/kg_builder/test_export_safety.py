"""Every export of a catalog full of control characters, quotes and formula-like cells parses,
and the RDF keeps kgmm's predictions and notes away from the schema.org facts."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import networkx as nx
import pytest
import rdflib
from PIL import Image

from graph_store import AttributeEdge, RunInfo, open_store
from kg_builder import build_graph, open_catalog
from kg_builder.export import export

SCHEMA = rdflib.Namespace("https://schema.org/")
NASTY = {
    "id": "p=1",
    "title": "Bell\x07 ESC\x1b[2J VT\x0b \"quoted\" <tag> & 'apos' \\ back",
    "description": 'line\nbreak\ttab """triple""" \x1b]0;title\x07',
    "category": "Home > Odd\x1b",
    "image": "images/p.jpg",
    "attributes": {"brand": "=HYPERLINK(\"http://x\")", "note": "@SUM(1)", "plus": "+1 555", "shape": "oval",
                   "temp": "-20 °C", "vt": "a\x0bb", "quote": 'say "hi"'},
}


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("nasty")
    (folder / "images").mkdir()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(folder / "images" / "p.jpg")
    rows = [NASTY, {"id": "-2", "title": "+cmd|' /C calc'!A0", "attributes": {"weight": "5-10 kg"}}]
    (folder / "nasty.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path = folder / "g.db"
    with open_store(str(path), create=True) as store:
        build_graph(open_catalog(folder / "nasty.jsonl"), store)
        store.write_predictions(RunInfo("run-x", "test"), [
            AttributeEdge("p=1", "shape", "round", "model", "suspect catalog value 'oval' (p=0.038)", 0.9, "run-x"),
            AttributeEdge("-2", "color", "=red", "model", None, 0.7, "run-x"),
        ])
    return path


def exported(store_path: Path, fmt: str) -> Path:
    out = store_path.parent / f"export.{fmt}"
    with open_store(str(store_path)) as store:
        export(store, fmt, str(out))
    return out


@pytest.mark.parametrize("fmt", ["ttl", "nt"])
def test_control_characters_and_quotes_export_as_parseable_rdf(store_path: Path, fmt: str) -> None:
    graph = rdflib.Graph().parse(exported(store_path, fmt), format="turtle" if fmt == "ttl" else "nt")
    names = {str(o) for o in graph.objects(None, SCHEMA.name)}
    assert NASTY["title"] in names


def test_control_characters_export_as_graphml_that_networkx_reads_back(store_path: Path) -> None:
    graph = nx.read_graphml(exported(store_path, "graphml"))
    titles = [d["title"] for _, d in graph.nodes(data=True) if d.get("kind") == "Product"]
    assert "Bell\\x07 ESC\\x1b[2J VT\\x0b \"quoted\" <tag> & 'apos' \\ back" in titles


def test_formula_like_cells_are_neutralised_in_csv(store_path: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(exported(store_path, "csv").read_text(encoding="utf-8"))))
    cells = [c for row in rows for c in row.values()]
    assert not [c for c in cells if c[:1] in ("=", "@", "+") or (c.startswith("-") and not c.lstrip("-").replace(".", "").isdigit())]
    assert "'=HYPERLINK(\"http://x\")" in cells and "'@SUM(1)" in cells and "'-20 °C" in cells and "-2" in cells


def test_jsonl_export_parses_and_names_images_relative_to_the_catalog(store_path: Path) -> None:
    records = [json.loads(line) for line in exported(store_path, "jsonl").read_text(encoding="utf-8").splitlines()]
    assert {r["id"]: r.get("image") for r in records} == {"-2": None, "p=1": "images/p.jpg"}


def test_rdf_export_is_usable_by_a_schema_org_consumer(store_path: Path) -> None:
    graph = rdflib.Graph().parse(exported(store_path, "ttl"), format="turtle")
    values = {str(o) for o in graph.objects(None, SCHEMA.value)}
    assert not any("suspect" in v for v in values)  # notes are kgmm:note, never schema:value
    assert "round" not in values and "=red" not in values  # predictions only under kgmm terms
    assert {str(graph.value(b, SCHEMA.name)) for b in graph.objects(None, SCHEMA.brand)} == {NASTY["attributes"]["brand"]}
    assert [str(i) for i in graph.objects(None, SCHEMA.image)] == ["images/p.jpg"]
    assert "file://" not in exported(store_path, "nt").read_text(encoding="utf-8")
    kgmm = rdflib.Namespace("https://kgmm.dev/ns#")
    notes = {str(o) for o in graph.objects(None, kgmm.note)}
    assert notes == {"suspect catalog value 'oval' (p=0.038)"}
