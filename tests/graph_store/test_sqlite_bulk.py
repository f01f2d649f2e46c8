"""The embedded store's bulk load: the value index is deferred only into an empty store, and
is there after a build and after a failed build; a killed build's store reads without it, and
the next build (or a prune) creates it, never a mere open (it would hold the write lock)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from graph_store import AttributeEdge, ProductNode
from graph_store.sqlite_store import SQLiteStore
from graph_store.sqlite_bulk import (
    ROWS_PER_STATEMENT, VALUE_INDEX, VALUE_INDEX_DDL, create_value_index, has_value_index, insert_rows,
    value_index_deferred,
)
from graph_store.sqlite_schema import DDL
from kg_builder import build_graph, open_catalog
from kg_builder.synthetic import write_synthetic_catalog
from tests.cli.test_crash import products_in


def index_in(path: Path) -> bool:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return has_value_index(conn)


def catalog(path: Path, n: int = 30) -> Path:
    rows = [
        {"id": f"p{i}", "title": f"Acme {['red', 'blue'][i % 2]} mug {i}", "description": "A 12 oz mug.",
         "category": "Kitchen > Mugs",
         "attributes": {"brand": "Acme", "color": ["red", "blue"][i % 2], "size": f"{i % 3} l"}}
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_schema_statement_is_the_one_the_bulk_load_restores() -> None:
    assert VALUE_INDEX_DDL + ";" in DDL


def test_index_is_deferred_into_an_empty_store_and_back_after(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "g.db")
    with store.bulk_load() as deferred:
        assert deferred and not has_value_index(store._conn)
        store.upsert_products([ProductNode("a", "t")], [AttributeEdge("a", "color", "red")])
        assert store.attribute_vocabulary() == {"color": {"red"}}  # reads work without the index
    assert has_value_index(store._conn)
    with store.bulk_load() as deferred:  # a store with edges keeps its index up to date row by row
        assert not deferred and has_value_index(store._conn)
    store.close()


def test_a_failed_build_still_leaves_the_index(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "g.db")
    with pytest.raises(RuntimeError), store.bulk_load():
        store.upsert_products([ProductNode("a", "t")], [AttributeEdge("a", "color", "red")])
        raise RuntimeError("the build failed")
    assert has_value_index(store._conn)
    store.close()


def test_a_killed_build_leaves_a_readable_store_and_the_next_build_restores_the_index(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    build_graph(open_catalog(catalog(tmp_path / "c.jsonl")), SQLiteStore(path))
    with sqlite3.connect(path) as conn:  # what a build killed inside its bulk load leaves
        conn.execute(f"DROP INDEX {VALUE_INDEX}")
    read_only = SQLiteStore(path, create=False, read_only=True)
    assert not has_value_index(read_only._conn)
    assert read_only.attribute_vocabulary()["color"] == {"red", "blue"}
    without = read_only.stats()
    read_only.close()
    writable = SQLiteStore(path, create=False)
    assert not index_in(path) and writable.stats() == without and without.values == 6
    build_graph(open_catalog(tmp_path / "c.jsonl"), writable)  # the rerun
    assert index_in(path) and writable.stats() == without
    writable.close()


def test_prune_restores_the_index_it_needs(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "g.db")
    store.upsert_products([ProductNode("a", "t")], [AttributeEdge("a", "color", "red")])
    store._conn.execute(f"DROP INDEX {VALUE_INDEX}")
    assert store.prune_orphans() == 0 and has_value_index(store._conn)
    store.close()


def test_interrupt_leaves_the_index_to_the_next_open(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "g.db", isolation_level=None)
    conn.executescript(DDL)
    with pytest.raises(KeyboardInterrupt), value_index_deferred(conn):
        raise KeyboardInterrupt
    assert not has_value_index(conn)
    conn.close()


def dump(path: Path) -> dict[str, list]:
    """Every table by natural keys (row keys differ between builds), sorted."""
    queries = {
        "edges": "SELECT p.id, v.attribute, v.value, e.source, e.run_id, e.raw, e.score FROM edges e "
        "JOIN products p ON p.pk = e.product_pk JOIN value_nodes v ON v.pk = e.value_pk",
        "products": "SELECT p.id, p.title, p.description, c.path, p.image, p.image_status, p.properties "
        "FROM products p LEFT JOIN categories c ON c.pk = p.category_pk",
        "values": "SELECT attribute, value FROM value_nodes",
        "categories": "SELECT c.path, c.name, p.path FROM categories c LEFT JOIN categories p ON p.pk = c.parent_pk",
    }
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return {name: sorted(conn.execute(sql).fetchall(), key=repr) for name, sql in queries.items()}


def test_bulk_build_rebuild_and_row_by_row_build_store_the_same(tmp_path: Path) -> None:
    source = catalog(tmp_path / "c.jsonl")
    bulk, rebuilt, row_by_row = tmp_path / "bulk.db", tmp_path / "rebuilt.db", tmp_path / "rows.db"
    build_graph(open_catalog(source), SQLiteStore(bulk))
    for _ in range(2):
        build_graph(open_catalog(source), SQLiteStore(rebuilt))
    store = SQLiteStore(row_by_row)  # an edge written first: the build keeps the index row by row
    store.upsert_products([ProductNode("p0", "x")], [AttributeEdge("p0", "color", "green")])
    build_graph(open_catalog(source), store)
    assert dump(bulk) == dump(rebuilt) == dump(row_by_row)
    assert index_in(bulk) and index_in(rebuilt) and index_in(row_by_row)


def _build_into(source: Path, path: Path) -> None:
    build_graph(open_catalog(source), SQLiteStore(path), batch_size=500, workers=2)


def test_sigkill_during_the_bulk_load_leaves_a_readable_store_and_the_rerun_restores_the_index(tmp_path: Path) -> None:
    """A real build killed while the index is dropped: every committed batch is there and readable,
    read-only and writable, and the rerun brings the index back."""
    source, path = write_synthetic_catalog(tmp_path / "big.jsonl", 40_000, seed=5), tmp_path / "g.db"
    child = multiprocessing.get_context("fork").Process(target=_build_into, args=(source, path))
    child.start()
    for _ in range(2400):  # two minutes at most
        if products_in(path) >= 2_000 or not child.is_alive():
            break
        time.sleep(0.05)
    assert child.is_alive(), "the build finished before it could be killed; use a bigger catalog"
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert not index_in(path)
    read_only = SQLiteStore(path, create=False, read_only=True)
    partial = read_only.stats()
    assert partial.products % 500 == 0 and partial.products > 0 and partial.values > 0
    read_only.close()
    with SQLiteStore(path, create=False) as store:
        assert store.stats() == partial and not index_in(path)
        build_graph(open_catalog(source), store, workers=1, extract_text=False)
        assert index_in(path) and store.stats().products == 40_000
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize("count", [0, 1, ROWS_PER_STATEMENT - 1, ROWS_PER_STATEMENT, 2 * ROWS_PER_STATEMENT + 3])
def test_insert_rows_is_executemany_of_one_row(count: int) -> None:
    """Same rows, same order, same conflicts (a repeated key inside and across statements) as
    one statement a row, for the edge insert (first row wins) and the product upsert (last wins)."""
    rows = [(i % 7, f"raw {i}") for i in range(count)]
    results = []
    for many in (False, True):
        conn = sqlite3.connect(":memory:", isolation_level=None)
        conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
        conn.execute("CREATE TABLE u (n INTEGER PRIMARY KEY, k INTEGER UNIQUE, v TEXT)")
        upsert = "ON CONFLICT(k) DO UPDATE SET v=excluded.v"
        if many:
            insert_rows(conn, "INSERT OR IGNORE INTO t(k, v)", iter(rows), 2)
            insert_rows(conn, "INSERT INTO u(k, v)", rows, 2, upsert)
        else:
            conn.executemany("INSERT OR IGNORE INTO t(k, v) VALUES (?, ?)", rows)
            conn.executemany(f"INSERT INTO u(k, v) VALUES (?, ?) {upsert}", rows)
        results.append([conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in "tu"])
    assert results[0] == results[1]


def test_the_index_sorted_on_several_threads_is_the_same_and_the_connection_keeps_its_settings() -> None:
    """create_value_index raises the sorter's threads and uses disk temporaries for the sort only."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript(DDL)
    conn.execute(f"DROP INDEX {VALUE_INDEX}")
    conn.executemany("INSERT INTO edges(product_pk, value_pk, source) VALUES (?, ?, 0)",
                     [(p, (p * 7919) % 503) for p in range(20_000)])
    conn.execute("PRAGMA threads = 0")
    conn.execute("PRAGMA temp_store = MEMORY")
    create_value_index(conn)
    assert conn.execute("PRAGMA threads").fetchone()[0] == 0
    assert conn.execute("PRAGMA temp_store").fetchone()[0] == 2  # MEMORY
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    by_index = conn.execute(f"SELECT value_pk, product_pk FROM edges INDEXED BY {VALUE_INDEX} WHERE value_pk < 3").fetchall()
    assert by_index == sorted(conn.execute("SELECT value_pk, product_pk FROM edges NOT INDEXED WHERE value_pk < 3").fetchall())
