"""The link score's evidence terms (kgmm.model.evidence): category prior, value mentions, lexical.

Why these tests: the prior must be the back-off the docs describe (a small category leans on
its parent) and count training facts only; the text terms must see exactly the text the text
stream sees (a dropped title gives nothing, a model reading the image alone gets no text
terms) or evaluation's missing-text numbers would be wrong; and a saved model must score
exactly as before, although its tables are sized by the data.
"""

from __future__ import annotations

import math

import pytest
import torch

from kgmm.data.batches import batch_generator
from kgmm.data.evidence import NAME
from kgmm.model import K3M
from kgmm.model import evidence as evidence_module
from kgmm.model.evidence import FEATURES, CategoryPrior, mention_features, with_text
from kgmm.ranking import RankingTask, encode_products, fact_scores
from tests.kgmm.k3m_testing import one_thread_per_module, tiny_config, tiny_setup  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def setup():
    return tiny_setup(tiny_config())


def test_the_prior_backs_off_from_a_small_category_to_its_parent() -> None:
    # categories: 0 = root, 1 = child of 0; attribute 0 has values 0, 1, 2
    prior = CategoryPrior(num_attributes=1, num_values=3, num_categories=2)
    product_category = torch.tensor([0, 0, 0, 1])
    facts = torch.tensor([[0, 0, 0], [1, 0, 0], [2, 0, 1], [3, 0, 2]])  # (product, attribute, value)
    prior.fit(product_category, torch.tensor([-1, 0]), torch.tensor([0, 0, 0]), facts[:, 0], facts[:, 1], facts[:, 2])
    values = torch.tensor([[0, 1, 2]])
    got = prior(torch.tensor([1]), torch.tensor([0]), values).exp()[0]
    catalog = [(2 + 1 / 3) / 5, (1 + 1 / 3) / 5, (1 + 1 / 3) / 5]  # every fact, one pseudo-count of the uniform
    root = [(n + p) / 5 for n, p in zip([2, 1, 1], catalog)]  # the root holds all four products
    leaf = [(n + p) / 2 for n, p in zip([0, 0, 1], root)]  # one product: leans on the root for the rest
    assert torch.allclose(got, torch.tensor(leaf), atol=1e-6)
    assert math.isclose(float(got.sum()), 1.0, rel_tol=1e-6)
    unknown = prior(torch.tensor([-1]), torch.tensor([0]), values).exp()[0]  # no category: the catalog's
    assert torch.allclose(unknown, torch.tensor(catalog), atol=1e-6)


def test_the_dense_count_table_gives_the_sparse_lookups_numbers_and_follows_a_refit(monkeypatch) -> None:
    generator = torch.Generator().manual_seed(0)
    prior = CategoryPrior(num_attributes=3, num_values=12, num_categories=4)
    value_attribute = torch.arange(12) % 3
    product_category = torch.randint(-1, 4, (40,), generator=generator)
    values = torch.randint(0, 12, (60,), generator=generator)
    products = torch.randint(0, 40, (60,), generator=generator)

    def fit(count: int) -> None:
        prior.fit(product_category, torch.tensor([-1, 0, 0, 1]), value_attribute, products[:count], value_attribute[values[:count]],
                  values[:count])

    fit(60)
    category, attribute = torch.tensor([-1, 0, 1, 2, 3, 3]), torch.tensor([0, 1, 2, 0, 1, 2])
    asked = torch.stack([torch.arange(a, 12, 3) for a in attribute.tolist()])
    exclude = torch.tensor([0, -1, 5, 3, 4, 8])
    dense = prior(category, attribute, asked, exclude)
    assert prior._dense is not None  # small enough: the table was built
    fit(30)  # new counts: the table must follow them
    refitted = prior(category, attribute, asked, exclude)
    monkeypatch.setattr(evidence_module, "DENSE_PRIOR_CELLS", 0)
    sparse = prior(category, attribute, asked, exclude)
    assert prior._dense is None and torch.equal(refitted, sparse)
    fit(60)
    assert torch.equal(prior(category, attribute, asked, exclude), dense) and not torch.equal(dense, refitted)


