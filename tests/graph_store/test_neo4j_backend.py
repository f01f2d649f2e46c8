"""The Neo4j backend against a real Neo4j 5.26 server: equal to the embedded store on real data,
idempotent, and clear about every failure (no server, wrong password, server killed mid-build).

The contract suite (test_contract.py) already runs on both backends; this module covers what is
Neo4j's own. Servers come from conftest (``neo4j_target``), except the one this module kills.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

pytest.importorskip("neo4j")

from graph_store import GraphStore, StoreError, StoreUnavailableError, open_store  # noqa: E402
from graph_store.neo4j_store import Neo4jStore  # noqa: E402
from kg_builder import build_graph, open_catalog  # noqa: E402
from kg_builder.pipeline import PartialBuildError  # noqa: E402
from kg_builder.records.normalize import normalize_attribute, normalize_value  # noqa: E402
from kg_builder.synthetic import write_synthetic_catalog  # noqa: E402

from tests.cli.helpers import ROOT, kgmm  # noqa: E402
from tests.neo4j_server import Neo4jServer, free_port  # noqa: E402

DUPLICATES = {
    "Product": "MATCH (p:Product) WITH p.id AS key, count(*) AS n WHERE n > 1 RETURN count(*)",
    "Value": "MATCH (v:Value) WITH v.attribute AS a, v.value AS b, count(*) AS n WHERE n > 1 RETURN count(*)",
    "Category": "MATCH (c:Category) WITH c.path AS key, count(*) AS n WHERE n > 1 RETURN count(*)",
    "Run": "MATCH (r:Run) WITH r.run_id AS key, count(*) AS n WHERE n > 1 RETURN count(*)",
    "HAS": "MATCH (p:Product)-[h:HAS]->(v:Value) WITH p, v, h.source AS s, coalesce(h.run_id, '') AS r, count(*) AS n "
    "WHERE n > 1 RETURN count(*)",
    "IN_CATEGORY": "MATCH (p:Product)-[r:IN_CATEGORY]->() WITH p, count(r) AS n WHERE n > 1 RETURN count(*)",
    "CHILD_OF": "MATCH (c:Category)-[r:CHILD_OF]->() WITH c, count(r) AS n WHERE n > 1 RETURN count(*)",
}


def graph_counts(driver) -> dict[str, int]:
    """Nodes by label and relationships by type, build reports left out."""
    nodes, _, _ = driver.execute_query("MATCH (n) WHERE NOT n:Build RETURN labels(n)[0] AS label, count(*) AS n")
    rels, _, _ = driver.execute_query("MATCH ()-[r]->() RETURN type(r) AS type, count(*) AS n")
    return {**{r["label"]: r["n"] for r in nodes}, **{r["type"]: r["n"] for r in rels}}


def duplicates(driver) -> dict[str, int]:
    return {what: driver.execute_query(query).records[0][0] for what, query in DUPLICATES.items()}


@pytest.fixture
def driver(neo4j_target) -> Iterator:
    import neo4j

    with neo4j.GraphDatabase.driver(neo4j_target.uri, auth=(neo4j_target.user, neo4j_target.password)) as drv:
        yield drv


def same_vocabulary_order(monkeypatch: pytest.MonkeyPatch, *stores: GraphStore) -> None:
    """Hand every store's build the vocabulary in one canonical insertion order.

    kg_builder's TextExtractor depends on the iteration order of the vocabulary's sets when two
    known values share their tokens ("100% cotton" under two attributes): the SQLite store alone
    gives 1,496 or 1,504 text triples for the Flipkart sample depending on PYTHONHASHSEED. Until
    TextExtractor sorts its input, this keeps the comparison about the stores, not about set order.
    """
    for store in stores:
        read = store.attribute_vocabulary

        def canonical(sources=("catalog",), read=read) -> dict[str, set[str]]:
            # insertion order decides a set's iteration order when hashes collide
            return {a: set(sorted(values)) for a, values in sorted(read(sources).items())}  # noqa: C414

        monkeypatch.setattr(store, "attribute_vocabulary", canonical)


def assert_same_snapshot(a: GraphStore, b: GraphStore) -> None:
    left, right = a.snapshot(), b.snapshot()
    for name in ("product_ids", "attributes", "values", "categories", "titles", "descriptions", "images"):
        assert getattr(left, name) == getattr(right, name), name
    for name in ("value_attribute", "category_parent", "product_category", "edge_product", "edge_attribute",
                 "edge_value", "edge_source", "edge_score"):
        assert np.array_equal(getattr(left, name), getattr(right, name)), name
    assert left.content_hash() == right.content_hash()


# -- equal to the embedded store, idempotent ---------------------------------------------------------


@pytest.mark.neo4j
def test_flipkart_graph_equals_the_embedded_one(flipkart_csv: Path, neo4j_store: GraphStore, tmp_path: Path, monkeypatch) -> None:
    with open_store(str(tmp_path / "flipkart.db"), create=True) as sqlite:
        same_vocabulary_order(monkeypatch, sqlite, neo4j_store)
        expected = build_graph(open_catalog(flipkart_csv, preset="flipkart"), sqlite)
        report = build_graph(open_catalog(flipkart_csv, preset="flipkart"), neo4j_store)
        assert (report.products, report.triples) == (expected.products, expected.triples) == (1050, expected.triples)
        assert_same_snapshot(sqlite, neo4j_store)
        assert neo4j_store.stats().as_dict() == sqlite.stats().as_dict()
        assert list(neo4j_store.iter_triples()) == list(sqlite.iter_triples())
        assert list(neo4j_store.iter_products()) == list(sqlite.iter_products())
        assert neo4j_store.attribute_vocabulary(("catalog", "text")) == sqlite.attribute_vocabulary(("catalog", "text"))
        assert neo4j_store.products_with_attribute("brand") == sqlite.products_with_attribute("brand")
        assert neo4j_store.products_missing_attribute("color") == sqlite.products_missing_attribute("color")
        for pid in ("55b85ea15a1536d46b7190ad6fff8ce7", sqlite.snapshot().product_ids[-1]):
            assert neo4j_store.get_product(pid) == sqlite.get_product(pid)
        assert neo4j_store.last_build()["triples"] == report.triples


@pytest.mark.neo4j
def test_rebuild_keeps_counts_and_creates_no_duplicates(flipkart_csv: Path, neo4j_store: GraphStore, driver, monkeypatch) -> None:
    same_vocabulary_order(monkeypatch, neo4j_store)
    build_graph(open_catalog(flipkart_csv, preset="flipkart"), neo4j_store)
    counts, stats, digest = graph_counts(driver), neo4j_store.stats().as_dict(), neo4j_store.snapshot().content_hash()
    assert counts["Product"] == 1050 and counts["HAS"] == stats["triples"]
    build_graph(open_catalog(flipkart_csv, preset="flipkart"), neo4j_store, batch_size=300)
    assert graph_counts(driver) == counts
    assert neo4j_store.stats().as_dict() == stats
    assert neo4j_store.snapshot().content_hash() == digest
    assert duplicates(driver) == dict.fromkeys(DUPLICATES, 0)


@pytest.mark.neo4j
def test_updated_catalog_equals_the_embedded_one(neo4j_store: GraphStore, driver, tmp_path: Path) -> None:
    """The second build keeps some edges (a new raw spelling updates them in place), drops
    stale ones and creates new ones; the result must be what the embedded store holds."""
    first = [{"id": f"p{n}", "title": f"Mug {n}", "attributes": {"color": "Red", "material": "Steel", "size": str(n % 3)}}
             for n in range(30)]
    second = [{"id": f"p{n}", "title": f"Mug {n}", "attributes": {"color": "RED " if n % 2 else "Blue", "weight": "0.5 kg"}}
              for n in range(0, 40, 2)]
    catalogs = []
    for name, rows in (("first", first), ("second", second)):
        catalogs.append(tmp_path / f"{name}.jsonl")
        catalogs[-1].write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with open_store(str(tmp_path / "updated.db"), create=True) as sqlite:
        for catalog in catalogs:
            build_graph(open_catalog(catalog), sqlite, batch_size=7)
            build_graph(open_catalog(catalog), neo4j_store, batch_size=7)
        assert list(neo4j_store.iter_triples()) == list(sqlite.iter_triples())
        assert_same_snapshot(sqlite, neo4j_store)
    assert duplicates(driver) == dict.fromkeys(DUPLICATES, 0)


# -- connecting: no server, wrong password, secrets ------------------------------------------------------


def one_line_error(result) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_no_server_is_one_clear_line(tmp_path: Path) -> None:
    uri = f"bolt://127.0.0.1:{free_port()}"
    line = one_line_error(kgmm("stats", "--store", uri))
    assert uri in line and "cannot reach Neo4j" in line
    catalog = str(ROOT / "examples" / "catalog.jsonl")
    line = one_line_error(kgmm("build-kg", catalog, "--store", uri, "--report", str(tmp_path / "r.json"), "-q", cwd=tmp_path))
    assert uri in line
    assert not (tmp_path / "r.json").exists()
    line = one_line_error(kgmm("query", "product", "x", "--store", "neo4j://no-such-host.invalid:7687"))
    assert "neo4j://no-such-host.invalid:7687" in line and "cannot reach Neo4j" in line


def test_constructor_makes_no_network_call() -> None:
    uri = f"bolt://127.0.0.1:{free_port()}"
    store = Neo4jStore(uri, user="someone", password="s3cret-word", database="db1")
    try:
        assert repr(store) == str(store) == f"Neo4jStore(uri='{uri}', user='someone', database='db1')"
        with pytest.raises(StoreUnavailableError, match="cannot reach Neo4j"):
            store.connect()
    finally:
        store.close()


def test_credentials_in_the_uri_are_refused_without_showing_them() -> None:
    uri = f"bolt://neo4j:s3cret-word@127.0.0.1:{free_port()}"
    with pytest.raises(StoreError) as info:
        open_store(uri)
    assert "s3cret-word" not in str(info.value) and "--password" in str(info.value)


@pytest.mark.neo4j
def test_wrong_password_is_one_line_and_never_echoed(neo4j_target, tmp_path: Path) -> None:
    wrong = "hunter2-is-not-it"
    for args, env in (
        (["--password", wrong], {}),
        ([], {"NEO4J_PASSWORD": wrong}),
    ):
        result = kgmm("stats", "--store", neo4j_target.uri, *args, env=env, cwd=tmp_path)
        line = one_line_error(result)
        assert "refused the credentials of user 'neo4j'" in line and neo4j_target.uri in line
        assert wrong not in result.stdout + result.stderr
        assert neo4j_target.password not in result.stdout + result.stderr
    line = one_line_error(kgmm("stats", "--store", neo4j_target.uri, env={"NEO4J_PASSWORD": ""}, cwd=tmp_path))
    assert "no password given" in line


@pytest.mark.neo4j
def test_credentials_come_from_the_environment(neo4j_target, neo4j_store: GraphStore, monkeypatch) -> None:
    for name, value in neo4j_target.env().items():
        monkeypatch.setenv(name, value)
    with open_store(neo4j_target.uri) as store:
        assert store.stats().products == 0
    monkeypatch.setenv("NEO4J_DATABASE", "no-such-db")
    with pytest.raises(Exception, match="has no database 'no-such-db'"):
        open_store(neo4j_target.uri)


@pytest.mark.neo4j
def test_password_never_reaches_repr_or_logs(neo4j_target, neo4j_store: GraphStore, caplog, example_catalog: Path) -> None:
    caplog.set_level(logging.DEBUG)
    with neo4j_target.open() as store:
        build_graph(open_catalog(example_catalog), store)
        store.get_product("64d5d4a258243731dc7bbb1eef49ad74")
        text = repr(store) + str(store)
    with pytest.raises(StoreUnavailableError) as info:
        open_store(neo4j_target.uri, user=neo4j_target.user, password="other-" + neo4j_target.password)
    assert caplog.records, "the driver logs at DEBUG; this test must see those lines"
    for secret in (neo4j_target.password, "other-" + neo4j_target.password):
        assert secret not in caplog.text and secret not in text and secret not in str(info.value)


# -- a server that dies in the middle of a build -----------------------------------------------------


@pytest.mark.neo4j
@pytest.mark.slow
def test_server_killed_mid_build_then_rerun_completes(neo4j_target, tmp_path: Path, monkeypatch) -> None:
    """SIGKILL the server while a build writes; the build fails with one line; after a restart
    the rerun completes, with the same graph as the embedded store and no duplicates."""
    catalog = write_synthetic_catalog(tmp_path / "catalog.jsonl", 3_000, seed=7)
    server = Neo4jServer(password="kill-test-pw")  # not the shared server: this one dies
    server.start()
    try:
        store = open_store(server.uri, user=server.user, password=server.password, max_retry_time=3.0)
        flushed: list[int] = []
        killer = threading.Thread(target=lambda: (time.sleep(0.05), server.kill()))

        def progress(phase: str, done: int, total: int, rows: int) -> None:
            flushed.append(rows)
            if len(flushed) == 3:  # three batches are committed; kill while the next one is written
                killer.start()

        with pytest.raises(PartialBuildError) as info:  # the store's error, plus what was committed
            build_graph(open_catalog(catalog), store, batch_size=200, progress=progress)
        killer.join()
        store.close()
        assert isinstance(info.value.__cause__, StoreUnavailableError)
        message = str(info.value)
        assert "\n" not in message and server.uri in message and server.password not in message
        assert "lost Neo4j" in message or "cannot reach Neo4j" in message

        server.restart()
        with open_store(server.uri, user=server.user, password=server.password) as store:
            same_vocabulary_order(monkeypatch, store)
            survived = store.stats().products
            assert 600 <= survived < 3_000  # committed batches are there, the rest is not
            report = build_graph(open_catalog(catalog), store, batch_size=200)
            assert report.products == store.stats().products == 3_000
            with server.driver() as drv:
                assert duplicates(drv) == dict.fromkeys(DUPLICATES, 0)
            with open_store(str(tmp_path / "same.db"), create=True) as sqlite:
                same_vocabulary_order(monkeypatch, sqlite)
                build_graph(open_catalog(catalog), sqlite, batch_size=200)
                assert_same_snapshot(sqlite, store)
    finally:
        server.stop()


# -- hostile strings through the command line ------------------------------------------------------------


@pytest.mark.neo4j
def test_cypher_syntax_in_ids_and_values_is_stored_verbatim_via_cli(neo4j_target, neo4j_store, driver, tmp_path: Path) -> None:
    nasty = "x'}) MATCH (n) DETACH DELETE n // `Value` {id: $rows} \"\\ ;"
    rows = [
        {"id": nasty, "title": nasty, "description": nasty, "category": nasty, "attributes": {nasty: nasty, "color": nasty}},
        {"id": "keep-me", "title": "Plain mug", "category": "Kitchen", "attributes": {"color": "Red"}},
    ]
    catalog = tmp_path / "nasty.jsonl"
    catalog.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    env = neo4j_target.env()
    built = kgmm("build-kg", str(catalog), "--store", neo4j_target.uri, "--report", str(tmp_path / "r.json"), "-q", env=env, cwd=tmp_path)
    assert built.returncode in (0, 3), built.stderr
    shown = kgmm("query", "product", nasty, "--store", neo4j_target.uri, "--format", "json", env=env, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    product = json.loads(shown.stdout)
    assert (product["id"], product["title"], product["description"], product["category"]) == (nasty,) * 4
    attributes = {(a["attribute"], a["value"], a["raw"]) for a in product["attributes"]}
    assert (normalize_attribute(nasty), normalize_value(nasty), nasty) in attributes
    assert ("color", normalize_value(nasty), nasty) in attributes
    kept = json.loads(kgmm("query", "product", "keep-me", "--store", neo4j_target.uri, "--format", "json", env=env).stdout)
    assert [(a["attribute"], a["value"]) for a in kept["attributes"]] == [("color", "red")]
    assert graph_counts(driver)["Product"] == 2 and duplicates(driver) == dict.fromkeys(DUPLICATES, 0)
    exported = kgmm("export", "--format", "jsonl", "--store", neo4j_target.uri, env=env, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert sorted(json.loads(line)["id"] for line in exported.stdout.splitlines()) == sorted(["keep-me", nasty])
    stats = kgmm("stats", "--store", neo4j_target.uri, "--format", "json", env=env, cwd=tmp_path)
    assert json.loads(stats.stdout)["products"] == 2
