"""`kgmm complete` refits its calibration on reviewers' decisions when there are enough of them,
and says so; with too few it keeps the model's and says why. A really trained tiny model."""

from __future__ import annotations

from pathlib import Path

from graph_store import GraphStore, Review, flagged_value
from kgmm.completion import CompletionOptions, complete_store
from kgmm.completion.feedback import MIN_LABELS, labels
from tests.kgmm.completion.test_completion import example_store, model_dir  # noqa: F401  (fixtures)
from tests.kgmm.k3m_testing import one_thread

OPTIONS = CompletionOptions(top_k=3, min_score=0.0, check_noise=False)


def test_decisions_become_right_and_wrong_labels() -> None:
    found = labels([
        Review("p", "color", "red", "accept"),
        Review("p", "size", "xl", "reject"),
        Review("q", "color", "blue", "keep", catalog_value="red"),
        Review("r", "color", "blue", "replace", catalog_value="red"),
    ])
    assert [(l.product_id, l.value, l.right) for l in found] == [
        ("p", "red", True), ("p", "xl", False), ("q", "blue", False), ("q", "red", True), ("r", "blue", True), ("r", "red", False),
    ]


def test_complete_refits_calibration_on_enough_reviews(example_store: GraphStore, model_dir: Path) -> None:  # noqa: F811
    store = example_store
    with one_thread():
        complete_store(store, model_dir, OPTIONS, run_id="proposals")
    proposals = sorted((e for e in store.iter_triples(["model"]) if flagged_value(e.raw) is None), key=lambda e: -e.score)
    few = proposals[:3]
    for e in few:
        store.review(Review(*e[:3], "accept", "ann"))
    notes: list[str] = []
    with one_thread():
        complete_store(store, model_dir, OPTIONS, dry_run=True, note=notes.append)
    assert any("not refitted" in n for n in notes), notes
    for i, e in enumerate(proposals[3:MIN_LABELS + 10]):  # the best-scored half accepted, the rest rejected
        store.review(Review(*e[:3], "accept" if i < (MIN_LABELS + 7) // 2 else "reject", "ann"))
    notes.clear()
    with one_thread():
        report = complete_store(store, model_dir, OPTIONS, dry_run=True, note=notes.append)
    said = [n for n in notes if n.startswith("calibration refitted on")]
    assert said, notes
    assert report.calibration.fitted_on.endswith("right)") and report.run.params["calibrated_on"] == report.calibration.fitted_on
    assert report.calibration.nll_after <= report.calibration.nll_before
