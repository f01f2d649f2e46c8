"""Planted noise: does ``kgmm complete``'s noise check catch wrong catalog values?

A copy of the catalog's graph gets known errors (:func:`plant_noise`): a share of the
catalog facts replaced by another value of the same attribute, half of them by a value
from another top-level category ("a router typed Ethnic"), half by one from the same
category; and brands swapped between two products (a brand the title contradicts). The
default model is trained on that noisy graph as ``kgmm pretrain`` would, calibrated on its
validation facts, and every catalog value is checked as ``kgmm complete`` checks it (its
attribute hidden, :meth:`kgmm.completion.engine.Completer.checks`). Reported: average
precision of the checks' suspicion (the likelihood ratio of the detector that ``kgmm complete``
learns from errors it plants in a sample of the catalog, :mod:`kgmm.completion.detector`)
against the planted errors, and the precision and recall of the flags at the default
thresholds; beside it the same for the ``tfidf`` classifier's probabilities, trained on the same
noisy facts and judged by the same detector, and the hand-made rule the detector replaced
(:func:`hand_rule_suspicion`) on both.

The detector plants its own errors with a recipe close to this one (a value of the attribute
from the product's top-level category or from outside it, or another product's value), so this
measures it against the kind of error it was taught; a catalog's real errors may differ.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graph_store import Snapshot, SourceCode

from ..config import Config
from ..data.split import split_edges, training_snapshot
from ..ranking import RankingTask, calibrate, fact_scores
from ..completion.detector import PROBABILITY_FLOOR, probability_wrong
from .k3m_variants import train_variant

BRAND = "brand"
"""The attribute whose values are swapped between products, when the catalog has it."""


@dataclass
class PlantedNoise:
    """A noisy copy of a snapshot and what was planted.

    Attributes:
        snapshot: the graph with the planted values (same ids; edges re-sorted as stored).
        planted: [K, 3] (product, attribute, planted value) of each planted error.
        kinds: [K] "other category", "same category" or "swapped brand".
    """

    snapshot: Snapshot
    planted: np.ndarray
    kinds: list[str]

    def kind(self, product: int, attribute: int, value: int) -> str | None:
        """The kind of the error planted as (product, attribute, value); None: not planted."""
        return self._kinds.get((product, attribute, value))

    def is_planted(self, product: int, attribute: int, value: int) -> bool:
        return (product, attribute, value) in self._kinds

    def __post_init__(self) -> None:
        self._kinds = {tuple(row): kind for row, kind in zip(self.planted.tolist(), self.kinds)}


def plant_noise(snapshot: Snapshot, rate: float = 0.02, seed: int = 0) -> PlantedNoise:
    """Replace ``rate`` of the catalog facts (attributes with two or more values) and swap the
    brands of ``rate / 2`` of the products that have one, deterministically from ``seed``."""
    rng = np.random.default_rng(seed)
    top = snapshot.product_top_category.tolist()
    values = snapshot.edge_value.copy()
    product, attribute = snapshot.edge_product, snapshot.edge_attribute
    catalog = snapshot.edge_source == SourceCode.CATALOG
    per_attribute = np.bincount(snapshot.value_attribute, minlength=len(snapshot.attributes))
    brand = snapshot.attributes.index(BRAND) if BRAND in snapshot.attributes else -1
    eligible = np.flatnonzero(catalog & (per_attribute[attribute] >= 2) & (attribute != brand))
    owned = {(int(p), int(v)) for p, v in zip(product, values)}
    top_of_value: dict[int, set[int]] = {}
    for p, v in zip(product.tolist(), values.tolist()):
        top_of_value.setdefault(v, set()).add(top[p])
    planted, kinds = [], []
    chosen = eligible[rng.permutation(eligible.size)[: round(rate * eligible.size)]]
    for i, edge in enumerate(chosen.tolist()):
        p, a, old = int(product[edge]), int(attribute[edge]), int(values[edge])
        other = i % 2 == 0  # half from another top-level category, half from the same
        pool = [v for v in np.flatnonzero(snapshot.value_attribute == a).tolist()
                if v != old and (p, v) not in owned and ((top[p] not in top_of_value.get(v, ())) if other else (top[p] in top_of_value.get(v, ())))]
        if not pool:
            continue
        new = pool[int(rng.integers(len(pool)))]
        values[edge] = new
        owned.discard((p, old))
        owned.add((p, new))
        planted.append((p, a, new))
        kinds.append("other category" if other else "same category")
    if brand >= 0:
        edges = np.flatnonzero(catalog & (attribute == brand))
        edges = edges[rng.permutation(edges.size)]
        pairs = round(rate / 2 * edges.size)
        for first, second in zip(edges[: 2 * pairs : 2].tolist(), edges[1 : 2 * pairs : 2].tolist()):
            p1, p2, v1, v2 = int(product[first]), int(product[second]), int(values[first]), int(values[second])
            if v1 == v2 or (p1, v2) in owned or (p2, v1) in owned:
                continue
            values[first], values[second] = v2, v1
            owned -= {(p1, v1), (p2, v2)}
            owned |= {(p1, v2), (p2, v1)}
            planted += [(p1, brand, v2), (p2, brand, v1)]
            kinds += ["swapped brand", "swapped brand"]
    order = np.lexsort((values, product))  # the store's edge order: (product, value)
    noisy = dataclasses.replace(snapshot, edge_product=product[order], edge_attribute=attribute[order], edge_value=values[order],
                                edge_source=snapshot.edge_source[order], edge_score=snapshot.edge_score[order])
    return PlantedNoise(noisy, np.array(planted, dtype=np.int64).reshape(-1, 3), kinds)


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """Average precision of ranking by ``scores`` (higher: more suspect) against ``positive``."""
    if not positive.any():
        return 0.0
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(positive, scores))


def flag_metrics(suspicion: np.ndarray, flagged: np.ndarray, positive: np.ndarray) -> dict:
    """AP of the suspicion scores; precision and recall of the flags at the default thresholds."""
    hits = int((flagged & positive).sum())
    return {"average_precision": round(average_precision(suspicion, positive), 4), "flags": int(flagged.sum()),
            "flagged_planted": hits, "precision": round(hits / max(int(flagged.sum()), 1), 4),
            "recall": round(hits / max(int(positive.sum()), 1), 4), "checked": int(positive.size), "planted": int(positive.sum())}


def hand_rule_suspicion(probability, judgeable, text) -> np.ndarray:
    """The hand-made rule the detector replaced (kept as a baseline): the log-odds that a value is
    wrong from its probability when the catalog shows it elsewhere (else 0), plus the text's
    log likelihood ratio (:meth:`kgmm.completion.mentions.Mentions.log_ratio`)."""
    p = np.clip(probability, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    return np.where(judgeable, np.log1p(-p) - np.log(p), 0.0) + text


def hand_rule_flags(probability, best_probability, judgeable, named, threshold: float = 0.05, suggestion: float = 0.5) -> np.ndarray:
    """The hand-made rule's flags: a value seen elsewhere, not named by the text, below
    ``threshold`` while another value reaches ``suggestion``."""
    return (np.asarray(judgeable, dtype=bool) & ~np.asarray(named, dtype=bool) & (np.asarray(probability) < threshold)
            & (np.asarray(best_probability) >= suggestion))


def evaluate_noise(snapshot: Snapshot, config: Config, tokenizer, out_dir: Path, rate: float, seed: int, callbacks=None) -> dict:
    """Plant noise, train the default model on it, and measure its flags and the tfidf baseline's."""
    from ..completion.engine import Completer, CompletionOptions

    start = time.perf_counter()
    noise = plant_noise(snapshot, rate, seed)
    noisy = noise.snapshot
    t = config.train
    split = split_edges(noisy, t.val_fraction, t.max_val, t.seed, t.min_val)
    val = RankingTask.build(noisy, split.val)
    trained = train_variant("k3m", training_snapshot(noisy, split.train_mask), noisy, tokenizer, config, out_dir / "models" / "noise", val,
                            callbacks)
    device = next(trained.model.parameters()).device
    calibration = calibrate(fact_scores(trained.model, trained.data, val, device, t.eval_batch_size), val.truth, "noise run validation")
    report = measure_flags(Completer(trained.model, noisy, calibration, CompletionOptions(seed=seed), device), noise)
    report.update(rate=rate, train_steps=trained.steps, seconds=round(time.perf_counter() - start, 1))
    return report


