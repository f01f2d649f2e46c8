"""Worker processes change nothing: the same store and the same report as a build in one process.

Each case builds a real file twice, with ``workers=1`` and with several workers, and compares
the whole report (every problem, in order) and everything stored. Tasks of three rows and
batches of four products put chunk and batch boundaries everywhere, including between two
rows of a duplicate id.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from graph_store import GraphStore, open_store
from kg_builder import build_graph, open_catalog, parallel
from kg_builder.pipeline import PartialBuildError
from kg_builder.readers import CatalogSource

pytestmark = pytest.mark.skipif(not parallel.can_fork(), reason="worker processes are forked")


@pytest.fixture(autouse=True)
def small_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "ROWS_PER_TASK", 3)


def stored(store: GraphStore) -> dict[str, Any]:
    triples = sorted(store.iter_triples(), key=repr)
    products = [store.get_product(pid) for pid in sorted({t.product_id for t in triples})]
    return {"stats": store.stats().as_dict(), "triples": triples, "products": [repr(p) for p in products]}


def build(tmp_path: Path, open_source: Any, workers: int, batch_size: int = 4) -> tuple[dict, dict]:
    path = tmp_path / f"store-{workers}.db"
    with open_store(str(path), create=True) as store:
        report = build_graph(open_source(), store, batch_size=batch_size, workers=workers).as_dict()
        for key in ("seconds", "triples_per_second", "store"):
            report.pop(key)
        return report, stored(store)


def assert_same(tmp_path: Path, open_source: Any, workers: tuple[int, ...] = (2, 3)) -> dict:
    one = build(tmp_path, open_source, 1)
    for count in workers:
        assert build(tmp_path, open_source, count) == one, f"workers={count} differs from workers=1"
    return one[0]


HOSTILE_ROWS = [
    {"id": "1", "title": "Red mug", "attributes": {"color": "Red", "material": "Ceramic"}},
    "{not json",
    {"title": "no id"},
    {"id": "2", "title": "Blue \u0000 mug", "attributes": {"color": "Blue"}},
    {"id": "3", "title": "Mug", "attributes": {"color": "!!!", "": "x", "size": {"bad": 1}}, "image": "missing.jpg"},
    {"id": "1", "title": "Red mug v2", "attributes": {"color": "Dark Red"}},
    {"id": "4", "title": "Green glass mug 300 ml in capacity", "category": "Kitchen > Mugs", "attributes": {"color": "Green"}},
    [1, 2],
    {"id": "5", "title": "Steel bottle, weight: 0.5 kg", "category": "Kitchen > Bottles", "attributes": {"material": "Steel"}},
    {"id": "4", "title": "Green glass mug 300 ml in capacity", "category": "Kitchen > Mugs", "attributes": {"color": "Green"}},
    {"id": "6", "title": "Ceramic red mug", "category": ["Kitchen", "Mugs"], "attributes": {"brand": "Acme"}, "price": 3.5},
    {"id": "7", "category": 5},
    {"id": "8", "title": "Plain", "attributes": {"Colour": "GREEN", "Material": "glass"}},
]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_with_rejected_rows_duplicates_and_warnings(tmp_path: Path) -> None:
    catalog = write_jsonl(tmp_path / "catalog.jsonl", HOSTILE_ROWS * 3)
    report = assert_same(tmp_path, lambda: open_catalog(catalog))
    assert report["rows_rejected"] > 0 and report["warnings"] > 0 and report["duplicates"] > 0
    assert report["triples_by_source"]["text"] > 0


def test_csv_with_malformed_rows(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        "id,title,category,color,material\n"
        "1,Red mug,Kitchen > Mugs,Red,Ceramic\n"
        "2,Blue mug,Kitchen > Mugs,Blue\n"  # too few columns: rejected
        ",No id,Kitchen,Red,Steel\n"
        '3,"A ""quoted"" mug, with comma",Kitchen > Mugs,Green,Glass\n'
        "4,Steel bottle weight: 800 g,Kitchen > Bottles,Silver,Steel\n"
        "3,Changed mug,Kitchen > Mugs,Green,Steel\n"
        '5,"multi\nline title",Kitchen,Red,Wood\n'
        "6,Red ceramic mug,Kitchen > Mugs,,\n",
        encoding="utf-8",
    )
    report = assert_same(tmp_path, lambda: open_catalog(catalog))
    assert report["rows_rejected"] == 2 and report["duplicates"] == 1


def test_truncated_gzip_reports_where_reading_stopped(tmp_path: Path) -> None:
    rows = "".join(
        json.dumps({"id": str(n), "title": f"Mug {n}", "description": f"{n * 7919 % 100003:x} " * 20, "attributes": {"color": "red"}})
        + "\n" for n in range(2000)
    )
    data = gzip.compress(rows.encode())
    catalog = tmp_path / "catalog.jsonl.gz"
    catalog.write_bytes(data[: len(data) * 3 // 4])  # the first 64 KiB, which opening checks, are intact
    report = assert_same(tmp_path, lambda: open_catalog(catalog), workers=(2,))
    assert report["rows_rejected"] == 1 and "reading stopped" in report["problems"][-1]["message"]
    assert 0 < report["products"] < 2000


def test_flipkart_sample_with_photos(tmp_path: Path, flipkart_csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "ROWS_PER_TASK", 100)
    report = assert_same(tmp_path, lambda: open_catalog(flipkart_csv, preset="flipkart"), workers=(2,))
    assert report["products"] == 1050 and report["images_ok"] == 1047


def test_a_reader_without_raw_rows_builds_in_one_process(tmp_path: Path) -> None:
    catalog = write_jsonl(tmp_path / "catalog.jsonl", HOSTILE_ROWS)
    opened = open_catalog(catalog)
    plain = lambda: CatalogSource(opened.path, "jsonl", open_catalog(catalog).rows, size=opened.size)  # noqa: E731
    assert build(tmp_path, plain, 2) == build(tmp_path, lambda: open_catalog(catalog), 1)


def test_a_rerun_with_workers_changes_nothing(tmp_path: Path) -> None:
    catalog = write_jsonl(tmp_path / "catalog.jsonl", HOSTILE_ROWS * 2)
    with open_store(str(tmp_path / "store.db"), create=True) as store:
        build_graph(open_catalog(catalog), store, batch_size=4, workers=1)
        first = stored(store)
        build_graph(open_catalog(catalog), store, batch_size=4, workers=2)
        assert stored(store) == first


def test_default_workers_stay_in_process_for_small_catalogs() -> None:
    assert parallel.default_workers(1000) == 1
    assert parallel.default_workers(1 << 30) >= 1


@pytest.mark.skipif(not parallel.can_fork(), reason="workers need fork")
def test_default_workers_count_the_cores_this_process_may_use() -> None:
    """Not os.cpu_count(): in a CPU-limited container that is the host's cores."""
    from graph_store.cpus import usable_cpus

    assert parallel.default_workers(1 << 30) == min(usable_cpus(), parallel.MAX_WORKERS)


