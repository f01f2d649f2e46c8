"""Later completion runs respect reviewers: a rejected value is never proposed again for its
product, a catalog value said to be right is not flagged again, an accepted value is a fact
(its attribute is no longer missing). A really trained tiny model, a real store."""

from __future__ import annotations

from pathlib import Path

from graph_store import GraphStore, Review, flagged_value
from kgmm.completion import CompletionOptions, complete_store
from tests.kgmm.completion.test_completion import example_store, model_dir  # noqa: F401  (fixtures)
from tests.kgmm.k3m_testing import one_thread

OPTIONS = CompletionOptions(top_k=2, min_score=0.0, check_noise=True, flag_min=0.0)


def test_a_second_run_respects_the_decisions_on_the_first(example_store: GraphStore, model_dir: Path) -> None:  # noqa: F811
    store = example_store
    with one_thread():
        complete_store(store, model_dir, OPTIONS, run_id="first")
    edges = list(store.iter_triples(["model"]))
    plain = [e for e in edges if flagged_value(e.raw) is None]
    flags = [e for e in edges if flagged_value(e.raw) is not None]
    rejected, accepted = plain[0], next(e for e in plain if e.product_id != plain[0].product_id)
    kept = flags[0]
    store.review(Review(*rejected[:3], "reject", "ann"))
    store.review(Review(*accepted[:3], "accept", "ann"))
    store.review(Review(*kept[:3], "keep", "ann"))
    store.delete_run("first")  # nothing proposed stays, so the second run may propose anything again
    with one_thread():
        second = complete_store(store, model_dir, OPTIONS, run_id="second")
    written = {(e.product_id, e.attribute, e.value) for e in store.iter_triples(["model"])}
    assert second.written > 0 and tuple(rejected[:3]) not in written
    assert tuple(accepted[:3]) not in written
    assert "reviewed" in {e.source for e in store.get_product(accepted.product_id).edges}
    assert not [f for f in second.flags if (f.product_id, f.attribute, f.value) == (kept.product_id, kept.attribute, flagged_value(kept.raw))]
    assert not [e for e in store.iter_triples(["model"]) if (e.product_id, e.attribute, flagged_value(e.raw)) ==
                (kept.product_id, kept.attribute, flagged_value(kept.raw))]
    # the accepted value is a fact: its attribute is no longer missing, so nothing is proposed for it
    assert not [p for p in second.sample if (p.product_id, p.attribute) == (accepted.product_id, accepted.attribute)]
