"""`kgmm query`, `stats` and `export` agree with the store, and exports round-trip."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

from tests.cli.helpers import kgmm

from graph_store import AttributeEdge, RunInfo, open_store

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = "64d5d4a258243731dc7bbb1eef49ad74"  # Eurospa towel set: catalog and text values


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("q") / "g.db"
    assert kgmm("build-kg", "examples/catalog.jsonl", "--store", str(store), "-q").returncode == 0
    with open_store(str(store)) as graph:
        assert {e.source for e in graph.get_product(PRODUCT).edges} == {"catalog", "text"}
        graph.write_predictions(RunInfo("run-1", "test"), [AttributeEdge(PRODUCT, "occasion", "bath", "model", score=0.75, run_id="run-1")])
    return store


def assert_same_graph_but_image_folder(original: Path, copy: Path) -> None:
    """Same snapshot, images included by name: a rebuilt copy finds them in its own folder."""
    with open_store(str(original)) as first_store, open_store(str(copy)) as second_store:
        first, second = first_store.snapshot(), second_store.snapshot()
    assert [Path(p).name if p else p for p in first.images] == [Path(p).name if p else p for p in second.images]
    assert dataclasses.replace(second, images=first.images).content_hash() == first.content_hash()


def test_query_product_formats(built: Path) -> None:
    data = json.loads(kgmm("query", "product", PRODUCT, "--store", str(built), "--format", "json").stdout)
    sources = {a["source"] for a in data["attributes"]}
    assert data["title"] == "Eurospa Cotton Terry Face Towel Set" and sources == {"catalog", "text", "model"}
    with open_store(str(built)) as graph:
        assert len(data["attributes"]) == len(graph.get_product(PRODUCT).edges)
    rows = list(csv.DictReader(io.StringIO(kgmm("query", "product", PRODUCT, "--store", str(built), "--format", "csv").stdout)))
    assert len(rows) == len(data["attributes"]) and {"attribute", "value", "source", "score"} <= set(rows[0])
    table = kgmm("query", "product", PRODUCT, "--store", str(built)).stdout
    assert "Eurospa Cotton Terry Face Towel Set" in table and "0.750" in table
    missing = kgmm("query", "product", "nope", "--store", str(built))
    assert missing.returncode == 1 and "no product 'nope'" in missing.stderr


def test_query_attribute_value_missing_and_predictions(built: Path) -> None:
    run = lambda *a: json.loads(kgmm("query", "attribute", *a, "--store", str(built), "--format", "json").stdout)  # noqa: E731
    brands = run("Brand")
    with open_store(str(built)) as graph:
        assert len(brands) == len(graph.products_with_attribute("brand"))
        assert len(run("occasion", "--missing")) == len(graph.products_missing_attribute("occasion"))
    assert {r["product_id"] for r in run("brand", "--value", "EUROSPA ")} == {PRODUCT}
    assert [r["source"] for r in run("occasion", "--value", "bath")] == ["model"]
    assert run("occasion", "--value", "bath", "--no-predicted") == []
    assert run("occasion", "--value", "bath", "--min-score", "0.9") == []


def test_export_jsonl_round_trips_through_build_kg(built: Path, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples" / "images", tmp_path / "images")  # image paths are relative to the catalog
    exported = tmp_path / "export.jsonl"
    assert kgmm("export", "--format", "jsonl", "--out", str(exported), "--store", str(built)).returncode == 0
    line = json.loads(exported.read_text().splitlines()[0])
    assert {"id", "title", "attributes"} <= set(line)
    predicted = [json.loads(x).get("predicted") for x in exported.read_text().splitlines() if PRODUCT in x]
    assert predicted[0][0]["score"] == 0.75
    again = tmp_path / "again.db"
    assert kgmm("build-kg", str(exported), "--store", str(again), "-q").returncode == 0
    assert_same_graph_but_image_folder(built, again)
    assert str(ROOT) not in exported.read_text()  # no folder of the building machine


def test_export_rdf_round_trips_and_graphml_parses(built: Path, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples" / "images", tmp_path / "images")  # image paths are relative to the catalog
    for fmt in ("ttl", "nt"):
        out = tmp_path / f"export.{fmt}"
        assert kgmm("export", "--format", fmt, "--out", str(out), "--store", str(built)).returncode == 0
        copy = tmp_path / f"{fmt}.db"
        result = kgmm("build-kg", str(out), "--store", str(copy), "-q")
        assert result.returncode == 0, result.stderr
        assert_same_graph_but_image_folder(built, copy)
        assert "file://" not in out.read_text() and str(ROOT) not in out.read_text()
    graphml = tmp_path / "g.graphml"
    assert kgmm("export", "--format", "graphml", "--out", str(graphml), "--store", str(built)).returncode == 0
    graph = nx.read_graphml(graphml)
    kinds = nx.get_node_attributes(graph, "kind")
    assert sum(1 for k in kinds.values() if k == "Product") == 126
    with open_store(str(built)) as store:
        assert sum(1 for *_, d in graph.edges(data=True) if d.get("type") == "HAS") == store.stats().triples


def test_export_csv_has_one_row_per_triple(built: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(kgmm("export", "--format", "csv", "--store", str(built)).stdout)))
    with open_store(str(built)) as store:
        assert len(rows) == store.stats().triples
    assert {r["source"] for r in rows} == {"catalog", "text", "model"}


def test_export_piped_into_head_ends_quietly(built: Path) -> None:
    """`kgmm export | head -1`: the reader leaves early; no BrokenPipeError, no traceback."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "export", "--format", "nt", "--store", str(built)],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout.readline()
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 0 and "BrokenPipe" not in stderr and "Traceback" not in stderr, stderr