def test_workers_must_be_positive(tmp_path: Path) -> None:
    catalog = write_jsonl(tmp_path / "catalog.jsonl", HOSTILE_ROWS)
    with open_store(str(tmp_path / "store.db"), create=True) as store, pytest.raises(ValueError, match="workers"):
        build_graph(open_catalog(catalog), store, workers=0)


def test_a_write_that_fails_leaves_exactly_the_batches_before_it(tmp_path: Path) -> None:
    """With workers the writes run in a background thread; a failed write (here: another
    connection holds SQLite's write lock) still stops the build with the exact count committed,
    those products are in the store, and a rerun completes the same graph as one process."""
    rows = [{"id": f"p{n:03d}", "title": f"Mug {n}", "attributes": {"color": ["red", "blue"][n % 2]}} for n in range(200)]
    catalog = write_jsonl(tmp_path / "catalog.jsonl", rows)
    path = tmp_path / "store.db"
    blocker = sqlite3.connect(path, isolation_level=None)
    with open_store(str(path), create=True) as store:
        store._conn.execute("PRAGMA busy_timeout = 200")  # fail fast instead of after 30 s
        calls: list[int] = []

        def progress(phase: str, done: int, total: int, rows_read: int) -> None:
            calls.append(rows_read)
            if len(calls) == 3:
                blocker.execute("PRAGMA busy_timeout = 30000")
                blocker.execute("BEGIN IMMEDIATE")  # waits for the write in flight, then holds the lock

        with pytest.raises(PartialBuildError) as info:
            build_graph(open_catalog(catalog), store, batch_size=20, workers=2, progress=progress)
        blocker.execute("ROLLBACK")
        assert info.value.committed in (40, 60)
        assert store.stats().products == info.value.committed
        build_graph(open_catalog(catalog), store, batch_size=20, workers=2)
        rerun = stored(store)
    blocker.close()
    assert rerun == build(tmp_path, lambda: open_catalog(catalog), 1)[1]
