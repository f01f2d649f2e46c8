"""The batched scoring of ``kgmm complete`` gives the numbers and verdicts of the one-pair-per-call
path it replaced, so the speed-up changes no written value."""

from __future__ import annotations

import random
from pathlib import Path

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
    return [Check(p, a, v, listed[candidates.index(v)], best, best_prob, bool(completer.value_count[v] >= 2))
            for v, s in completer.facts[p][a] if s == SourceCode.CATALOG]


def test_judging_a_value_matches_the_loop_it_replaced_ties_included(completer: Completer) -> None:
    rng = random.Random(0)
    judged = 0
    for p, facts in enumerate(completer.facts):
        for a in facts:
            m = completer.data.candidates[a].numel()
            for probs in (torch.rand(m, generator=torch.Generator().manual_seed(p * 1000 + a)),
                          torch.full((m,), 1.0 / m),  # every value tied
                          torch.tensor([rng.choice((0.0, 0.25, 0.5)) for _ in range(m)])):
                assert completer._judge(p, a, probs) == reference_checks(completer, p, a, probs)
                judged += 1
    assert judged > 100


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


def test_a_value_the_catalog_shows_once_is_scored_but_never_flagged(completer: Completer) -> None:
    suspect = Check(0, 0, 1, probability=0.001, best=2, best_probability=0.9)
    assert suspect.flagged(OPTIONS) and suspect.suspicion() > 0.99
    once = Check(0, 0, 1, probability=0.001, best=2, best_probability=0.9, judgeable=False)
    assert not once.flagged(OPTIONS) and once.suspicion() == 0.0
    # the same rule over arrays (how evaluate_noise flags a baseline's probabilities)
    import numpy as np

    from kgmm.completion.engine import suspect

    cases = [Check(0, 0, 1, p, 2, b, j) for p in (0.001, 0.5) for b in (0.2, 0.9) for j in (True, False)]
    arrays = suspect(np.array([c.probability for c in cases]), np.array([c.best_probability for c in cases]),
                     np.array([c.judgeable for c in cases]), OPTIONS)
    assert arrays.tolist() == [c.flagged(OPTIONS) for c in cases] and sum(arrays) == 1
    with one_thread():
        checks = completer.checks(list(range(completer.snapshot.num_products)))
    counts = completer.value_count
    assert {c.judgeable for c in checks} == {True, False}  # the example catalog has both kinds
    assert all(c.judgeable == (counts[c.value] >= 2) for c in checks)
