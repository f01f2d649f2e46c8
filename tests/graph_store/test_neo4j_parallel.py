"""Batches written by several transactions at once (graph_store.neo4j_parallel) against a real server:
the same graph as one transaction per batch, and a batch that fails part way says how much of it
was committed, never leaves half a product, and is completed by rerunning the same build."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("neo4j")

from graph_store import AttributeEdge, GraphStore, ProductNode, StoreError, open_store  # noqa: E402
from graph_store import neo4j_writes  # noqa: E402
from graph_store.neo4j_parallel import partly_committed  # noqa: E402
from graph_store.errors import StoreUnavailableError  # noqa: E402
from graph_store.neo4j_store import clear_graph  # noqa: E402
from kg_builder import build_graph, open_catalog  # noqa: E402
from kg_builder.pipeline import PartialBuildError  # noqa: E402
from kg_builder.synthetic import write_synthetic_catalog  # noqa: E402

from tests.graph_store.test_neo4j_backend import DUPLICATES, assert_same_snapshot, same_vocabulary_order  # noqa: E402


def batch(first: int, count: int, colour: str) -> tuple[list[ProductNode], list[AttributeEdge]]:
    """``count`` products from ``p{first}``, every one sharing values with the others."""
    products = [ProductNode(f"p{n:04d}", f"Mug {n}", category=("Home", f"Shelf {n % 7}")) for n in range(first, first + count)]
    edges = [e for p in products for e in (
        AttributeEdge(p.id, "color", f"{colour} {int(p.id[1:]) % 5}", raw=colour.title()),
        AttributeEdge(p.id, "size", str(int(p.id[1:]) % 3)),
        AttributeEdge(p.id, "serial", p.id.upper()),  # a value of its own: new in every batch
    )]
    return products, edges


def write_catalog(store: GraphStore) -> None:
    """Two batches that overlap (the later rows of p0150..p0199 win), a duplicate id inside a
    batch, text edges, then a changed rebuild of the first batch."""
    products, edges = batch(0, 200, "red")
    store.upsert_products(products, edges)
    products, edges = batch(150, 200, "blue")
    products.append(ProductNode("p0160", "Mug 160, last row", category=("Toys",)))
    edges = [e for e in edges if e.product_id != "p0160"] + [AttributeEdge("p0160", "color", "green")]
    store.upsert_products(products, edges)
    ids = [f"p{n:04d}" for n in range(0, 350)]
    store.replace_edges(ids, "text", [AttributeEdge(pid, "material", "steel", "text", "Steel") for pid in ids[::3]])
    products, edges = batch(0, 100, "grey")
    store.upsert_products(products, edges)


def sliced(target, threads: int):
    return target.open(write_threads=threads, min_slice=40)


@pytest.mark.neo4j
def test_sliced_batches_write_the_graph_of_one_transaction_per_batch(neo4j_target, tmp_path: Path) -> None:
    with open_store(str(tmp_path / "same.db"), create=True) as sqlite:
        write_catalog(sqlite)
        expected = sqlite.snapshot().content_hash()
        triples, products, stats = list(sqlite.iter_triples()), list(sqlite.iter_products()), sqlite.stats().as_dict()
    for threads in (1, 4):
        with sliced(neo4j_target, threads) as store:
            clear_graph(store)
            write_catalog(store)
            assert store.snapshot().content_hash() == expected, threads
            assert list(store.iter_triples()) == triples and list(store.iter_products()) == products
            assert store.stats().as_dict() == stats
            with store._driver.session() as session:
                assert {k: session.run(q).single()[0] for k, q in DUPLICATES.items()} == dict.fromkeys(DUPLICATES, 0)


class Refuse:
    """Wraps neo4j_writes.upsert_products so that the slice holding ``pid`` fails (not retried)."""

    def __init__(self, pid: str) -> None:
        self.pid, self.write = pid, neo4j_writes.upsert_products

    def __call__(self, tx, products, edges, batch_rows, **options):
        if options.get("categories_written") and any(p.id == self.pid for p in products):
            raise StoreError(f"refused the slice of {self.pid}")
        return self.write(tx, products, edges, batch_rows, **options)


@pytest.mark.neo4j
def test_a_failed_slice_says_what_the_others_committed_and_leaves_no_half_product(neo4j_target, monkeypatch) -> None:
    products, edges = batch(0, 200, "red")
    with sliced(neo4j_target, 4) as store:
        clear_graph(store)
        monkeypatch.setattr(neo4j_writes, "upsert_products", Refuse("p0120"))
        with pytest.raises(StoreError) as info:
            store.upsert_products(products, edges)
        message = str(info.value)
        assert message.startswith("refused the slice of p0120; ")
        assert "150 of this batch's 200 products were committed, each whole with its edges, by 3 of its 4 transactions" in message
        assert "the other 50 were not; rerunning the same write completes it" in message
        committed = {p.id for p in store.iter_products()}
        assert committed == {f"p{n:04d}" for n in range(200)} - {f"p{n:04d}" for n in range(100, 150)}
        assert {e.product_id for e in store.iter_triples()} == committed  # every committed product has its edges
        assert all(len(store.get_product(pid).edges) == 3 for pid in committed)
        monkeypatch.undo()
        store.upsert_products(products, edges)  # the same write again completes it
        assert store.stats().products == 200 and store.stats().triples == 600


@pytest.mark.neo4j
def test_build_failing_in_one_slice_reports_it_and_a_rerun_completes(neo4j_target, tmp_path: Path, monkeypatch) -> None:
    catalog = write_synthetic_catalog(tmp_path / "catalog.jsonl", 1_200, seed=3)
    with sliced(neo4j_target, 4) as store:
        clear_graph(store)
        ids = [p.id for p in open_catalog(catalog).rows()][:1_200]
        monkeypatch.setattr(neo4j_writes, "upsert_products", Refuse(ids[700]))  # in the second batch
        with pytest.raises(PartialBuildError) as info:
            build_graph(open_catalog(catalog), store, batch_size=400, workers=1)
        message = str(info.value)
        assert "the first 400 products (of 800 rows read) were committed" in message
        assert "300 of this batch's 400 products were committed, each whole with its edges" in message
        assert store.stats().products == 700
        monkeypatch.undo()
        same_vocabulary_order(monkeypatch, store)
        report = build_graph(open_catalog(catalog), store, batch_size=400, workers=1)
        assert report.products == store.stats().products == 1_200
        with store._driver.session() as session:
            assert {k: session.run(q).single()[0] for k, q in DUPLICATES.items()} == dict.fromkeys(DUPLICATES, 0)
        with open_store(str(tmp_path / "same.db"), create=True) as sqlite:
            same_vocabulary_order(monkeypatch, sqlite)
            build_graph(open_catalog(catalog), sqlite, batch_size=400, workers=1)
            assert_same_snapshot(sqlite, store)


def test_partly_committed_keeps_the_error_class_and_says_nothing_when_nothing_committed() -> None:
    lost = StoreUnavailableError("lost Neo4j at bolt://h:1 while writing products (gone); rerun when the server is back")
    partial = partly_committed(lost, 2_500, 10_000, 3, 4)
    assert type(partial) is StoreUnavailableError and partial.__cause__ is lost
    assert str(partial) == (
        f"{lost}; 2,500 of this batch's 10,000 products were committed, each whole with its edges, by 1 of its 4 "
        "transactions; the other 7,500 were not; rerunning the same write completes it"
    )
    assert partly_committed(lost, 0, 10_000, 4, 4) is lost
    bug = KeyError("x")
    assert partly_committed(bug, 5, 10, 1, 2) is bug
