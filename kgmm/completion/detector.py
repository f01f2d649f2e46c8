"""Is a catalog value wrong? A detector learnt from the catalog itself, by planting errors in it.

Why: a noise check gives the model's probability of the catalog value with its attribute
hidden, but "improbable" is not "wrong". A width of 15 cm among a hundred widths, a brand the
catalog shows once, a value the text half names: each scores low and is right, and a fixed
rule over the probability (a threshold, its log-odds plus what the text says) ranked them
among the errors (``docs/EVALUATION.md``: average precision 0.45 on Flipkart's planted noise).
What separates a wrong value from an unusual right one depends on the catalog and the model,
so it is learnt, from errors kgmm plants itself:

* a deterministic sample of the catalog's checks (blocks of products spread over the catalog,
  about :data:`SAMPLE_PRODUCTS`: every shard of a run fits the same detector, :func:`sample_products`) gives, for each
  checked (product, attribute), the model's probability of every candidate value;
* its catalog value is an example of a value *as the catalog has them* (mostly right, the
  catalog's own errors among them);
* values planted in its place are examples of a *wrong* one (:func:`planted_values`): one the
  product's top-level category shows on other products (a confusion within the category), one
  it never shows (a row filed under the wrong category), and the value of another product's
  fact of the attribute (values exchanged between two rows: the catalog's count of the value
  unchanged);
* both are described by the same features (:class:`ValueFeatures`: the probability and the
  best alternative's, how often the catalog shows the value, whether and how much of it the
  text names, whether the text names another value of the attribute instead), and a small
  gradient-boosted classifier (scikit-learn's ``HistGradientBoostingClassifier``,
  deterministic) separates them, the two classes weighted equally.

Its odds are then the likelihood ratio ``r(x) = f_wrong(x) / f_catalog(x)``, and with an
assumed share ``pi`` of wrong values in the catalog, ``P(wrong | x) = pi * r(x)`` (learning
from positives and the unlabelled catalog; capped at 1). ``pi`` is an assumption the user
states (``kgmm complete --error-rate``), not a measurement; a flag asks ``P(wrong)`` of at
least ``--flag-min``, so that flags are right about that often when the assumption holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from graph_store import Snapshot, SourceCode

from ..data.tokens import CHUNK as TOKEN_CHUNK

from .mentions import Mentions

SAMPLE_PRODUCTS = 2000
"""About this many products (blocks spread over the catalog, :func:`sample_products`) teach the detector."""
PLANTED_PER_KIND = 1
"""Values of each kind planted per sampled catalog value (2 measured no better on Flipkart)."""
MIN_EXAMPLES = 50
"""Fewer catalog values or planted ones than this: nothing to learn from, nothing is flagged."""
PROBABILITY_FLOOR = 1e-6
"""Probabilities are read as at least this (and at most 1 minus it) when logged."""
FEATURES = ("log_probability", "log_complement", "log_best_other", "seen_elsewhere", "named", "text_ratio", "log_count",
            "log_candidates", "naming_rate", "word_share", "other_named_overlaps", "other_named_disjoint", "others_named",
            "log_share_in_top_category", "unseen_in_top_category", "log_share_in_category", "unseen_in_category")
"""What the detector reads of a value (one column each, :meth:`ValueFeatures.row`)."""
SEEN_ELSEWHERE, NAMED, TEXT_RATIO = (FEATURES.index(name) for name in ("seen_elsewhere", "named", "text_ratio"))


def sample_products(num_products: int, block: int = TOKEN_CHUNK) -> list[int]:
    """The products whose checks teach the detector: all of them up to :data:`SAMPLE_PRODUCTS`;
    beyond, every ``k``-th block of ``block`` consecutive products, spread over the catalog (so
    every shard of a run, and every run on the same store, learns from the same). Why blocks: the
    token tables tokenise a chunk of products at a time (:mod:`kgmm.data.tokens`), and a sample
    strided over single products tokenised 256 texts for each (28 of a 1M shard's 114 s)."""
    if num_products <= SAMPLE_PRODUCTS:
        return list(range(num_products))
    blocks = -(-num_products // block)
    stride = -(-blocks // -(-SAMPLE_PRODUCTS // block))
    return [p for start in range(0, num_products, stride * block) for p in range(start, min(start + block, num_products))]


@dataclass(frozen=True)
class ScoredPair:
    """One checked (product, attribute): a model's probability of each candidate value.

    Attributes:
        product, attribute: snapshot indices.
        candidates: [M] value ids; probabilities: [M] over them.
        own: the product's values of the attribute (any source).
        value: the checked catalog value.
    """

    product: int
    attribute: int
    candidates: np.ndarray
    probabilities: np.ndarray
    own: frozenset[int]
    value: int

    def best_other(self, excluded: frozenset[int] | set[int]) -> tuple[int, float]:
        """The most probable candidate not in ``excluded`` (ties: the highest value id); (-1, -1.0) if none."""
        keep = ~np.isin(self.candidates, list(excluded)) if excluded else np.ones(self.candidates.size, dtype=bool)
        if not keep.any():
            return -1, -1.0
        probs = np.where(keep, self.probabilities, -1.0)
        top = probs.max()
        return int(self.candidates[probs == top].max()), float(top)

    def probability_of(self, value: int) -> float:
        where = np.flatnonzero(self.candidates == value)
        return float(self.probabilities[where[0]]) if where.size else 0.0


class CategoryCounts:
    """How many catalog facts each (category, value) and (category, attribute) has, for the
    product's top-level category and its own; sorted keys and counts, looked up by binary search."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.values, self.attributes = len(snapshot.values), len(snapshot.attributes)
        catalog = snapshot.edge_source == SourceCode.CATALOG
        product, value = snapshot.edge_product[catalog], snapshot.edge_value[catalog]
        attribute = snapshot.value_attribute[value]
        self.category = {"top": snapshot.product_top_category, "own": snapshot.product_category.astype(np.int64)}
        self._tables = {}
        for level, category in self.category.items():
            c = category[product] + 1
            self._tables[level] = (np.unique(c * self.values + value, return_counts=True),
                                   np.unique(c * self.attributes + attribute, return_counts=True))

    @staticmethod
    def _lookup(table: tuple[np.ndarray, np.ndarray], keys: np.ndarray) -> np.ndarray:
        sorted_keys, counts = table
        if not sorted_keys.size:
            return np.zeros(len(keys), dtype=np.int64)
        at = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
        return np.where(sorted_keys[at] == keys, counts[at], 0)

    def value_counts(self, level: str, product: int, values: np.ndarray) -> np.ndarray:
        """[len(values)] catalog facts with each value in ``product``'s category at ``level``."""
        keys = (self.category[level][product] + 1) * self.values + np.asarray(values, dtype=np.int64)
        return self._lookup(self._tables[level][0], keys)

    def attribute_count(self, level: str, product: int, attribute: int) -> int:
        key = np.array([(self.category[level][product] + 1) * self.attributes + attribute])
        return int(self._lookup(self._tables[level][1], key)[0])


class ValueFeatures:
    """The features of a value for a product (:data:`FEATURES`), whether the catalog's or planted."""

    def __init__(self, snapshot: Snapshot, mentions: Mentions, value_count: np.ndarray, counts: CategoryCounts | None = None) -> None:
        self.snapshot, self.mentions, self.value_count = snapshot, mentions, value_count
        self.counts = counts or CategoryCounts(snapshot)
        self.candidates_per_attribute = np.bincount(snapshot.value_attribute, minlength=len(snapshot.attributes))

    def row(self, product: int, attribute: int, value: int, probability: float, best_probability: float, count: int,
            own: bool = True) -> list[float]:
        """``count``: the facts the catalog has of ``value`` (with this one, planted or not);
        ``own``: the catalog has this fact (so the category counts leave it out)."""
        p = min(max(probability, PROBABILITY_FLOOR), 1 - PROBABILITY_FLOOR)
        m = self.mentions
        named = m.named(product, value)
        others = [u for u in m.named_values(product) if u != value and self.snapshot.value_attribute[u] == attribute]
        words = m.value_words(value)
        overlaps = any(m.value_words(u) & words for u in others)
        return [math.log(p), math.log1p(-p), math.log(max(best_probability, PROBABILITY_FLOOR)), float(count >= 2), float(named),
                m.log_ratio(attribute, named), math.log(max(count, 1)), math.log(max(int(self.candidates_per_attribute[attribute]), 1)),
                float(m.rate[attribute]), m.word_share(product, value), float(overlaps), float(bool(others) and not overlaps),
                float(min(len(others), 3)), *self._category_terms(product, attribute, value, own)]

    def _category_terms(self, product: int, attribute: int, value: int, own: bool) -> list[float]:
        """Per level (top-level category, own category): the log share of the attribute's other
        facts there that have the value, and whether none has it."""
        out = []
        for level in ("top", "own"):
            shown = int(self.counts.value_counts(level, product, np.array([value]))[0]) - int(own)
            facts = self.counts.attribute_count(level, product, attribute) - 1  # the checked fact's slot left out
            out += [math.log((shown + 0.5) / (max(facts, 0) + 1.0)), float(shown <= 0)]
        return out

    def catalog_row(self, pair: ScoredPair) -> tuple[list[float], int, float]:
        """The checked value's features, and the best other value the product does not have."""
        best, best_probability = pair.best_other(pair.own)
        return (self.row(pair.product, pair.attribute, pair.value, pair.probability_of(pair.value), best_probability,
                         int(self.value_count[pair.value])), best, best_probability)

    def planted_rows(self, pair: ScoredPair, planted: list[tuple[int, int]]) -> list[list[float]]:
        """Features of each (value, count change) planted in place of ``pair.value``: the value it
        replaced is no longer the product's, so it may be the best alternative."""
        rows = []
        for value, added in planted:
            _, best_probability = pair.best_other((pair.own - {pair.value}) | {value})
            rows.append(self.row(pair.product, pair.attribute, value, pair.probability_of(value), best_probability,
                                 int(self.value_count[value]) + added, own=False))
        return rows


class Plantings:
    """Where planted values come from: which top-level categories show each value, and each
    attribute's catalog facts (for exchanged values)."""

    def __init__(self, snapshot: Snapshot, counts: CategoryCounts) -> None:
        self.counts = counts
        catalog = snapshot.edge_source == SourceCode.CATALOG
        order = np.argsort(snapshot.edge_attribute[catalog], kind="stable")
        self._facts = snapshot.edge_value[catalog][order]
        self._ptr = np.searchsorted(snapshot.edge_attribute[catalog][order], np.arange(len(snapshot.attributes) + 1))

    def planted_values(self, pair: ScoredPair, rng: np.random.Generator) -> list[tuple[int, int]]:
        """Up to three wrong values for ``pair`` (:mod:`.detector`), as (value, count change): one the
        top-level category shows, one it does not (each a new fact: count + 1) and another
        product's value of the attribute (exchanged: count unchanged)."""
        others = pair.candidates[~np.isin(pair.candidates, list(pair.own))]
        out = []
        if others.size:
            shown = self.counts.value_counts("top", pair.product, others) > 0
            for pool in (others[shown], others[~shown]):
                if pool.size:
                    out += [(int(v), 1) for v in pool[rng.integers(pool.size, size=PLANTED_PER_KIND)]]
        start, end = self._ptr[pair.attribute], self._ptr[pair.attribute + 1]
        if end > start:
            candidates = set(pair.candidates.tolist())
            for exchanged in self._facts[start + rng.integers(end - start, size=PLANTED_PER_KIND)].tolist():
                if exchanged not in pair.own and exchanged in candidates:
                    out.append((exchanged, 0))
        return out


class WrongValueDetector:
    """``P(wrong | features)`` of a catalog value (:mod:`.detector`); ``None`` model: too little
    to learn from, every value at the assumed error rate."""

    def __init__(self, model=None, examples: tuple[int, int] = (0, 0)) -> None:
        self.model = model
        self.examples = examples
        """(catalog values, planted values) it learnt from."""

    @classmethod
    def fit(cls, catalog: np.ndarray, planted: np.ndarray, seed: int = 0) -> WrongValueDetector:
        """Learn catalog rows [n, F] against planted rows [m, F], the classes weighted equally."""
        if len(catalog) < MIN_EXAMPLES or len(planted) < MIN_EXAMPLES:
            return cls(None, (len(catalog), len(planted)))
        from sklearn.ensemble import HistGradientBoostingClassifier

        x = np.vstack([catalog, planted])
        y = np.r_[np.zeros(len(catalog)), np.ones(len(planted))]
        weight = np.r_[np.ones(len(catalog)), np.full(len(planted), len(catalog) / len(planted))]
        model = HistGradientBoostingClassifier(max_depth=3, learning_rate=0.05, max_iter=200, l2_regularization=1.0,
                                               early_stopping=False, random_state=seed)
        model.fit(x, y, sample_weight=weight)
        return cls(model, (len(catalog), len(planted)))

    def log_ratio(self, rows: np.ndarray) -> np.ndarray:
        """[n] log ``r(x)``: how much more typical of a planted value than of the catalog's values
        (0 without a model). Ranks checks by suspicion whatever the assumed error rate."""
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, len(FEATURES))
        if self.model is None or not len(rows):
            return np.zeros(len(rows))
        p = np.clip(self.model.predict_proba(rows)[:, 1], PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
        return np.log(p) - np.log1p(-p)

    def probability_wrong(self, rows: np.ndarray, error_rate: float) -> np.ndarray:
        """[n] ``P(wrong)`` of feature ``rows`` (:func:`probability_wrong`)."""
        return probability_wrong(self.log_ratio(rows), error_rate)


def probability_wrong(log_ratio: np.ndarray, error_rate: float) -> np.ndarray:
    """``P(wrong) = min(1, error_rate * r(x))`` from the detector's log ratios (:mod:`.detector`)."""
    return np.minimum(1.0, error_rate * np.exp(np.asarray(log_ratio, dtype=np.float64)))


def learn(pairs: list[ScoredPair], features: ValueFeatures, plantings: Plantings, seed: int = 0) -> WrongValueDetector:
    """A detector from checked pairs: each catalog value against the values planted in its place
    (drawn from a generator seeded by ``seed``, in the pairs' order: the same pairs give the same
    detector)."""
    rng = np.random.default_rng(seed)
    catalog, planted = [], []
    for pair in pairs:
        catalog.append(features.catalog_row(pair)[0])
        planted += features.planted_rows(pair, plantings.planted_values(pair, rng))
    width = len(FEATURES)
    return WrongValueDetector.fit(np.array(catalog).reshape(-1, width), np.array(planted).reshape(-1, width), seed)
