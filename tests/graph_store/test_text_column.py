"""Texts held as one UTF-8 buffer read back exactly as the strings that went in."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graph_store import AttributeEdge, ProductNode, open_store
from graph_store import text_column
from graph_store.snapshot import build_snapshot
from graph_store.text_column import TextColumn

texts = st.lists(st.text(max_size=12), max_size=40)  # lone surrogates included: a list holds them, so must a column


@settings(max_examples=200, deadline=None)
@given(texts)
def test_a_column_reads_back_its_strings(strings: list[str]) -> None:
    column = TextColumn.of(strings)
    assert len(column) == len(strings) and list(column) == strings and column == strings
    assert [column[i] for i in range(-len(strings), len(strings))] == strings + strings
    assert column[1:7:2] == strings[1:7:2] and column[::-1] == strings[::-1]
    assert column.nonempty().tolist() == [bool(s) for s in strings]
    assert "".join(column.json_chunks()) == json.dumps(strings, ensure_ascii=False)


def test_a_lone_surrogate_reads_back_as_it_went_in() -> None:
    strings = ["a\ud800b", "\udfff", "ok"]
    assert list(TextColumn.of(strings)) == strings


def test_chunks_join_where_they_meet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_column, "CHUNK", 3)
    strings = ["é", "", "日本", "x" * 5, "😀", "", "\x00a", "z"]
    column = TextColumn.of(strings)
    assert list(column) == strings
    assert "".join(column.json_chunks()) == json.dumps(strings, ensure_ascii=False)


def test_out_of_range_and_equality() -> None:
    column = TextColumn.of(["a", "b"])
    with pytest.raises(IndexError):
        column[2]
    with pytest.raises(IndexError):
        column[-3]
    assert column == TextColumn.of(["a", "b"]) and column != ["a", "c"] and column != ["a"] and column != "ab"
    with pytest.raises(ValueError):
        TextColumn(b"abc", np.array([0, 2]))


def test_a_snapshot_hash_is_the_same_with_texts_as_lists() -> None:
    """The hash a checkpoint was saved with must not change with how the texts are held."""
    import dataclasses

    snapshot = build_snapshot([("b", "Bé", "", None, None), ("a", "A", "d 😀", None, None)], [], [("a", "c", "v", "catalog", None)])
    assert isinstance(snapshot.titles, TextColumn)
    as_lists = dataclasses.replace(snapshot, titles=list(snapshot.titles), descriptions=list(snapshot.descriptions))
    assert snapshot.content_hash() == as_lists.content_hash()
    assert snapshot.has_title().tolist() == as_lists.has_title().tolist() == [True, True]
    assert snapshot.has_description().tolist() == as_lists.has_description().tolist() == [True, False]


def test_the_embedded_store_orders_ids_as_python_does(tmp_path: Path) -> None:
    """The store reads products in its own id order (text compared as UTF-8 bytes): the same order
    as Python's, also past the basic plane, where UTF-16 order would differ."""
    ids = ["z", "Z", "é", "😀", "\ufb00", "a b", "a", "10", "9"]
    with open_store(str(tmp_path / "g.db"), create=True) as store:
        store.upsert_products([ProductNode(id=pid, title=f"title {pid}", description=pid * 2) for pid in ids],
                              [AttributeEdge(pid, "color", "red", "catalog") for pid in ids])
        snapshot = store.snapshot()
    assert snapshot.product_ids == sorted(ids)
    assert list(snapshot.titles) == [f"title {pid}" for pid in sorted(ids)]
    assert list(snapshot.descriptions) == [pid * 2 for pid in sorted(ids)]
    assert snapshot.edge_product.tolist() == list(range(len(ids)))
