"""`kgmm build-kg` on good and bad input: exit codes, one-line errors, reports, no half-written store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.cli.helpers import ROOT, kgmm


def jsonl(path: Path, lines: list[str | dict]) -> Path:
    path.write_text("".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in lines), encoding="utf-8")
    return path


def report_of(store: Path) -> dict:
    return json.loads(Path(f"{store}.build-report.json").read_text())


def test_example_catalog_builds_and_summarises(tmp_path: Path) -> None:
    store = tmp_path / "g.db"
    result = kgmm("build-kg", "examples/catalog.jsonl", "--store", str(store))
    assert result.returncode == 0, result.stderr
    assert "products" in result.stdout and "triples/s" in result.stdout
    report = report_of(store)
    assert report["products"] == 126 and report["rows_rejected"] == 0
    assert report["triples"] == report["triples_by_source"]["catalog"] + report["triples_by_source"]["text"]
    stats = json.loads(kgmm("stats", "--store", str(store), "--format", "json").stdout)
    assert stats["products"] == 126 and stats["triples"] == report["triples"]
    assert stats["last_build"]["products"] == 126


def test_csv_with_mapping_file_and_flags(tmp_path: Path) -> None:
    store = tmp_path / "g.db"
    result = kgmm("build-kg", "examples/catalog.csv", "--mapping", "examples/mapping.yaml", "--store", str(store))
    assert result.returncode == 0, result.stderr
    assert report_of(store)["products"] == 20
    csv_path = tmp_path / "c.csv"
    csv_path.write_text("sku,name,hue\nA,Lamp,Red\n", encoding="utf-8")
    result = kgmm("build-kg", str(csv_path), "--column", "id=sku", "--column", "title=name", "--attribute", "hue=color",
                  "--store", str(tmp_path / "h.db"))
    assert result.returncode == 0, result.stderr
    product = json.loads(kgmm("query", "product", "A", "--store", str(tmp_path / "h.db"), "--format", "json").stdout)
    assert [(a["attribute"], a["value"]) for a in product["attributes"]] == [("color", "red")]


def test_row_problems_are_reported_while_the_rest_loads(tmp_path: Path) -> None:
    catalog = tmp_path / "c.jsonl"
    catalog.write_bytes(
        b'{"id": "ok1", "title": "fine"}\n'
        b'{"id": "broken", \n'
        b'{"title": "no id"}\n'
        b'{"id": "bytes", "title": "caf\xe9"}\n'
        b'{"id": "esc", "title": "x", "image": "../../etc/passwd"}\n'
        b'{"id": "url", "title": "x", "image": "http://example.com/a.jpg"}\n'
        b'{"id": "ok2", "title": "also fine", "description": "' + b"long text " * 1_100_000 + b'"}\n'
    )
    store = tmp_path / "g.db"
    result = kgmm("build-kg", str(catalog), "--store", str(store))
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    report = report_of(store)
    assert report["products"] == 4 and report["rows_rejected"] == 3
    rejected = {(p["line"], p["field"]) for p in report["problems"] if p["severity"] == "rejected"}
    assert rejected == {(2, "json"), (3, "id"), (4, "title")}
    assert all(p["file"] == str(catalog) for p in report["problems"])
    assert report["images_missing"] == 2
    esc = json.loads(kgmm("query", "product", "esc", "--store", str(store), "--format", "json").stdout)
    assert esc["image_status"] == "missing" and esc["image_reason"] == "outside the catalog folder"
    long = json.loads(kgmm("query", "product", "ok2", "--store", str(store), "--format", "json").stdout)
    assert len(long["description"]) > 10_000_000


def test_csv_row_with_too_few_columns(tmp_path: Path) -> None:
    catalog = tmp_path / "c.csv"
    catalog.write_text("id,title,color\n1,Mug,red\n2,Cup\n3,Plate,white\n", encoding="utf-8")
    store = tmp_path / "g.db"
    result = kgmm("build-kg", str(catalog), "--store", str(store))
    assert result.returncode == 3
    report = report_of(store)
    assert report["products"] == 2
    assert report["problems"] == [
        {"file": str(catalog), "line": 3, "field": "columns", "message": "expected 3 columns, found 2", "severity": "rejected"}
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "file is empty"), (b"\n \n", "file is empty"), (None, "no such file")],
)
def test_file_level_problems_write_nothing(tmp_path: Path, content: bytes | None, message: str) -> None:
    catalog = tmp_path / "c.jsonl"
    if content is not None:
        catalog.write_bytes(content)
    store = tmp_path / "g.db"
    result = kgmm("build-kg", str(catalog), "--store", str(store))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert message in result.stderr and str(catalog) in result.stderr
    assert not store.exists() and not Path(f"{store}.build-report.json").exists()


def test_store_in_a_non_writable_directory(tmp_path: Path) -> None:
    if os.geteuid() == 0:  # root writes anywhere on disk; /proc refuses even root
        store = Path("/proc/kgmm-test/g.db")
        locked = None
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        store = locked / "g.db"
    result = kgmm("build-kg", "examples/catalog.jsonl", "--store", str(store))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "cannot create store" in result.stderr
    assert not store.exists()
    if locked is not None:
        assert list(locked.iterdir()) == []


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = kgmm("--debug", "build-kg", str(tmp_path / "missing.jsonl"), "--store", str(tmp_path / "g.db"))
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_help_is_clear_for_every_command() -> None:
    for command in (["build-kg"], ["query", "product"], ["query", "attribute"], ["stats"], ["export"]):
        result = kgmm(*command, "--help")
        assert result.returncode == 0 and "Usage" in result.stdout and "--store" in result.stdout


def test_neo4j_scheme_is_recognised(tmp_path: Path) -> None:
    result = kgmm("stats", "--store", "bolt://127.0.0.1:1")
    assert result.returncode == 1 and "Traceback" not in result.stderr and "bolt://" in result.stderr


def test_read_commands_refuse_a_missing_store(tmp_path: Path) -> None:
    result = kgmm("stats", "--store", str(tmp_path / "nope.db"))
    assert result.returncode == 1 and "no store at" in result.stderr
    assert not (tmp_path / "nope.db").exists()
    assert ROOT.exists()


def test_behaviour_pairs_load_and_bad_rows_exit_3(tmp_path: Path) -> None:
    store = tmp_path / "g.db"
    result = kgmm("build-kg", "examples/catalog.jsonl", "--behaviour", "examples/behaviour.csv", "--store", str(store))
    assert result.returncode == 0, result.stderr
    assert "behaviour" in result.stdout and "co_view 221" in result.stdout
    ids = [json.loads(line)["id"] for line in (ROOT / "examples" / "catalog.jsonl").read_text().splitlines()[:3]]
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(
        f"product_a,product_b,weight,kind\n{ids[0]},{ids[1]},2,co_purchase\n{ids[0]},ghost,1,co_view\n{ids[1]},{ids[2]},zero,\n",
        encoding="utf-8",
    )
    result = kgmm("build-kg", "examples/catalog.jsonl", "--behaviour", "examples/behaviour.csv", "--behaviour", str(pairs),
                  "--store", str(store))
    assert result.returncode == 3, result.stderr
    assert f"{pairs}:3: product_b: product 'ghost' is not in the store" in result.stdout
    assert f"{pairs}:4: weight: weight 'zero' is not a number" in result.stdout
    report = report_of(store)
    assert report["rows_rejected"] == 0 and [b["rows_rejected"] for b in report["behaviour"]] == [0, 2]
    assert report["behaviour"][1]["edges_by_kind"] == {"co_purchase": 1}
    assert [(p["line"], p["field"]) for p in report["behaviour"][1]["problems"]] == [(3, "product_b"), (4, "weight")]
    stats = json.loads(kgmm("stats", "--store", str(store), "--format", "json").stdout)
    example = (ROOT / "examples" / "behaviour.csv").read_text()
    new_pair = f"{min(ids[:2])},{max(ids[:2])},"
    co_purchase = example.count(",co_purchase\n") + (not any(line.startswith(new_pair) and line.endswith(",co_purchase")
                                                           for line in example.splitlines()))
    assert stats["behaviour_edges"] == {"co_purchase": co_purchase, "co_view": 221, "same_query": 34}


def test_a_bad_pairs_file_writes_nothing(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("left,right\na,b\n", encoding="utf-8")
    store = tmp_path / "g.db"
    result = kgmm("build-kg", "examples/catalog.jsonl", "--behaviour", str(pairs), "--store", str(store))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "pairs need columns product_a or src" in result.stderr
    assert not store.exists() and not Path(f"{store}.build-report.json").exists()
