"""Stores made before reviews existed (schema version 1) are migrated when opened writable and
read as they are when opened read-only."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from graph_store import AttributeEdge, ProductNode, Review, StoreError, open_store


def _version_1_store(path: Path) -> None:
    """A store as kgmm wrote it before reviews: no ``reviews`` table, schema version 1."""
    with open_store(str(path), create=True) as store:
        store.upsert_products([ProductNode("p1", "mug")], [AttributeEdge("p1", "color", "red")])
    conn = sqlite3.connect(path)
    conn.executescript("DROP TABLE reviews; UPDATE meta SET value = '1' WHERE key = 'schema_version';")
    conn.close()


def test_a_version_1_store_is_migrated_when_opened_writable(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _version_1_store(path)
    with open_store(str(path), read_only=True) as store:  # read-only: read as it is, nothing written
        assert store.reviews() == [] and store.get_product("p1") is not None
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("1",)
    conn.close()
    with open_store(str(path)) as store:
        store.review(Review("p1", "size", "large", "accept", reviewer="ann"))
        assert [r.value for r in store.reviews()] == ["large"]
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("2",)
    conn.close()


def test_a_store_from_a_newer_kgmm_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with open_store(str(path), create=True):
        pass
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '9' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema version 9"):
        open_store(str(path))
