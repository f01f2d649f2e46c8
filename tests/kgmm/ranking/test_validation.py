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


def test_pairs_read_off_the_snapshot_order_equal_a_sort() -> None:
    """The distinct (product, attribute) keys are read off the snapshot's own order without a sort;
    they equal np.unique's, and so do those of the same facts out of order (which take the sort)."""
    import dataclasses

    from kgmm.ranking.applicability import product_attribute_pairs
    from tests.kgmm.k3m_testing import example_snapshot

    snapshot = example_snapshot()
    A = len(snapshot.attributes)
    expected = np.unique(snapshot.edge_product.astype(np.int64) * A + snapshot.edge_attribute)
    assert snapshot.num_edges > expected.size > 100  # products have several facts of an attribute, some
    assert np.array_equal(product_attribute_pairs(snapshot, A), expected)
    shuffled = np.random.default_rng(0).permutation(snapshot.num_edges)
    reordered = dataclasses.replace(snapshot, edge_product=snapshot.edge_product[shuffled],
                                    edge_attribute=snapshot.edge_attribute[shuffled])
    assert np.array_equal(product_attribute_pairs(reordered, A), expected)
