"""Planted noise (kgmm.evaluation.noise): what is planted, and how flags are scored.

Why: the noise table claims how many wrong catalog values the flags catch; that is only
true if the planted values really are wrong (never the product's own value, of the same
attribute, from another or the same top-level category as promised), the graph stays a
valid snapshot (one edge per product and value, sorted by product), and the metrics are
the textbook ones.
"""

from __future__ import annotations

import numpy as np
import pytest

from kgmm.evaluation.noise import BRAND, flag_metrics, hand_rule_flags, hand_rule_suspicion, plant_noise
from tests.kgmm.k3m_testing import example_snapshot


@pytest.fixture(scope="module")
def snapshot():
    return example_snapshot()


def test_planted_values_are_wrong_and_of_the_promised_kind(snapshot) -> None:
    noise = plant_noise(snapshot, rate=0.1, seed=3)
    noisy, top = noise.snapshot, snapshot.product_top_category.tolist()
    assert len(noise.planted) > 4 and len(noise.kinds) == len(noise.planted)
    original = {(p, v) for p, v in zip(snapshot.edge_product.tolist(), snapshot.edge_value.tolist())}
    where = {}
    for p, v in zip(snapshot.edge_product.tolist(), snapshot.edge_value.tolist()):
        where.setdefault(v, set()).add(top[p])
    for (p, a, v), kind in zip(noise.planted.tolist(), noise.kinds):
        assert (p, v) not in original  # never a value the product had
        assert snapshot.value_attribute[v] == a
        if kind == "other category":
            assert top[p] not in where[v]
        elif kind == "same category":
            assert top[p] in where[v]
        else:
            assert kind == "swapped brand" and snapshot.attributes[a] == BRAND
    assert {"other category", "same category"} <= set(noise.kinds)
    pairs = list(zip(noisy.edge_product.tolist(), noisy.edge_value.tolist()))
    assert len(set(pairs)) == len(pairs) == snapshot.num_edges  # one edge per (product, value), none lost
    assert np.all(np.diff(noisy.edge_product) >= 0)  # sorted by product, as batch building needs
    again = plant_noise(snapshot, rate=0.1, seed=3)
    assert np.array_equal(again.planted, noise.planted)  # deterministic


def test_flag_metrics_are_average_precision_precision_and_recall() -> None:
    suspicion = np.array([0.9, 0.8, 0.3, 0.1])
    positive = np.array([True, False, True, False])
    flagged = np.array([True, True, False, False])
    m = flag_metrics(suspicion, flagged, positive)
    assert m["average_precision"] == pytest.approx((1 / 1 + 2 / 3) / 2, abs=1e-4)
    assert (m["precision"], m["recall"], m["flags"], m["flagged_planted"]) == (0.5, 0.5, 2, 1)


def test_the_noise_run_trains_checks_and_compares_with_tfidf(snapshot, tmp_path) -> None:
    from kgmm.evaluation.noise import evaluate_noise
    from kgmm.text import train_wordpiece
    from tests.kgmm.k3m_testing import one_thread, tiny_config

    config = tiny_config(max_steps=4)
    tokenizer = train_wordpiece([t for pair in zip(snapshot.titles, snapshot.descriptions) for t in pair], config.text.vocab_size)
    with one_thread():
        result = evaluate_noise(snapshot, config, tokenizer, tmp_path, rate=0.1, seed=0)
    names = ("k3m", "k3m_hand_rule", "tfidf", "tfidf_hand_rule", "tfidf_probability_only", "tfidf_low_probability", "text_alone")
    for name in names:
        m = result[name]
        assert m["planted"] == sum(result["planted"].values())  # every planted value is checked
        assert m["checked"] > m["planted"] > 0
        assert 0.0 <= m["average_precision"] <= 1.0 and 0 <= m["flagged_planted"] <= m["flags"]
    assert result["text_alone"]["flags"] == 0  # a rule with no model ranks, never flags
    assert result["train_steps"] == 4
    from kgmm.evaluation.report import _noise_section

    table = "\n".join(_noise_section(result))
    assert all(f"| {name} |" in table for name in names)
    assert result["detector_examples"]["catalog"] == result["k3m"]["checked"]  # the example catalog is all sample


def test_the_hand_made_rule_kept_as_a_baseline() -> None:
    """The log-odds of a value's probability when the catalog shows it elsewhere, plus the text's
    ratio; flags a value seen elsewhere, not named, below 0.05 while another reaches 0.5."""
    p = np.array([0.001, 0.001, 0.001, 0.5, 0.001])
    best = np.array([0.9, 0.9, 0.9, 0.9, 0.2])
    judgeable = np.array([True, False, True, True, True])
    named = np.array([False, False, True, False, False])
    text = np.array([0.0, 2.5, -3.0, 0.0, 0.0])
    np.testing.assert_allclose(hand_rule_suspicion(p, judgeable, text),
                               [np.log(0.999 / 0.001), 2.5, np.log(0.999 / 0.001) - 3.0, 0.0, np.log(0.999 / 0.001)])
    assert hand_rule_flags(p, best, judgeable, named).tolist() == [True, False, False, False, False]

