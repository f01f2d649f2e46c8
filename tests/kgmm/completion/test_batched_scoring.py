"""The batched scoring of ``kgmm complete`` gives the numbers and verdicts of the one-pair-per-call
path it replaced, so the speed-up changes no written value."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.kgmm.completion.trained_model import trained_model
from tests.kgmm.k3m_testing import example_snapshot, one_thread

from graph_store import SourceCode
from kgmm.completion import CompletionOptions
from kgmm.completion.alignment import align_snapshot
from kgmm.completion.engine import Check, Completer
from kgmm.model import K3M
from kgmm.ranking import Calibration, value_scores
from kgmm.ranking.scoring import grouped_value_scores

OPTIONS = CompletionOptions(batch_size=16)


@pytest.fixture(scope="module")
def completer() -> Completer:
    model = K3M.from_pretrained(trained_model()[1]).eval()
    snapshot, _ = align_snapshot(example_snapshot(), model.id_maps)
    return Completer(model, snapshot, Calibration(), OPTIONS, torch.device("cpu"))


def test_grouped_scores_are_the_scores_of_one_pair_at_a_time(completer: Completer) -> None:
    model, candidates, cpu = completer.model, completer.data.candidates, torch.device("cpu")
    rows = list(range(min(24, completer.snapshot.num_products)))
    with one_thread():
        vectors = completer._encode(rows, (0, rows[0]))
        attributes = [a for a in range(len(completer.snapshot.attributes)) if candidates[a].numel() >= 2]
        asked = [attributes[(3 * i) % len(attributes)] for i in rows]  # several attributes of different widths, repeated
        grouped = grouped_value_scores(model, vectors, asked, candidates, cpu)
        single = [value_scores(model, vectors[i], a, candidates[a], cpu) for i, a in zip(rows, asked)]
    assert len({candidates[a].numel() for a in asked}) > 1
    for g, s in zip(grouped, single):
        assert g.shape == s.shape
        torch.testing.assert_close(g, s, rtol=0, atol=1e-5)
        assert g.argmax() == s.argmax()


def reference_checks(completer: Completer, p: int, a: int, probs: torch.Tensor) -> list[Check]:
    """The per-value Python loop the vectorised judge replaced, verbatim."""
    own = {v for v, _ in completer.facts[p][a]}
    candidates = completer.data.candidates[a].tolist()
    listed = probs.tolist()
    others = [(prob, v) for prob, v in zip(listed, candidates) if v not in own]
    if not others:
        return []
    best_prob, best = max(others)
    mentions = completer.mentions
    return [Check(p, a, v, listed[candidates.index(v)], best, best_prob, bool(completer.value_count[v] >= 2), mentions.named(p, v),
                  mentions.log_ratio(a, mentions.named(p, v)),
                  tuple(completer.features.row(p, a, v, listed[candidates.index(v)], best_prob, int(completer.value_count[v]))))
            for v, s in completer.facts[p][a] if s == SourceCode.CATALOG]


def test_judging_a_value_matches_the_loop_it_replaced_ties_included(completer: Completer) -> None:
    """Row by row, and all rows in one padded table (rows of different widths side by side)."""
    rng = random.Random(0)
    asked: list[tuple[int, int, torch.Tensor]] = []
    for p, facts in enumerate(completer.facts):
        for a in facts:
            m = completer.data.candidates[a].numel()
            for probs in (torch.rand(m, generator=torch.Generator().manual_seed(p * 1000 + a)),
                          torch.full((m,), 1.0 / m),  # every value tied
                          torch.tensor([rng.choice((0.0, 0.25, 0.5)) for _ in range(m)])):
                assert completer._judge([p], [a], [probs]) == reference_checks(completer, p, a, probs)
                asked.append((p, a, probs))
    assert len(asked) > 100
    together = completer._judge(*(list(column) for column in zip(*asked)))
    assert together == [check for p, a, probs in asked for check in reference_checks(completer, p, a, probs)]


def test_a_checked_value_is_scored_as_held_out_of_the_category_prior(completer: Completer) -> None:
    """The prior was counted from the catalog, so a checked value would count for itself: a
    check scores it with its own fact left out of the counts (:class:`CategoryPrior`'s
    ``exclude``, pinned by the prior's own tests), and that changes what the check sees."""
    model, candidates, cpu = completer.model, completer.data.candidates, torch.device("cpu")
    rows = [p for p in range(min(16, completer.snapshot.num_products))
            if any(candidates[a].numel() >= 2 and any(s == SourceCode.CATALOG for _, s in f) for a, f in completer.facts[p].items())]
    with one_thread():
        checks = [c for c in completer.checks(rows) if completer.facts[c.product][c.attribute][0][0] == c.value]
        hidden = {i: torch.tensor([v for v, _ in completer.facts[c.product][c.attribute]]) for i, c in enumerate(checks[:8])}
        from kgmm.completion.hiding import HiddenFacts

        batch = completer.data.build([c.product for c in checks[:8]], torch.Generator().manual_seed(0), train=False,
                                     transforms=(HiddenFacts(hidden, len(completer.snapshot.values)),))
        vectors = model(batch, heads=False).products()
        asked = [c.attribute for c in checks[:8]]
        own = torch.tensor([c.value for c in checks[:8]])
        counted = grouped_value_scores(model, vectors, asked, candidates, cpu)
        held_out = grouped_value_scores(model, vectors, asked, candidates, cpu, exclude=own)
    probability = completer.calibration.probabilities
    near_held_out = []
    for c, with_own, without in zip(checks[:8], counted, held_out):
        where = int((candidates[c.attribute] == c.value).nonzero())
        a, b = float(probability(with_own)[where]), float(probability(without)[where])
        if abs(a - b) > 0.01:  # (the neighbour sample differs slightly from the check's own batch)
            near_held_out.append(abs(c.probability - b) < abs(c.probability - a))
    assert near_held_out and all(near_held_out)


def test_a_check_is_flagged_by_the_detectors_probability_and_ranked_by_its_ratio(completer: Completer) -> None:
    with one_thread():
        checks = completer.checks(list(range(completer.snapshot.num_products)))
    detector = completer.detector
    assert detector.model is not None and detector.examples[0] == len(checks) and detector.examples[1] > len(checks)
    ratio = detector.log_ratio(np.array([c.features for c in checks]))
    np.testing.assert_allclose([c.ratio for c in checks], ratio)
    np.testing.assert_allclose([c.wrong for c in checks], np.minimum(1.0, OPTIONS.error_rate * np.exp(ratio)))
    assert [c.suspicion() for c in checks] == [c.ratio for c in checks]
    strict, loose = replace(OPTIONS, flag_min=0.99), replace(OPTIONS, flag_min=0.0)
    assert all(c.flagged(loose) for c in checks)
    assert [c.flagged(strict) for c in checks] == [c.wrong >= 0.99 for c in checks]
    counts = completer.value_count
    assert {c.judgeable for c in checks} == {True, False}  # the example catalog has both kinds
    assert all(c.judgeable == (counts[c.value] >= 2) for c in checks)
    assert {c.named for c in checks} == {True, False}
    assert all(c.named == completer.mentions.named(c.product, c.value) for c in checks)


def test_checks_from_one_forward_are_the_checks_with_each_attribute_hidden(completer: Completer) -> None:
    """With the check row holding the memorising parts at 0 (the fitted blend) a batch's checks
    are scored from its one plain forward; the path that re-encodes each round with the
    attribute's facts hidden (every older model's) gives the same verdicts and probabilities."""
    assert not completer.model.evidence.check_reads_products()
    rows = list(range(min(32, completer.snapshot.num_products)))
    with one_thread():
        fast = completer._scored(rows)  # (checks() would answer the detector's sample from its cache)
        completer._check_reads_products = True  # the per-round path, as for a model that needs it
        try:
            slow = completer._scored(rows)
        finally:
            completer._check_reads_products = False
    assert len(fast) > 20
    key = lambda c: (c.product, c.attribute, c.value)  # noqa: E731
    fast, slow = sorted(fast, key=key), sorted(slow, key=key)
    assert [key(c) for c in fast] == [key(c) for c in slow]
    for f, s in zip(fast, slow):
        assert f.probability == pytest.approx(s.probability, abs=1e-5)
        assert (f.best, f.judgeable) == (s.best, s.judgeable) and f.best_probability == pytest.approx(s.best_probability, abs=1e-5)


def test_a_blend_without_a_fitted_check_row_still_reads_the_product() -> None:
    """A model saved before the check row reads its text row for checks: it scales the deep
    score, so its checks must keep hiding the checked attribute from the product's inputs."""
    model = K3M.from_pretrained(trained_model()[1])
    model.evidence.blend.fill_(1.0)
    assert model.evidence.check_reads_products()


def test_fact_scores_in_width_groups_are_the_scores_of_one_fact_at_a_time(completer: Completer) -> None:
    """Validation and calibration score a ranking task's facts in width groups of at most
    ``FACTS_PER_CALL``; each fact gets the numbers the one-call-per-fact path gave."""
    from kgmm.data.split import split_edges
    from kgmm.ranking import RankingTask, fact_scores
    from kgmm.ranking.scoring import encode_products

    import kgmm.ranking.scoring as scoring

    snapshot, cpu = completer.snapshot, torch.device("cpu")
    task = RankingTask.build(snapshot, split_edges(snapshot, 0.3, 200, 0, 10).val)
    assert len(task) > 20 and len({c.numel() for c in task.candidates}) > 1
    with one_thread():
        per_call, scoring.FACTS_PER_CALL = scoring.FACTS_PER_CALL, 7  # several calls, each with several widths
        try:
            grouped = fact_scores(completer.model, completer.data, task, cpu, 16)
        finally:
            scoring.FACTS_PER_CALL = per_call
        vectors = encode_products(completer.model, completer.data, task.products, cpu, 16)
        position = {p: i for i, p in enumerate(task.products)}
        single = [value_scores(completer.model, vectors[position[p]], a, c, cpu) for (p, a, _), c in zip(task.facts.tolist(), task.candidates)]
    assert len(grouped) == len(single)
    for g, s in zip(grouped, single):
        torch.testing.assert_close(g, s, rtol=0, atol=1e-5)
