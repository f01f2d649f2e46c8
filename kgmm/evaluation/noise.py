"""Planted noise: does ``kgmm complete``'s noise check catch wrong catalog values?

A copy of the catalog's graph gets known errors (:func:`plant_noise`): a share of the
catalog facts replaced by another value of the same attribute, half of them by a value
from another top-level category ("a router typed Ethnic"), half by one from the same
category; and brands swapped between two products (a brand the title contradicts). The
default model is trained on that noisy graph as ``kgmm pretrain`` would, calibrated on its
validation facts, and every catalog value is checked as ``kgmm complete`` checks it (its
attribute hidden, :meth:`kgmm.completion.engine.Completer.checks`). Reported: average
precision of the checks' suspicion (:func:`kgmm.completion.engine.suspicion`: the log-odds of
the catalog value's probability, none for a value the catalog shows only once, plus what the
product's text says of it, :mod:`kgmm.completion.mentions`) against the planted errors, and the
precision and recall of the flags at the default thresholds; next to the same for the ``tfidf``
classifier's probabilities, trained on the same noisy facts, under the same rule.
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
    top = _top_level(snapshot)
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


def _top_level(snapshot: Snapshot) -> list[int]:
    """Each product's top-level category (-1: none)."""
    out = []
    for c in snapshot.product_category.tolist():
        while c >= 0 and snapshot.category_parent[c] >= 0:
            c = int(snapshot.category_parent[c])
        out.append(int(c))
    return out


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


def evaluate_noise(snapshot: Snapshot, config: Config, tokenizer, out_dir: Path, rate: float, seed: int, callbacks=None) -> dict:
    """Plant noise, train the default model on it, and measure its flags and the tfidf baseline's."""
    from ..completion.engine import Completer, CompletionOptions, suspect, suspicion
    from .tfidf import TextClassifier, product_texts, tfidf_features, training_rows

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
    options = CompletionOptions(seed=seed)
    completer = Completer(trained.model, noisy, calibration, options, device)
    checks = []
    for first in range(0, noisy.num_products, options.batch_size):
        checks += completer.checks(list(range(first, min(first + options.batch_size, noisy.num_products))))
    positive = np.array([noise.is_planted(c.product, c.attribute, c.value) for c in checks], dtype=bool)
    k3m = flag_metrics(np.array([c.suspicion() for c in checks]), np.array([c.flagged(options) for c in checks]), positive)
    features = tfidf_features(product_texts(noisy))
    classifier = TextClassifier.fit(features, training_rows(features, noisy, {c.attribute for c in checks}), C=10.0, seed=seed)
    own, best = _baseline_probabilities(classifier, features, checks)
    # the same rule for the baseline: a value seen once judged by the text alone, the text's ratio added, a named value never flagged
    judgeable, named, text = (np.array([getattr(c, name) for c in checks]) for name in ("judgeable", "named", "text"))
    baseline = flag_metrics(suspicion(own, judgeable, text), suspect(own, best, judgeable, named, options), positive)
    # the baseline at its strongest: the text's word helps K3M's sharp probabilities and can hurt a classifier's softer ones
    probability_only = flag_metrics(suspicion(own, judgeable, 0.0), suspect(own, best, judgeable, False, options), positive)
    text_alone = flag_metrics(text, np.zeros(len(checks), dtype=bool), positive)  # a rule with no model: ranks, never flags
    kinds = {kind: int(sum(1 for k in noise.kinds if k == kind)) for kind in sorted(set(noise.kinds))}
    flagged = [c for c in checks if c.flagged(options)]
    caught = {kind: sum(noise.kind(c.product, c.attribute, c.value) == kind for c in flagged) for kind in kinds}
    return {"rate": rate, "planted": kinds, "caught_by_k3m": caught, "k3m": k3m, "tfidf": baseline,
            "tfidf_probability_only": probability_only, "text_alone": text_alone,
            "thresholds": {"noise_threshold": options.noise_threshold, "suggestion_min": options.suggestion_min},
            "train_steps": trained.steps, "seconds": round(time.perf_counter() - start, 1)}


def _baseline_probabilities(classifier, features, checks) -> tuple[np.ndarray, np.ndarray]:
    """The tfidf classifier's probability of each checked value and of the best other value
    (trained on the noisy facts, as the model is; a value it never saw gets 0)."""
    own, best = np.zeros(len(checks)), np.zeros(len(checks))
    for i, c in enumerate(checks):
        classes, logp = classifier.log_probabilities(features.rows[[c.product]], c.attribute)
        probs = np.exp(logp[0]) if classes.size else np.zeros(0)
        where = np.flatnonzero(classes == c.value)
        own[i] = probs[where[0]] if where.size else 0.0
        others = probs[classes != c.value]
        best[i] = others.max() if others.size else 0.0
    return own, best
