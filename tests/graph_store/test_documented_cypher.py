"""The Cypher that README.md and docs/NEO4J.md give analysts runs on a graph kgmm wrote.

The documented queries are the analyst's view of the graph model; when the model changes (the
HAS edges lost ``attribute`` in session 10: the attribute is the Value node's) a query that
still filters on the old property returns nothing without any error. So every documented query
runs here against a real Neo4j server, and the ones with a clear answer are checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("neo4j")

from graph_store import AttributeEdge, GraphStore, ProductNode, RunInfo  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = (ROOT / "README.md", ROOT / "docs" / "NEO4J.md")
PRODUCT = "0123456789abcdef0123456789abcdef"
OTHER = "fedcba9876543210fedcba9876543210"


def documented_statements() -> list[tuple[str, str]]:
    """(document, statement) of every ```cypher block, split at ``;``, with the documents'
    example product ids replaced by :data:`PRODUCT`."""
    found = []
    for path in DOCUMENTS:
        for block in re.findall(r"```cypher\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S):
            for statement in block.split(";"):
                code = "\n".join(line for line in statement.splitlines() if not line.strip().startswith("//")).strip()
                if code:
                    found.append((path.name, re.sub(r"'[0-9a-f]{32}'", f"'{PRODUCT}'", code)))
    return found


def write_graph(store: GraphStore) -> None:
    store.upsert_products(
        [ProductNode(PRODUCT, "Red party dress", category=("Clothing", "Dresses")), ProductNode(OTHER, "Mug", category=("Home",))],
        [AttributeEdge(PRODUCT, "color", "red", raw="Red"), AttributeEdge(OTHER, "material", "steel")],
    )
    store.write_predictions(RunInfo("r1", "m1", "2026-01-01T00:00:00+00:00"), [
        AttributeEdge(PRODUCT, "occasion", "party", "model", None, 0.95, "r1"),
        AttributeEdge(PRODUCT, "color", "blue", "model", "suspect catalog value 'red' (p=0.010)", 0.8, "r1"),
    ])


@pytest.mark.neo4j
def test_documented_queries_run_and_answer_on_the_current_graph_model(neo4j_store: GraphStore) -> None:
    write_graph(neo4j_store)
    statements = documented_statements()
    assert len(statements) >= 8
    answers: dict[str, list[dict]] = {}
    with neo4j_store._driver.session() as session:
        for document, statement in statements:
            answers[statement] = session.run(statement, id=PRODUCT, run="r1").data()

    def answer(document: str, fragment: str) -> list[dict]:
        matching = [rows for (doc, statement), rows in zip(statements, answers.values()) if doc == document and fragment in statement]
        assert len(matching) == 1, (document, fragment)
        return matching[0]

    one_product = answer("README.md", "ORDER BY attribute, source")
    assert sorted((r["attribute"], r["value"], r["source"]) for r in one_product) == [
        ("color", "blue", "model"), ("color", "red", "catalog"), ("occasion", "party", "model")]
    assert [r["v.value"] for r in answer("README.md", "h.score >= 0.9")] == ["party"]
    suspect = answer("README.md", "suspect catalog value")
    assert [(r["catalog"], r["suggestion"]) for r in suspect] == [("red", "blue")]
    assert [(r["r.run_id"], r["edges"]) for r in answer("README.md", "count(h) AS edges")] == [("r1", 2)]
    detail = answer("NEO4J.md", "ORDER BY attribute, CASE source")
    assert {(r["attribute"], r["value"]) for r in detail} == {("color", "red"), ("color", "blue"), ("occasion", "party")}
    assert [r["values_added"] for r in answer("NEO4J.md", "values_added")] == [2]
    assert [r["p.id"] for r in answer("NEO4J.md", "{attribute: 'color'}")] == [OTHER]
    assert len(answer("NEO4J.md", "source: 'model', run_id: $run")) == 2
