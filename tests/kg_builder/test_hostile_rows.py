"""Hostile rows: each becomes a rejected row with file, line and field while the rest loads.

The inputs are the reproductions of issue 13, fed through the real readers, the real
pipeline and a real embedded store.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from graph_store import open_store
from kg_builder import CatalogError, build_graph, open_catalog


def build(path: Path, tmp_path: Path, store_name: str = "g.db", **options: object):
    with open_store(str(tmp_path / store_name), create=True) as store:
        report = build_graph(open_catalog(path), store, **options)
        ids = {p.id for p in store.iter_products()}
    return report, ids


def write_jsonl(path: Path, *rows: object) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def rejected(report) -> dict[object, str]:
    return {p.line: p.field for p in report.problems if p.severity == "rejected"}


def test_nul_in_id_and_value_rejects_those_rows_only(tmp_path: Path) -> None:
    catalog = write_jsonl(tmp_path / "nul.jsonl", {"id": "a\u0000b", "title": "x"}, {"id": "ok", "title": "y"},
                          {"id": "v", "title": "z", "attributes": {"color": "re\u0000d"}})
    report, ids = build(catalog, tmp_path, batch_size=1)
    assert ids == {"ok"} and rejected(report) == {1: "id", 3: "attributes.color"}


def test_lone_surrogate_in_title_and_value_rejects_those_rows_only(tmp_path: Path) -> None:
    catalog = write_jsonl(tmp_path / "surrogate.jsonl", '{"id": "t", "title": "bad \\ud800"}',
                          '{"id": "v", "title": "x", "attributes": {"size": "\\udfff"}}', {"id": "ok", "title": "fine"})
    report, ids = build(catalog, tmp_path)
    assert ids == {"ok"} and rejected(report) == {1: "title", 2: "attributes.size"}


def test_json_nested_100000_deep_is_one_rejected_row(tmp_path: Path) -> None:
    catalog = write_jsonl(tmp_path / "deep.jsonl", "[" * 100_000, '{"id": "x", "p": ' + "[" * 50 + "]" * 50 + "}",
                          {"id": "ok", "title": "y"})
    report, ids = build(catalog, tmp_path)
    assert ids == {"ok"} and rejected(report) == {1: "json", 2: "p"}


def test_image_that_is_a_symlink_loop_keeps_the_product(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").symlink_to(tmp_path / "b.jpg")
    (tmp_path / "b.jpg").symlink_to(tmp_path / "a.jpg")
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.jpg")
    catalog = write_jsonl(tmp_path / "loop.jsonl", {"id": "l", "title": "x", "image": "a.jpg"},
                          {"id": "o", "title": "y", "image": "ok.jpg"})
    report, ids = build(catalog, tmp_path)
    assert ids == {"l", "o"} and report.images_ok == 1 and report.image_reasons == {"symlink loop": 1}


def test_image_path_outside_the_catalog_is_not_loaded(tmp_path: Path) -> None:
    catalog = write_jsonl(tmp_path / "etc.jsonl", {"id": "s", "title": "x", "image": "/etc/shadow"},
                          {"id": "u", "title": "x", "image": "file:///etc/passwd"})
    report, _ = build(catalog, tmp_path)
    assert report.image_reasons == {"outside the catalog folder": 2}


def test_empty_attribute_name_warning_blames_the_name(tmp_path: Path) -> None:
    catalog = write_jsonl(tmp_path / "name.jsonl", {"id": "n", "title": "x", "attributes": {"...": "blue"}})
    report, ids = build(catalog, tmp_path)
    assert ids == {"n"} and "attribute name '...' is empty" in report.problems[0].message


def test_negative_temperature_is_loaded_negative(tmp_path: Path) -> None:
    catalog = write_jsonl(tmp_path / "temp.jsonl", {"id": "t", "title": "x", "attributes": {"temp": "-20 °C", "w": "5-10 kg"}})
    build(catalog, tmp_path)
    with open_store(str(tmp_path / "g.db")) as store:
        assert {(e.attribute, e.value) for e in store.get_product("t").edges} == {("temp", "-20 °c"), ("w", "5000-10000 g")}


def test_gzip_jsonl_and_csv_are_read_transparently(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "c.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": "g", "title": "x"}) + "\n")
    assert build(tmp_path / "c.jsonl.gz", tmp_path)[1] == {"g"}
    with gzip.open(tmp_path / "c.csv.gz", "wt", encoding="utf-8") as handle:
        handle.write("id,title,color\nc,x,red\n")
    assert build(tmp_path / "c.csv.gz", tmp_path, "csv.db")[1] == {"c"}


def test_truncated_gzip_loads_the_rows_before_the_damage(tmp_path: Path) -> None:
    data = gzip.compress("".join(json.dumps({"id": f"p{i}", "title": "t" * 50}) + "\n" for i in range(2000)).encode())
    (tmp_path / "cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    report, ids = build(tmp_path / "cut.jsonl.gz", tmp_path)
    assert 0 < len(ids) < 2000 and report.problems[-1].field == "file"


def test_utf16_csv_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    (tmp_path / "u16.csv").write_text("id,title,color\nu,Tässe,rot\n", encoding="utf-16")
    assert build(tmp_path / "u16.csv", tmp_path)[1] == {"u"}


def test_utf16_csv_without_a_byte_order_mark_is_refused_with_a_clear_line(tmp_path: Path) -> None:
    (tmp_path / "u16le.csv").write_bytes("id,title\nu,x\n".encode("utf-16-le"))
    with pytest.raises(CatalogError, match="UTF-16 without a byte-order mark"):
        open_catalog(tmp_path / "u16le.csv")


def test_catalog_that_is_a_symlink_loop_says_so(tmp_path: Path) -> None:
    os.symlink(tmp_path / "loop.jsonl", tmp_path / "loop.jsonl")
    with pytest.raises(CatalogError, match="symlink loop"):
        open_catalog(tmp_path / "loop.jsonl")


def test_store_failure_part_way_says_what_was_committed(tmp_path: Path) -> None:
    catalog = write_jsonl(tmp_path / "many.jsonl", *({"id": f"p{i}", "title": "x"} for i in range(5)))
    with open_store(str(tmp_path / "g.db"), create=True) as store:
        real, calls = store.upsert_products, []

        def fail_on_third(products, edges):  # a real store whose disk "fills up" at the third batch
            calls.append(1)
            if len(calls) == 3:
                raise OSError(28, "No space left on device")
            return real(products, edges)

        store.upsert_products = fail_on_third  # type: ignore[method-assign]
        with pytest.raises(CatalogError, match="the first 2 products .* were committed"):
            build_graph(open_catalog(catalog), store, batch_size=1)
        assert {p.id for p in store.iter_products()} == {"p0", "p1"}
