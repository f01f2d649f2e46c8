"""The embedded store and the files it is pointed at: someone else's SQLite file is refused
untouched, a store on read-only media can still be read, and every sqlite3 error arrives as a
StoreError with one line for a person. Each test is named after the input it feeds.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from graph_store import (
    AttributeEdge,
    ForeignStoreError,
    ProductNode,
    StoreError,
    StoreReadOnlyError,
    StoreUnavailableError,
    open_store,
)
from tests.cli.helpers import ROOT, kgmm


def make_store(path: Path) -> Path:
    with open_store(str(path), create=True) as store:
        store.upsert_products(
            [ProductNode("p1", "Red mug", category=("Home", "Kitchen"))], [AttributeEdge("p1", "color", "red", "catalog")]
        )
    return path


def foreign_shop_db(path: Path) -> Path:
    """An application's own SQLite database with a ``products`` table (issue 13, item 7)."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE products (sku TEXT PRIMARY KEY, price REAL)")
    conn.execute("INSERT INTO products VALUES ('A-1', 9.5)")
    conn.commit()
    conn.close()
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_shop_db_with_its_own_products_table_is_refused_untouched(tmp_path: Path) -> None:
    shop = foreign_shop_db(tmp_path / "shop.db")
    before = digest(shop)
    result = kgmm("build-kg", "examples/catalog.jsonl", "--store", str(shop))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "is an SQLite database but not a kgmm store" in result.stderr and "products" in result.stderr
    assert digest(shop) == before and sorted(p.name for p in tmp_path.iterdir()) == ["shop.db"]
    tables = [r[0] for r in sqlite3.connect(shop).execute("SELECT name FROM sqlite_master WHERE type='table'")]
    assert tables == ["products"]  # no kgmm table added
    with pytest.raises(ForeignStoreError):
        open_store(str(shop))  # reading is refused the same way


def test_text_file_named_store_db_is_refused_untouched(tmp_path: Path) -> None:
    notes = tmp_path / "store.db"
    notes.write_text("not a database\n", encoding="utf-8")
    result = kgmm("stats", "--store", str(notes))
    assert result.returncode == 1 and "is not a readable kgmm store" in result.stderr
    assert notes.read_text(encoding="utf-8") == "not a database\n"


def test_directory_given_as_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        open_store(str(tmp_path), create=True)


def test_empty_store_option_is_refused_instead_of_becoming_kgmm_db(tmp_path: Path) -> None:
    for command in (["stats"], ["build-kg", str(ROOT / "examples" / "catalog.jsonl")], ["pretrain"], ["runs"]):
        result = kgmm(*command, "--store", "", cwd=tmp_path)
        assert result.returncode == 1 and "the store is empty" in result.stderr, (command, result.stderr)
    assert list(tmp_path.iterdir()) == []


def test_store_opened_read_only_reads_and_refuses_writes(tmp_path: Path) -> None:
    path = make_store(tmp_path / "g.db")
    with open_store(str(path), read_only=True) as store:
        assert store.get_product("p1") is not None and store.stats().products == 1
        with pytest.raises(StoreReadOnlyError, match="read-only"):
            store.upsert_products([ProductNode("p2", "Blue mug")])
        with pytest.raises(StoreReadOnlyError):
            store.prune_orphans()


def _read_only_mount(source: Path, target: Path, command: str) -> subprocess.CompletedProcess | None:
    """Run ``command`` with ``source`` mounted read-only at ``target`` (a user and mount
    namespace, so root is refused writes too, as on real read-only media); None when the
    system does not allow such namespaces."""
    if shutil.which("unshare") is None:
        return None
    script = f"mount --bind '{source}' '{target}' && mount -o remount,bind,ro '{target}' && {command}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    env.pop("KGMM_STORE", None)
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    if result.returncode != 0 and "mount" in result.stderr and "kgmm" not in result.stderr:
        return None
    return result


def test_store_on_read_only_media_can_still_be_read_by_stats_and_query(tmp_path: Path) -> None:
    source, media = tmp_path / "disc", tmp_path / "media"
    source.mkdir()
    media.mkdir()
    make_store(source / "shop.db")
    assert sorted(p.name for p in source.iterdir()) == ["shop.db"]  # no -wal/-shm for SQLite to reuse
    python = f"'{sys.executable}' -m cli.main"
    store = media / "shop.db"
    result = _read_only_mount(
        source, media,
        f"{python} stats --store '{store}' --format json && {python} query product p1 --store '{store}' --format json"
        f" && {python} build-kg examples/catalog.jsonl --store '{store}' -q; echo build-exit=$?",
    )
    if result is None:
        if os.geteuid() == 0:
            pytest.skip("no user namespaces here to mount read-only media, and root writes any file")
        source.chmod(0o500)  # the folder and the file read-only for this user instead
        (source / "shop.db").chmod(0o400)
        try:
            stats = kgmm("stats", "--store", str(source / "shop.db"), "--format", "json")
            shown = kgmm("query", "product", "p1", "--store", str(source / "shop.db"))
            assert stats.returncode == 0 and '"products": 1' in stats.stdout, stats.stderr
            assert shown.returncode == 0 and "Red mug" in shown.stdout, shown.stderr
        finally:
            source.chmod(0o700)
        return
    assert '"products": 1' in result.stdout and '"title": "Red mug"' in result.stdout, result.stderr
    assert "build-exit=1" in result.stdout and "read-only" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in source.iterdir()) == ["shop.db"]


def test_store_locked_by_another_writer_raises_store_unavailable(tmp_path: Path) -> None:
    path = make_store(tmp_path / "g.db")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    try:
        with open_store(str(path)) as store:
            store._conn.execute("PRAGMA busy_timeout = 50")  # not 30 s in a test
            with pytest.raises(StoreUnavailableError, match="locked by another process"):
                store.upsert_products([ProductNode("p2", "Blue mug")])
            assert store.stats().products == 1  # the store stays usable
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_closed_store_raises_store_error_not_sqlite3_error(tmp_path: Path) -> None:
    store = open_store(str(make_store(tmp_path / "g.db")))
    store.close()
    for call in (lambda: store.stats(), lambda: list(store.iter_triples()), lambda: store.prune_orphans()):
        with pytest.raises(StoreError, match="closed"):
            call()
