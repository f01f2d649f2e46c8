"""The evaluation protocol's parts on the real example catalog: splits that never leak into
training, filtered ranking, damage, the majority rule, calibration and the probe."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.kgmm.k3m_testing import example_snapshot, one_thread, tiny_config

from kgmm.ranking.calibration import calibrate, expected_calibration_error, fit_temperature, top1
from kgmm.data.batches import batch_generator
from kgmm.data.views import ModalityView, ViewData
from kgmm.ranking.rule import MajorityPerCategory, _lexicographic_rank
from kgmm.evaluation.corruption import CONDITIONS, corrupt, touches
from kgmm.evaluation.k3m_variants import VARIANTS
from kgmm.evaluation.kge import training_triples
from kgmm.evaluation.probe import LinearProbe
from kgmm.evaluation.protocol import ProtocolOptions, prepare
from kgmm.evaluation.splits import held_out_split
from kgmm.schema import EdgeKind
from kgmm.text import train_wordpiece


@pytest.fixture(scope="module")
def prepared():
    return prepare(example_snapshot(), ProtocolOptions(config=tiny_config(), test_fraction=0.15, val_fraction=0.15))


@pytest.fixture(scope="module")
def tokenizer():
    snapshot = example_snapshot()
    return train_wordpiece([t for pair in zip(snapshot.titles, snapshot.descriptions) for t in pair], 3000)


def keys(triples: np.ndarray) -> set[tuple[int, int, int]]:
    return {tuple(t) for t in np.asarray(triples).reshape(-1, 3).tolist()}


def test_held_out_triples_never_reach_training(prepared, tokenizer) -> None:
    held = keys(prepared.split.held_out)
    assert len(held) == len(prepared.test) + len(prepared.val) > 0
    held_pairs = {(p, v) for p, _, v in held}
    train = prepared.train_snapshot
    train_triples = np.stack([train.edge_product, train.edge_attribute, train.edge_value], 1)
    assert not held & keys(train_triples)
    assert len(keys(train_triples)) + len(held) == prepared.snapshot.num_edges
    held_products = sorted({p for p, _ in held_pairs})
    with one_thread():
        for view in VARIANTS.values():
            data = ViewData(train, tokenizer, tiny_config(), 4, view)
            # the tables batches are made from: facts, the negatives' filter
            known_product = np.repeat(np.arange(data.num_products), np.diff(data.known_ptr.numpy()))
            assert not held & keys(np.stack([known_product, data.known_attribute.numpy(), data.known_value.numpy()], 1))
            assert not held & keys(torch.stack([data.train_product, data.train_attribute, data.train_value], 1).numpy())
            # and the batches themselves, training and evaluation, around the held-out triples' products
            for micro, start in enumerate(range(0, len(held_products), 16)):
                rows = held_products[start : start + 16]
                for train_mode in (True, False):
                    batch = data.build(rows, batch_generator(0, 0, micro), train=train_mode)
                    products = batch.products[batch.lpm_row].tolist()
                    assert not held & set(zip(products, batch.lpm_attribute.tolist(), batch.lpm_value.tolist()))
                    seen = {(rows[i], int(batch.kv_value[i, k])) for i, k in batch.kv_mask.nonzero().tolist()}
                    src, dst = batch.edge_index
                    for kind, product, value in ((EdgeKind.VALUE_TO_PRODUCT, dst, src), (EdgeKind.PRODUCT_TO_VALUE, src, dst)):
                        edges = (batch.edge_kind == kind) & (product < len(rows))
                        seen |= {(rows[p], int(batch.node_key[v])) for p, v in zip(product[edges].tolist(), value[edges].tolist())}
                    assert not held_pairs & seen
    kge_triples, _ = training_triples(train)
    attribute_triples = kge_triples[kge_triples[:, 1] < len(train.attributes)].numpy()
    attribute_triples[:, 2] -= train.num_products
    assert keys(attribute_triples) == keys(train_triples)
    rule = MajorityPerCategory(train)
    for a in set(train.edge_attribute.tolist()):
        expected = np.bincount(train.edge_value[train.edge_attribute == a])
        seen = np.flatnonzero(expected)
        assert rule.counts_at(-1, seen).tolist() == expected[seen].tolist()


def test_split_is_seeded_stratified_and_learnable() -> None:
    snapshot = example_snapshot()
    a = held_out_split(snapshot, 0.2, 0.1, seed=3)
    b = held_out_split(snapshot, 0.2, 0.1, seed=3)
    c = held_out_split(snapshot, 0.2, 0.1, seed=4)
    assert np.array_equal(a.test, b.test) and np.array_equal(a.val, b.val) and not np.array_equal(a.test, c.test)
    train_products = set(snapshot.edge_product[a.train_mask].tolist())
    train_values = set(snapshot.edge_value[a.train_mask].tolist())
    for p, _, v in a.held_out.tolist():
        assert p in train_products and v in train_values  # every model can place the product and embed the value
    per_attribute = np.bincount(a.test[:, 1], minlength=len(snapshot.attributes))
    assert (per_attribute > 0).sum() >= 10  # many attributes, not just the largest
    assert 0.1 < a.test.shape[0] / snapshot.num_edges < 0.2


def test_filtered_ranking_and_ties(prepared) -> None:
    task = prepared.test
    for (p, a, v), candidates, t in zip(task.facts.tolist(), task.candidates, task.truth):
        assert int(candidates[t]) == v
        others = {int(w) for q, b, w in zip(prepared.snapshot.edge_product, prepared.snapshot.edge_attribute, prepared.snapshot.edge_value) if q == p and b == a} - {v}
        assert not others & set(candidates.tolist())
    perfect = [torch.nn.functional.one_hot(torch.tensor(t), c.numel()).float() for c, t in zip(task.candidates, task.truth)]
    assert task.metrics(perfect)["mrr"] == 1.0 and task.metrics(perfect)["hits@1"] == 1.0
    tied = task.random_metrics()
    assert tied["hits@1"] == 0.0 and 0 < tied["mrr"] < 1


def test_damage_is_nested_and_swaps_with_another_product(tokenizer) -> None:
    snapshot = example_snapshot()
    with one_thread():
        data = ViewData(snapshot, tokenizer, tiny_config(), 16)
    missing = {r: corrupt(data, "missing_text", r, seed=0) for r in (0.2, 0.5, 0.8, 1.0)}
    emptied = {r: {p for p in range(snapshot.num_products) if not d.titles[p] and data.titles[p]} for r, d in missing.items()}
    assert emptied[0.2] <= emptied[0.5] <= emptied[0.8] <= emptied[1.0] == {p for p in range(snapshot.num_products) if data.titles[p]}
    assert 0.3 < len(emptied[0.5]) / snapshot.num_products < 0.7
    noisy = corrupt(data, "noise_text", 1.0, seed=0)
    assert all(noisy.titles[p] != data.titles[p] or data.titles[p] == [] for p in range(snapshot.num_products) if len({tuple(t) for t in data.titles}) > 1)
    photos = corrupt(data, "noise_image", 1.0, seed=0)
    assert all(photos.images.remap[p] != p for p in range(snapshot.num_products))
    gone = corrupt(data, "missing_image", 1.0, seed=0)
    assert not any(gone.images.has_image(p) for p in range(snapshot.num_products))
    assert corrupt(data, "missing_both", 0.0, seed=0) is data
    assert touches(ModalityView(text=True, image=False, knowledge=False), "missing_text")
    assert not touches(ModalityView(text=True, image=False, knowledge=False), "noise_image")
    assert set(CONDITIONS) == {"missing_text", "missing_image", "missing_both", "noise_text", "noise_image"}


def test_knowledge_and_category_views_hide_what_they_say(tokenizer) -> None:
    snapshot = example_snapshot()
    with one_thread():
        full = ViewData(snapshot, tokenizer, tiny_config(), 16)
        batch = full.build(list(range(8)), batch_generator(0, 1), train=False)
        assert batch.kv_mask.any() and batch.edge_index.shape[1] > 0
        hidden = full.with_view(ModalityView(hide_category=True)).build(list(range(8)), batch_generator(0, 1), train=False)
        assert (hidden.node_key[:8] == -1).all() and hidden.kv_mask.equal(batch.kv_mask)
        seeds = ((hidden.edge_kind == EdgeKind.CATEGORY_TO_PRODUCT) & (hidden.edge_index[1] < 8)) | ((hidden.edge_kind == EdgeKind.PRODUCT_TO_CATEGORY) & (hidden.edge_index[0] < 8))
        assert not seeds.any()
        text_only = ViewData(snapshot, tokenizer, tiny_config(), 16, VARIANTS["text-only"]).build(list(range(8)), batch_generator(0, 1), train=False)
        assert not text_only.kv_mask.any() and text_only.edge_index.shape[1] == 0 and not text_only.image_present.any()
        assert text_only.text_present.all()


def test_majority_rule_backs_off_to_parent_categories(prepared) -> None:
    assert _lexicographic_rank(np.array([[3, 3, 1, 0], [1, 2, 5, 5]])).tolist() == [1, 0, 2, 3]
    rule = MajorityPerCategory(prepared.train_snapshot)
    metrics = prepared.test.metrics(rule.scores(prepared.test))
    assert metrics["mrr"] > prepared.test.random_metrics()["mrr"]


def test_temperature_scaling_recovers_the_temperature_and_lowers_ece() -> None:
    generator = torch.Generator().manual_seed(0)
    scores, truth = [], []
    for _ in range(600):
        logits = torch.randn(8, generator=generator) * 3
        truth.append(int(torch.multinomial(torch.softmax(logits / 2.5, 0), 1, generator=generator)))
        scores.append(logits)  # scores are 2.5x too sharp: an overconfident model
    assert abs(fit_temperature(scores, truth) - 2.5) < 0.5
    fitted = calibrate(scores, truth, "synthetic")
    assert fitted.ece_after < fitted.ece_before and fitted.nll_after < fitted.nll_before
    confidence, correct = top1(scores, truth, fitted.temperature)
    assert expected_calibration_error(confidence, correct) == pytest.approx(fitted.ece_after)


def test_linear_probe_separates_separable_classes() -> None:
    generator = torch.Generator().manual_seed(0)
    y = torch.arange(90) % 3
    x = torch.randn(90, 5, generator=generator) + torch.nn.functional.one_hot(y, 5).float() * 4
    probe = LinearProbe().fit(x[:60], y[:60])
    assert probe.accuracy(x[60:], y[60:]) > 0.9