def measure_flags(completer, noise: PlantedNoise) -> dict:
    """Every catalog value of the noisy graph checked by ``completer`` (a model trained on it), and
    the flags' AP, precision and recall against the planted errors, beside the baselines'."""
    options, noisy, seed = completer.options, noise.snapshot, completer.options.seed
    checks = []
    for first in range(0, noisy.num_products, options.batch_size):
        checks += completer.checks(list(range(first, min(first + options.batch_size, noisy.num_products))))
    positive = np.array([noise.is_planted(c.product, c.attribute, c.value) for c in checks], dtype=bool)
    ratio = np.array([c.ratio for c in checks])
    k3m = flag_metrics(ratio, np.array([c.flagged(options) for c in checks]), positive)
    probability, best, judgeable, named, text = (np.array([getattr(c, name) for c in checks])
                                                 for name in ("probability", "best_probability", "judgeable", "named", "text"))
    report = {"planted": _count(noise.kinds), "k3m": k3m,
              "k3m_error_rate": {str(r): flag_metrics(ratio, probability_wrong(ratio, r) >= options.flag_min, positive)
                                 for r in (options.error_rate / 2, options.error_rate * 2.5)},
              "k3m_hand_rule": flag_metrics(hand_rule_suspicion(probability, judgeable, text),
                                            hand_rule_flags(probability, best, judgeable, named), positive)}
    report.update(_tfidf_rows(completer, noisy, checks, positive, seed))
    report["text_alone"] = flag_metrics(text, np.zeros(len(checks), dtype=bool), positive)  # a rule with no model: ranks, never flags
    flagged = [c for c in checks if c.flagged(options)]
    report["caught_by_k3m"] = {kind: sum(noise.kind(c.product, c.attribute, c.value) == kind for c in flagged) for kind in report["planted"]}
    report["detector_examples"] = dict(zip(("catalog", "planted"), completer.detector.examples))
    report["thresholds"] = {"error_rate": options.error_rate, "flag_min": options.flag_min}
    return report


