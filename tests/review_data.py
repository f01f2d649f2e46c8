"""A review scene on the real example catalog, shared by the review CLI, web and browser tests.

The catalog (examples/catalog.jsonl, 126 real Flipkart products with their JPEG photos) is built
into a store, and a completion run is written as ``kgmm complete`` writes one: proposals for
products that lack a colour or a material, with a spread of probabilities, and one suggestion
against a suspect catalog value (the raw note in the engine's own words). No model is trained:
the review side only reads what a run left in the store, and a run of a real model takes minutes.
"""

from __future__ import annotations

from pathlib import Path

from graph_store import AttributeEdge, GraphStore, RunInfo
from kg_builder.pipeline import build_graph
from kg_builder.readers import open_catalog

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "examples" / "catalog.jsonl"
RUN = "run-review-1"
TAWA = "0096e89cc25a8b96fb9808716406fe94"  # oxford Tawa: catalog colour black, suggestion silver
FLAG_RAW = "suspect catalog value 'black' (p=0.020)"
SCORES = (0.97, 0.55, 0.35, 0.96, 0.62, 0.48, 0.99, 0.51)


def build_review_store(store: GraphStore) -> dict[str, list[AttributeEdge]]:
    """Build the catalog into ``store`` and write the run; returns the proposals by attribute."""
    build_graph(open_catalog(str(CATALOG)), store)
    vocabulary = store.attribute_vocabulary()
    proposals: dict[str, list[AttributeEdge]] = {}
    for attribute, best, second in (("color", "black", "white"), ("material", "cotton", "wood")):
        assert {best, second} <= vocabulary[attribute]
        lacking = store.products_missing_attribute(attribute)[:8]
        for i, pid in enumerate(lacking):
            score = SCORES[i % len(SCORES)]
            proposals.setdefault(attribute, []).append(AttributeEdge(pid, attribute, best, "model", None, score, RUN))
            proposals[attribute].append(AttributeEdge(pid, attribute, second, "model", None, round((1 - score) / 2, 3), RUN))
    flag = AttributeEdge(TAWA, "color", "silver", "model", FLAG_RAW, 0.81, RUN)
    store.write_predictions(RunInfo(RUN, "test-model@000000"), [e for edges in proposals.values() for e in edges] + [flag])
    return proposals
