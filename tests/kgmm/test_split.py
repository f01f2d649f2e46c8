"""Tests for kgmm.data.split: which facts are held out for validation."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from kgmm.data.split import _first_per_product, split_edges, training_snapshot  # noqa: E402

from tests.kgmm.k3m_testing import example_snapshot  # noqa: E402


@pytest.mark.parametrize("seed", range(4))
def test_first_occurrence_per_product_is_what_numpy_unique_gives(seed: int) -> None:
    rng = np.random.default_rng(seed)
    products = rng.integers(0, 50, size=int(rng.integers(0, 400)))  # some products never occur
    expected = np.unique(products, return_index=True)[1]
    assert np.array_equal(_first_per_product(products, 60), expected)


def test_one_fact_per_chosen_product_that_keeps_its_value_in_training() -> None:
    snapshot = example_snapshot()
    split = split_edges(snapshot, 0.3, 1000, seed=7)
    assert split.num_val > 0
    assert split_edges(snapshot, 0.3, 1000, seed=7).val.tolist() == split.val.tolist()  # a function of the seed
    assert len({int(p) for p in split.val[:, 0]}) == split.num_val  # one fact per product
    train = training_snapshot(snapshot, split.train_mask)
    assert train.num_edges == snapshot.num_edges - split.num_val
    assert set(split.val[:, 2].tolist()) <= set(train.edge_value.tolist())  # every held-out value keeps a training fact
    known = set(zip(snapshot.edge_product.tolist(), snapshot.edge_attribute.tolist(), snapshot.edge_value.tolist()))
    assert {tuple(row) for row in split.val.tolist()} <= known
