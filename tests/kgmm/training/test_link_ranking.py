"""Filtered link-prediction ranking: other true values are not errors, ties share ranks."""

from __future__ import annotations

import numpy as np
import torch

from tests.kgmm.k3m_testing import one_thread, tiny_setup

from kgmm.training.evaluation import LinkEvaluator, missing_attribute_examples


def test_filtered_ranks_and_baselines() -> None:
    with one_thread():
        _, data, _ = tiny_setup()
    facts = data.split.val
    evaluator = LinkEvaluator(data, facts)
    for (p, a, v), candidates in zip(facts.tolist(), evaluator.filtered):
        assert v in candidates.tolist()
        others = evaluator.known[(p, a)] - {v}
        assert not set(candidates.tolist()) & others  # other true values are filtered out
    perfect = [(c == v).float() for (_, _, v), c in zip(facts.tolist(), evaluator.filtered)]
    assert evaluator._ranks(perfect) == [1.0] * len(perfect)
    flat = [torch.zeros(c.numel()) for c in evaluator.filtered]  # all tied: the average rank
    assert evaluator._ranks(flat) == [(c.numel() + 1) / 2 for c in evaluator.filtered]
    assert 0 < evaluator.random_mrr < 1 and 0 < evaluator.popular_mrr <= 1


def test_missing_attribute_examples_are_attributes_the_product_lacks() -> None:
    with one_thread():
        _, data, _ = tiny_setup()
    pairs = missing_attribute_examples(data, 3, seed=0)
    assert len(pairs) == 3
    snapshot = data.snapshot
    for p, a in pairs:
        assert not np.any((snapshot.edge_product == p) & (snapshot.edge_attribute == a))
