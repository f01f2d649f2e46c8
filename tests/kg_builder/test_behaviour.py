"""Reading and loading behaviour pairs: every bad row is rejected with file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from graph_store import BehaviourEdge, GraphStore, ProductNode
from kg_builder import CatalogError, RowProblem, build_graph, load_behaviour, open_catalog, open_pairs
from kg_builder.behaviour import normalize_kind


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def products(empty_store: GraphStore) -> GraphStore:
    empty_store.upsert_products([ProductNode(pid) for pid in ("a", "b", "c", "d")])
    return empty_store


def test_good_rows_default_weight_and_kind(tmp_path: Path) -> None:
    pairs = write(tmp_path / "p.csv", "product_a,product_b,weight,kind\nb,a,2.5,Co-Purchase\nc,d,,\n")
    rows = list(open_pairs(pairs).rows())
    assert rows == [(2, BehaviourEdge("b", "a", "co_purchase", 2.5)), (3, BehaviourEdge("c", "d", "co_view", 1.0))]


def test_src_dst_aliases_and_extra_columns(tmp_path: Path) -> None:
    pairs = write(tmp_path / "p.csv", "session,SRC,dst\ns1,a,b\n")
    assert list(open_pairs(pairs).rows()) == [(2, BehaviourEdge("a", "b"))]


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        (",b,1,co_view", "product_a", "missing product id"),
        ("a,  ,1,co_view", "product_b", "missing product id"),
        ("a,a,1,co_view", "product_b", "paired with itself"),
        ("a,b,lots,co_view", "weight", "'lots' is not a number"),
        ("a,b,0,co_view", "weight", "must be a finite number > 0"),
        ("a,b,-2,co_view", "weight", "must be a finite number > 0"),
        ("a,b,nan,co_view", "weight", "must be a finite number > 0"),
        ("a,b,inf,co_view", "weight", "must be a finite number > 0"),
        ("a,b,1,!!!", "kind", "is not a usable name"),
        ("a,b,1,vue-croisée", "kind", "is not a usable name"),
        ("a,b,1", "columns", "expected 4 columns, found 3"),
    ],
)
def test_each_bad_row_is_rejected_with_file_line_and_field(tmp_path: Path, row: str, field: str, message: str) -> None:
    pairs = write(tmp_path / "p.csv", f"product_a,product_b,weight,kind\nc,d,1,co_view\n{row}\n")
    *_, problem = list(open_pairs(pairs).rows())
    assert isinstance(problem, RowProblem) and problem.severity == "rejected"
    assert (problem.file, problem.line, problem.field) == (str(pairs), 3, field)
    assert message in problem.message
    assert str(problem).startswith(f"{pairs}:3: {field}: ")


def test_invalid_utf8_is_rejected(tmp_path: Path) -> None:
    pairs = tmp_path / "p.csv"
    pairs.write_bytes(b"product_a,product_b\ncaf\xe9,b\n")
    (problem,) = list(open_pairs(pairs).rows())
    assert (problem.line, problem.field, problem.message) == (2, "product_a", "invalid UTF-8 bytes")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"", "file is empty"),
        (b"a,b\n1,2\n", "pairs need columns product_a or src and product_b or dst"),
        (b"product_a,weight\nx,1\n", "pairs need columns product_b or dst"),
    ],
)
def test_file_level_problems_raise(tmp_path: Path, content: bytes | None, message: str) -> None:
    pairs = tmp_path / "p.csv"
    if content is not None:
        pairs.write_bytes(content)
    with pytest.raises(CatalogError, match=message):
        open_pairs(pairs)


def test_kind_normalisation() -> None:
    assert normalize_kind(" Co View ") == "co_view"
    assert normalize_kind("SAME_QUERY") == "same_query"
    assert normalize_kind("co-buy") == "co_purchase"
    assert normalize_kind("1st") == "" and normalize_kind("") == ""


def test_load_rejects_unknown_ids_and_lets_the_last_duplicate_win(products: GraphStore, tmp_path: Path) -> None:
    pairs = write(
        tmp_path / "p.csv",
        "src,dst,weight,kind\n"
        "a,b,1,co_view\n"
        "a,ghost,1,co_view\n"  # line 3: unknown dst
        "nobody,c,1,co_view\n"  # line 4: unknown src
        "b,a,4,co_view\n"  # line 5: the same undirected pair as line 2; this weight wins
        "a,a,1,co_view\n"  # line 6: self-pair
        "c,d,2,same_query\n",
    )
    report = load_behaviour(open_pairs(pairs), products, batch_size=2)  # several transactions
    assert list(products.iter_behaviour()) == [BehaviourEdge("a", "b", "co_view", 4.0), BehaviourEdge("c", "d", "same_query", 2.0)]
    assert (report.rows_read, report.rows_rejected, report.warnings, report.duplicates) == (6, 3, 1, 1)
    assert dict(report.edges_by_kind) == {"co_view": 1, "same_query": 1}
    rejected = [(p.line, p.field) for p in report.problems if p.severity == "rejected"]
    assert rejected == [(3, "dst"), (4, "src"), (6, "dst")]
    assert "'ghost' is not in the store" in report.problems[0].message
    warning = next(p for p in report.problems if p.severity == "warning")
    assert warning.line == 5 and "wins over line 2" in warning.message
    again = load_behaviour(open_pairs(pairs), products)
    assert again.as_dict() == report.as_dict()
    assert list(products.iter_behaviour())[0].weight == 4.0  # rerun: same graph


def test_build_graph_loads_pairs_after_the_catalog(empty_store: GraphStore, example_catalog: Path) -> None:
    pairs = example_catalog.parent / "behaviour.csv"
    report = build_graph(open_catalog(example_catalog), empty_store, behaviour=[open_pairs(pairs)])
    (loaded,) = report.behaviour
    assert (loaded.rows_read, loaded.rows_rejected, loaded.duplicates) == (275, 0, 0)
    assert empty_store.stats().behaviour_edges == dict(loaded.edges_by_kind) == {"co_purchase": 20, "co_view": 221, "same_query": 34}
    recorded = empty_store.last_build()["behaviour"][0]
    assert recorded["edges"] == 275 and recorded["file"] == str(pairs)
