"""The wrong-value detector (kgmm.completion.detector): what it plants, what it reads, what it learns.

Why: a flag claims "this catalog value is probably wrong". That is only as good as (1) the
errors the detector is taught with really being wrong values of the promised kinds, (2) the
features of a planted value being computed as those of a catalog value would be had it been
planted (the replaced value free to be the best alternative, the count one higher), and (3) the
classifier actually separating them, which the end-to-end test checks on errors planted by
:func:`kgmm.evaluation.noise.plant_noise` in the example catalog, judged by a really trained model.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graph_store import SourceCode
from kgmm.completion import CompletionOptions
from kgmm.completion.alignment import align_snapshot
from kgmm.completion.detector import (FEATURES, MIN_EXAMPLES, CategoryCounts, Plantings, ScoredPair, ValueFeatures,
                                      WrongValueDetector, sample_products)
from kgmm.completion.engine import Completer
from kgmm.completion.mentions import MAX_PHRASE_WORDS, Mentions, phrase
from kgmm.evaluation.noise import average_precision, plant_noise
from kgmm.model import K3M
from kgmm.ranking import Calibration
from tests.kgmm.completion.trained_model import trained_model
from tests.kgmm.k3m_testing import example_snapshot, one_thread


@pytest.fixture(scope="module")
def snapshot():
    return example_snapshot()


def test_the_text_index_finds_exactly_the_values_a_phrase_match_names(snapshot) -> None:
    mentions = Mentions(snapshot)
    short = [v for v, (_, name) in enumerate(snapshot.values) if len(phrase(name).split()) <= MAX_PHRASE_WORDS]
    found_any = False
    for p in range(snapshot.num_products):
        listed = mentions.named_values(p)
        assert listed == {v for v in short if mentions.named(p, v)}
        found_any |= bool(listed)
    assert found_any
    p, v = next((p, v) for p in range(snapshot.num_products) for v in mentions.named_values(p))
    assert mentions.word_share(p, v) == 1.0


def test_best_other_excludes_what_it_is_told_and_breaks_ties_by_the_highest_id() -> None:
    pair = ScoredPair(0, 0, np.array([3, 5, 7, 9]), np.array([0.4, 0.1, 0.4, 0.1]), frozenset({3}), 3)
    assert pair.best_other(frozenset({3})) == (7, 0.4)
    assert pair.best_other(set()) == (7, 0.4)  # 3 and 7 tie: the highest id
    assert pair.best_other({3, 7}) == (9, pytest.approx(0.1))
    assert pair.best_other({3, 5, 7, 9}) == (-1, -1.0)
    assert pair.probability_of(5) == pytest.approx(0.1) and pair.probability_of(4) == 0.0


def test_planted_values_are_wrong_and_of_the_three_kinds(snapshot) -> None:
    counts = CategoryCounts(snapshot)
    plantings = Plantings(snapshot, counts)
    rng = np.random.default_rng(0)
    top = snapshot.product_top_category
    seen = {"shown": 0, "not shown": 0, "exchanged": 0}
    catalog = snapshot.edge_source == SourceCode.CATALOG
    for edge in np.flatnonzero(catalog)[::7].tolist():
        p, a, v = int(snapshot.edge_product[edge]), int(snapshot.edge_attribute[edge]), int(snapshot.edge_value[edge])
        candidates = np.flatnonzero(snapshot.value_attribute == a)
        start, end = snapshot.edge_ptr[p], snapshot.edge_ptr[p + 1]
        own = frozenset(snapshot.edge_value[start:end][snapshot.edge_attribute[start:end] == a].tolist())
        pair = ScoredPair(p, a, candidates, np.full(candidates.size, 1.0 / candidates.size), own, v)
        for value, added in plantings.planted_values(pair, rng):
            assert value not in own and snapshot.value_attribute[value] == a  # wrong, and a value of the attribute
            elsewhere = {int(q) for q in snapshot.edge_product[(snapshot.edge_value == value) & catalog]}
            if added == 0:
                seen["exchanged"] += 1
                assert elsewhere  # another product's value
            else:
                shown = any(top[q] == top[p] for q in elsewhere)
                seen["shown" if shown else "not shown"] += 1
    assert all(n > 0 for n in seen.values()), seen


def test_category_counts_leave_the_checked_fact_out(snapshot) -> None:
    counts = CategoryCounts(snapshot)
    features = ValueFeatures(snapshot, Mentions(snapshot), np.bincount(snapshot.edge_value, minlength=len(snapshot.values)), counts)
    edge = int(np.flatnonzero(snapshot.edge_source == SourceCode.CATALOG)[0])
    p, a, v = int(snapshot.edge_product[edge]), int(snapshot.edge_attribute[edge]), int(snapshot.edge_value[edge])
    same_top = snapshot.product_top_category[snapshot.edge_product] == snapshot.product_top_category[p]
    mask = (snapshot.edge_source == SourceCode.CATALOG) & same_top
    assert counts.value_counts("top", p, np.array([v]))[0] == int((mask & (snapshot.edge_value == v)).sum())
    assert counts.attribute_count("top", p, a) == int((mask & (snapshot.value_attribute[snapshot.edge_value] == a)).sum())
    as_catalog = features.row(p, a, v, 0.5, 0.5, 1, own=True)
    as_planted = features.row(p, a, v, 0.5, 0.5, 1, own=False)
    unseen = FEATURES.index("unseen_in_top_category")
    assert len(as_catalog) == len(FEATURES)
    shown_elsewhere = counts.value_counts("top", p, np.array([v]))[0] - 1
    assert as_catalog[unseen] == float(shown_elsewhere <= 0) and as_planted[unseen] == 0.0


def test_too_little_to_learn_from_flags_nothing() -> None:
    few = np.zeros((MIN_EXAMPLES - 1, len(FEATURES)))
    detector = WrongValueDetector.fit(few, np.ones((500, len(FEATURES))))
    assert detector.model is None and detector.examples == (MIN_EXAMPLES - 1, 500)
    assert detector.log_ratio(few).tolist() == [0.0] * len(few)
    np.testing.assert_allclose(detector.probability_wrong(few, 0.02), 0.02)  # every value at the assumed error rate


def test_the_detector_learns_what_separates_planted_values() -> None:
    rng = np.random.default_rng(0)
    catalog = rng.normal(size=(2000, len(FEATURES)))
    planted = rng.normal(size=(3000, len(FEATURES)))
    planted[:, 0] -= 3.0  # planted values are much less probable
    detector = WrongValueDetector.fit(catalog, planted, seed=0)
    held_catalog, held_planted = rng.normal(size=(500, len(FEATURES))), rng.normal(size=(50, len(FEATURES)))
    held_planted[:, 0] -= 3.0
    ratio = detector.log_ratio(np.vstack([held_catalog, held_planted]))
    assert average_precision(ratio, np.r_[np.zeros(500, bool), np.ones(50, bool)]) > 0.8
    assert np.array_equal(ratio, WrongValueDetector.fit(catalog, planted, seed=0).log_ratio(np.vstack([held_catalog, held_planted])))
    wrong = detector.probability_wrong(held_planted, 0.02)
    assert np.all(wrong <= 1.0) and np.all(wrong == np.minimum(1.0, 0.02 * np.exp(detector.log_ratio(held_planted))))


def test_the_sample_is_blocks_spread_over_the_catalog_and_bounded() -> None:
    assert sample_products(5) == [0, 1, 2, 3, 4]
    big = sample_products(1_000_000, block=256)
    assert 1500 <= len(big) <= 2 * 256 * 8 and big == sorted(set(big))
    starts = [p for p in big if p % 256 == 0]
    assert len(big) == 256 * len(starts)  # whole blocks
    assert starts[0] == 0 and starts[-1] > 800_000  # spread over the whole catalog (the last stride starts at 7/8)
    assert sample_products(10_001, block=256) == sample_products(10_001, block=256)


def test_planted_errors_rank_above_the_catalog_with_a_really_trained_model(snapshot) -> None:
    """End to end: errors planted in the example catalog, checked by a model trained on the clean
    one (so the errors cannot have been memorised, and the check still sees them in the graph)."""
    model = K3M.from_pretrained(trained_model()[1]).eval()
    noise = plant_noise(snapshot, rate=0.1, seed=5)
    noisy, _ = align_snapshot(noise.snapshot, model.id_maps)
    completer = Completer(model, noisy, Calibration(), CompletionOptions(seed=0), torch.device("cpu"))
    with one_thread():
        checks = completer.checks(list(range(noisy.num_products)))
    planted = np.array([noise.is_planted(c.product, c.attribute, c.value) for c in checks])
    assert 5 < planted.sum() < len(checks) / 5
    ap = average_precision(np.array([c.suspicion() for c in checks]), planted)
    assert ap > 3 * planted.mean()  # well above a random ranking's AP (the planted share)
