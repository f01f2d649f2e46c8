"""Tests for kgmm.sampling.negative: same-attribute, never-known-true negatives."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")

with warnings.catch_warnings():  # PyG's import-time torch.jit deprecation noise
    warnings.simplefilter("ignore", FutureWarning)
    pytest.importorskip("torch_geometric")
    from kgmm.sampling import AttributeNegativeSampler, sample_attribute_negatives  # noqa: E402

NUM_PRODUCTS = 300


# Helpers ##################################################################


def catalog(seed: int = 0):
    """Attributes with disjoint value ranges; some products have several values.

    Attribute 0: values 0..9, attribute 1: values 10..39, attribute 2: value 40
    only (single-valued), attribute 3: values 41..42.
    """
    g = torch.Generator().manual_seed(seed)
    candidates = [
        torch.arange(0, 10),
        torch.arange(10, 40),
        torch.tensor([40]),
        torch.tensor([41, 42]),
    ]
    triples = []
    for attr, vals in enumerate(candidates):
        per = 3 if attr in (0, 1) else 1  # multi-valued attributes 0 and 1
        prod = torch.arange(NUM_PRODUCTS).repeat_interleave(per)
        val = vals[torch.randint(vals.numel(), (prod.numel(),), generator=g)]
        triples.append(torch.stack([prod, torch.full_like(prod, attr), val], dim=1))
    known = torch.unique(torch.cat(triples), dim=0)
    return candidates, known


def keyset(triples: torch.Tensor) -> set:
    return {tuple(t) for t in triples.tolist()}


# Tests ####################################################################


def test_negatives_share_attribute_and_are_never_known_true():
    candidates, known = catalog()
    sampler = AttributeNegativeSampler(candidates, known)
    positives = known[
        torch.randperm(known.size(0), generator=torch.Generator().manual_seed(1))[:500]
    ]
    out = sampler.sample(positives, 8, generator=torch.Generator().manual_seed(2))
    assert out.value.shape == (500, 8) and out.mask.shape == (500, 8)

    negs, pos_idx = out.valid_triples(positives)
    assert negs.size(0) == int(out.mask.sum())
    assert torch.equal(negs[:, :2], positives[pos_idx, :2])  # same product and attribute
    for attr, vals in enumerate(candidates):
        sel = negs[:, 1] == attr
        assert bool(torch.isin(negs[sel, 2], vals).all())  # value of the same attribute
    assert not (keyset(negs) & keyset(known))
    assert bool((negs[:, 2] != positives[pos_idx, 2]).all())


def test_single_valued_attribute_is_masked():
    candidates, known = catalog()
    sampler = AttributeNegativeSampler(candidates, known)
    positives = known[known[:, 1] == 2][:20]  # attribute 2 has one value
    out = sampler.sample(positives, 4)
    assert not bool(out.mask.any())
    assert bool((out.value == -1).all())
    assert out.valid_triples(positives)[0].size(0) == 0


def test_only_remaining_value_is_found_and_exhausted_product_is_masked():
    # Product 0 knows 9 of the 10 colours: the only valid negative is colour 9,
    # which rejection rarely hits -> exercises the exact fallback.
    candidates = [torch.arange(10)]
    known = torch.tensor([[0, 0, v] for v in range(9)] + [[1, 0, v] for v in range(10)])
    sampler = AttributeNegativeSampler(candidates, known, max_rounds=1)
    positives = torch.tensor([[0, 0, 3], [1, 0, 4]])
    assert sampler.num_valid(positives).tolist() == [1, 0]
    out = sampler.sample(positives, 50, generator=torch.Generator().manual_seed(0))
    assert bool((out.value[0] == 9).all()) and bool(out.mask[0].all())
    assert not bool(out.mask[1].any())


def test_positive_excluded_even_when_not_in_known():
    out = sample_attribute_negatives(
        torch.tensor([[7, 0, 1]]),
        [torch.tensor([1, 2])],
        30,
        known=torch.zeros(0, 3, dtype=torch.long),
    )
    assert bool((out.value == 2).all())


def test_uniform_over_valid_values():
    candidates = [torch.arange(20)]
    known = torch.tensor([[0, 0, 0], [0, 0, 5]])
    sampler = AttributeNegativeSampler(candidates, known)
    out = sampler.sample(
        torch.tensor([[0, 0, 0]]), 18_000, generator=torch.Generator().manual_seed(3)
    )
    counts = torch.bincount(out.value.view(-1), minlength=20)
    assert counts[0] == 0 and counts[5] == 0
    valid = counts[counts > 0].double()
    assert valid.numel() == 18
    stat = float(((valid - valid.mean()) ** 2 / valid.mean()).sum())
    assert stat < 40.790  # chi2(17) 0.999 quantile


def test_deterministic_under_generator():
    candidates, known = catalog()
    sampler = AttributeNegativeSampler(candidates, known)
    pos = known[:100]
    a = sampler.sample(pos, 5, generator=torch.Generator().manual_seed(9))
    b = sampler.sample(pos, 5, generator=torch.Generator().manual_seed(9))
    c = sampler.sample(pos, 5, generator=torch.Generator().manual_seed(10))
    assert torch.equal(a.value, b.value)
    assert not torch.equal(a.value, c.value)


def test_mapping_candidates_and_key_overflow():
    sampler = AttributeNegativeSampler({1: torch.tensor([3, 4, 5])}, torch.tensor([[0, 1, 3]]))
    out = sampler.sample(torch.tensor([[0, 1, 3], [2, 0, 9]]), 3)
    assert bool(out.mask[0].all()) and not bool(out.mask[1].any())  # attribute 0 has no candidates
    assert bool(torch.isin(out.value[0], torch.tensor([4, 5])).all())
    with pytest.raises(OverflowError):
        sampler.sample(torch.tensor([[2**62, 1, 3]]), 1)


@pytest.mark.parametrize("seed", range(6))
def test_has_valid_is_num_valid_above_zero_on_crowded_and_sparse_graphs(seed: int):
    # few values per attribute (a product may know all of them), unsorted known triples, products
    # known nowhere or beyond the known ones, positives that are not known and not candidates
    g = torch.Generator().manual_seed(seed)
    values = [int(n) for n in torch.randint(1, 5, (4,), generator=g)]
    candidates, start = [], 0
    for n in values:
        candidates.append(torch.arange(start, start + n))
        start += n
    known = []
    for product in range(20):
        for attribute, pool in enumerate(candidates):
            chosen = pool[torch.rand(pool.numel(), generator=g) < (0.9 if product % 3 == 0 else 0.3)]
            known += [[product, attribute, int(v)] for v in chosen]
    known = torch.tensor(known)[torch.randperm(len(known), generator=g)]
    sampler = AttributeNegativeSampler(candidates, known)
    attributes = torch.randint(0, 4, (400,), generator=g)
    positives = torch.stack([torch.randint(0, 25, (400,), generator=g), attributes, torch.randint(0, start + 2, (400,), generator=g)], 1)
    assert sampler.has_valid(positives).tolist() == (sampler.num_valid(positives) > 0).tolist()
    assert not bool(sampler.has_valid(positives).all())  # the crowded products leave some without any


def test_sorted_and_shuffled_known_triples_give_the_same_sampler():
    known = torch.tensor([[p, a, v] for p in range(30) for a in range(2) for v in range(a * 5, a * 5 + 5) if (p + v) % 3])
    shuffled = known[torch.randperm(known.size(0), generator=torch.Generator().manual_seed(1))]
    candidates = [torch.arange(0, 5), torch.arange(5, 10)]
    a, b = AttributeNegativeSampler(candidates, known), AttributeNegativeSampler(candidates, shuffled)
    assert torch.equal(a.known_keys, b.known_keys) and torch.equal(a.known_per_product, b.known_per_product)
    assert bool((a.known_keys[1:] > a.known_keys[:-1]).all())
