"""Filtered link-prediction ranking: other true values are not errors, ties share ranks."""

from __future__ import annotations

import numpy as np
import torch

from kgmm.ranking import Applicability, RankingTask, Validator, example_gaps
from tests.kgmm.k3m_testing import one_thread, tiny_setup


def test_filtered_ranks_and_baselines() -> None:
    with one_thread():
        _, data, _ = tiny_setup()
    facts = data.split.val
    task = RankingTask.build(data.snapshot, facts)
    known: dict[tuple[int, int], set[int]] = {}
    for p, a, v in zip(data.snapshot.edge_product.tolist(), data.snapshot.edge_attribute.tolist(), data.snapshot.edge_value.tolist()):
        known.setdefault((p, a), set()).add(v)
    for (p, a, v), candidates in zip(facts.tolist(), task.candidates):
        assert v in candidates.tolist()
        assert not set(candidates.tolist()) & (known[(p, a)] - {v})  # other true values are filtered out
    perfect = [(c == v).float() for (_, _, v), c in zip(facts.tolist(), task.candidates)]
    assert task.ranks(perfect).tolist() == [1.0] * len(perfect)
    flat = [torch.zeros(c.numel()) for c in task.candidates]  # all tied: the average rank
    assert task.ranks(flat).tolist() == [(c.numel() + 1) / 2 for c in task.candidates]
    validator = Validator(data, task)
    assert 0 < validator.random_mrr < 1 and 0 < validator.popular_mrr <= 1


def test_example_gaps_are_applicable_attributes_the_product_lacks() -> None:
    with one_thread():
        _, data, _ = tiny_setup()
    snapshot = data.snapshot
    applicability = Applicability(snapshot)
    pairs = example_gaps(applicability, 3, seed=0)
    assert len(pairs) == 3 and len({a for _, a in pairs}) == 3
    for p, a in pairs:
        assert not np.any((snapshot.edge_product == p) & (snapshot.edge_attribute == a))
        assert a in applicability.missing(p)


def test_coverage_counted_a_chunk_at_a_time_is_the_whole_count(monkeypatch) -> None:
    """The estimator counts (product, attribute) pairs in chunks to bound its temporaries: any chunk
    size gives the same threshold and the same coverage of every category."""
    from kgmm.ranking import applicability as module

    with one_thread():
        _, data, _ = tiny_setup()
    snapshot = data.snapshot
    whole = Applicability(snapshot)
    monkeypatch.setattr(module, "PAIR_CHUNK", 7)
    chunked = Applicability(snapshot)
    assert whole.pairs.size > 7 * 3  # several chunks were counted
    assert chunked.min_coverage == whole.min_coverage and chunked.measured == whole.measured
    for product in range(snapshot.num_products):
        assert chunked.coverage(product) == whole.coverage(product)