def test_counts_by_scatter_and_by_sort_are_the_same_and_match_a_hand_count(monkeypatch) -> None:
    """The fit counts into a dense table when the key space is small and by sorting each level
    otherwise; both must give every (level, value) and (level, attribute) count of the facts."""
    generator = torch.Generator().manual_seed(1)
    parent = torch.tensor([-1, 0, 0, 1, 3])  # a chain 0 <- 1 <- 3 <- 4 and a sibling 2
    product_category = torch.randint(-1, 5, (50,), generator=generator)
    value_attribute = torch.arange(20) % 4
    products = torch.randint(0, 50, (300,), generator=generator)
    values = torch.randint(0, 20, (300,), generator=generator)

    def fitted() -> CategoryPrior:
        prior = CategoryPrior(num_attributes=4, num_values=20, num_categories=5)
        prior.fit(product_category, parent, value_attribute, products, value_attribute[values], values)
        return prior

    assert evidence_module._KeyCounter(6 * 20, 300).dense is not None  # this fit scatters
    dense = fitted()
    monkeypatch.setattr(evidence_module._KeyCounter, "__init__", _sparse_counter_init)  # the sort path
    sparse = fitted()
    expected: dict[int, int] = {}
    for product, value in zip(products.tolist(), values.tolist()):
        level = int(product_category[product])
        for category in [5] + _ancestors(level, parent):  # the catalog is category 5 (= C)
            expected[category * 20 + value] = expected.get(category * 20 + value, 0) + 1
    for prior in (dense, sparse):
        assert prior.value_keys.tolist() == sorted(expected)
        assert prior.value_counts.tolist() == [float(expected[k]) for k in sorted(expected)]
    assert torch.equal(dense.total_keys, sparse.total_keys) and torch.equal(dense.total_counts, sparse.total_counts)


def _sparse_counter_init(self, space: int, facts: int) -> None:
    self.dense, self.parts = None, []


def _ancestors(category: int, parent: torch.Tensor) -> list[int]:
    chain = []
    while category >= 0:
        chain.append(category)
        category = int(parent[category])
    return chain


def test_mentions_count_the_value_words_found() -> None:
    words = torch.tensor([[3, 5, 9]])  # sorted word buckets of a title
    value_words = torch.tensor([[[5, 9], [5, 4], [0, 0]]])  # both found, one of two, no words
    every, share = mention_features(words, value_words)
    assert every.tolist() == [[1.0, 0.0, 0.0]] and share.tolist() == [[1.0, 0.5, 0.0]]


def test_without_text_the_prior_gets_its_own_weight_and_no_text_term_counts() -> None:
    # prior, all in title, all in description, share in title, share in description
    raw = torch.tensor([[[-0.5, 1.0, 0.0, 1.0, 0.5]], [[-2.0, 1.0, 1.0, 1.0, 1.0]]])
    got = with_text(raw, torch.tensor([True, False]))
    assert got.shape[-1] == len(FEATURES)
    assert got[0, 0].tolist() == [-0.5, 1.0, 0.0, 1.0, 0.5, 0.0]  # text read: the prior once, the mentions
    assert got[1, 0].tolist() == [-2.0, 0.0, 0.0, 0.0, 0.0, -2.0]  # no text: no mentions, the prior again


def test_the_text_terms_read_what_the_text_stream_reads(setup) -> None:
    model, data, _ = setup
    model.eval()
    rows = list(range(8))
    batch = data.build(rows, batch_generator(0, 1), train=False)
    with torch.no_grad():
        full = model(batch, heads=False).evidence
        image_only = model(batch, heads=False, modalities=("image",)).evidence
        no_knowledge = model(batch, heads=False, modalities=("text", "image")).evidence
    assert full.text.any() and (full.category >= 0).any()
    assert not image_only.text.any() and not image_only.ngrams.any()  # not read: no text terms
    assert (no_knowledge.category == -1).all()  # the category is knowledge
    dropped = batch.extra[NAME]
    dropped.present[:] = False  # as a batch whose texts were all dropped
    with torch.no_grad():
        gone = model(batch, heads=False).evidence
    assert not gone.text.any() and not gone.title_words.any()


def test_training_facts_only_and_a_saved_model_scores_the_same(setup, tmp_path) -> None:
    model, data, _ = setup
    held_out = data.split.val
    assert len(held_out)
    counted = model.evidence.prior.value_keys
    assert counted.numel() > 0
    model.eval()
    task = RankingTask.build(data.snapshot, held_out)
    before = fact_scores(model, data, task, torch.device("cpu"), 16)
    model.save_pretrained(tmp_path / "m")
    again = K3M.from_pretrained(tmp_path / "m")
    after = fact_scores(again, data, task, torch.device("cpu"), 16)
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    encoded = encode_products(again, data, task.products[:3], torch.device("cpu"), 2)
    assert len(encoded) == 3 and encoded.evidence is not None and len(encoded.evidence) == 3