def _count(kinds: list[str]) -> dict[str, int]:
    return {kind: sum(1 for k in kinds if k == kind) for kind in sorted(set(kinds))}


def _tfidf_rows(completer, noisy: Snapshot, checks: list, positive: np.ndarray, seed: int) -> dict:
    """The tfidf classifier, trained on the same noisy facts, judged by the same detector (learnt
    from its own probabilities and the same plantings) and by the hand-made rule."""
    from ..completion.detector import Plantings, learn
    from .tfidf import TextClassifier, product_texts, tfidf_features, training_rows

    options = completer.options
    features = tfidf_features(product_texts(noisy))
    classifier = TextClassifier.fit(features, training_rows(features, noisy, {c.attribute for c in checks}), C=10.0, seed=seed)
    pairs = _baseline_pairs(classifier, features, completer, checks)
    detector = learn(_sampled(pairs, noisy.num_products), completer.features, Plantings(noisy, completer.features.counts), seed)
    rows = [completer.features.catalog_row(pair) for pair in pairs]
    ratio = detector.log_ratio(np.array([row for row, _, _ in rows]))
    own = np.array([pair.probability_of(pair.value) for pair in pairs])
    best = np.array([b for _, _, b in rows])
    judgeable, named, text = (np.array([getattr(c, name) for c in checks]) for name in ("judgeable", "named", "text"))
    return {"tfidf": flag_metrics(ratio, probability_wrong(ratio, options.error_rate) >= options.flag_min, positive),
            "tfidf_hand_rule": flag_metrics(hand_rule_suspicion(own, judgeable, text), hand_rule_flags(own, best, judgeable, named), positive),
            # the classifier's probability alone: the text's word helps K3M's sharp probabilities and can hurt a classifier's softer ones
            "tfidf_probability_only": flag_metrics(hand_rule_suspicion(own, judgeable, 0.0), hand_rule_flags(own, best, judgeable, False), positive),
            # ranked by its probability alone, every value judged (the memorised planted values then rank by how little it believes them)
            "tfidf_low_probability": flag_metrics(-own, hand_rule_flags(own, best, True, False), positive)}


def _sampled(pairs: list, products: int) -> list:
    """The pairs of the products a completer's detector learns from (:func:`sample_products`)."""
    from ..completion.detector import sample_products

    sample = set(sample_products(products))
    return [pair for pair in pairs if pair.product in sample]


def _baseline_pairs(classifier, features, completer, checks) -> list:
    """Each check's (product, attribute) scored by the tfidf classifier over the values it knows."""
    from ..completion.detector import ScoredPair

    out = []
    for c in checks:
        classes, logp = classifier.log_probabilities(features.rows[[c.product]], c.attribute)
        probs = np.exp(logp[0]) if classes.size else np.zeros(0)
        own = frozenset(v for v, _ in completer.facts[c.product][c.attribute])
        out.append(ScoredPair(c.product, c.attribute, classes, probs, own, c.value))
    return out
