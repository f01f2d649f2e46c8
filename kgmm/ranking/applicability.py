"""Which attributes apply to a product, learned from the catalog itself and measured.

A watch has a dial shape, a cushion cover does not: completing every attribute for every
product would fill the graph with nonsense. An attribute *applies* to a product when the
products of its category have it often enough. "Its category" is estimated with backoff
down the category tree: at the root the share of all products that have the attribute,
then at each level ``(n_with + m * parent) / (n + m)`` with ``m`` = :attr:`prior_weight`
pseudo-products, so a large leaf speaks for itself, a small leaf leans on its parent, and a
leaf of five LED bulbs none of which has a mug capacity does not inherit the mug capacity of
the kitchen category above it.

How often is "often enough" is measured, not fixed: a seeded tenth of the products is held
out, the estimates are computed from the rest, and the threshold with the best F1 for "the
product has this attribute" on the held-out products is kept, with its precision and recall
(:attr:`Applicability.measured`). ``min_coverage`` overrides it.

Attributes that cannot be predicted are never proposed: those with fewer than two values
(nothing to choose) and identifier-like ones whose values are nearly unique per product
(model numbers, names), which no model can guess and no analyst wants guessed.
"""

from __future__ import annotations

import numpy as np

from graph_store import Snapshot

THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.05), 2)
"""Coverage thresholds tried when measuring."""

PAIR_CHUNK = 1 << 20
"""(product, attribute) pairs counted at a time: the counts are sums, so chunking changes nothing
but the size of the temporaries."""


def product_attribute_pairs(snapshot: Snapshot, num_attributes: int) -> np.ndarray:
    """The sorted distinct keys ``product * num_attributes + attribute`` of the snapshot's facts.

    A store's snapshot orders its facts by product and then value, and values are numbered in
    attribute order, so the keys come sorted: their distinct ones are read off in one pass with
    one ``[E]`` array, where ``np.unique`` sorted a copy beside three temporaries (589 MiB at the
    end of a 1M-product pretraining, its peak of memory). Keys out of order (a snapshot renumbered
    elsewhere) still go through ``np.unique``: the same answer either way.
    """
    keys = np.multiply(snapshot.edge_product, num_attributes, dtype=np.int64)
    np.add(keys, snapshot.edge_attribute, out=keys, casting="unsafe")
    if keys.size == 0 or not bool(np.all(keys[1:] >= keys[:-1])):
        return np.unique(keys)
    first = np.empty(keys.size, dtype=bool)
    first[0] = True
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    return keys[first]


class Applicability:
    """Backed-off attribute coverage per category, from a snapshot's facts.

    Args:
        snapshot: the graph (catalog and text facts).
        min_coverage: estimated share of a product's category that must have an attribute
            for it to apply; None measures it on held-out products.
        prior_weight: pseudo-products of the parent's estimate at each level of the tree.
        max_distinct: attributes with more distinct values than this share of the
            products having them are identifier-like and left out.
        holdout: share of products held out to measure the threshold.
        seed: seeds the hold-out.
    """

    def __init__(self, snapshot: Snapshot, min_coverage: float | None = None, prior_weight: float = 5.0, max_distinct: float = 0.5,
                 holdout: float = 0.1, seed: int = 0) -> None:
        self.snapshot, self.prior_weight = snapshot, prior_weight
        num_attributes = self.num_attributes = max(len(snapshot.attributes), 1)
        # which attributes each product has: the sorted unique keys product * A + attribute (no
        # Python set per product: at a million products those were gigabytes and a minute)
        self.pairs = product_attribute_pairs(snapshot, num_attributes)
        values = np.bincount(snapshot.value_attribute, minlength=len(snapshot.attributes))
        products = np.bincount(self.pairs % num_attributes, minlength=len(snapshot.attributes))
        self.predictable = (values >= 2) & (values <= max_distinct * np.maximum(products, 1))  # [A] bool
        everyone = np.arange(snapshot.num_products)
        self.measured: dict[str, float] = {}
        if min_coverage is None:
            min_coverage = self._measure(holdout, seed)
        self.min_coverage = float(min_coverage)
        self._estimates = self._estimator(everyone)
        self._applies: dict[int, list[int]] = {}

    def has(self, product: int) -> set[int]:
        """The attributes ``product`` has a fact for."""
        start, end = np.searchsorted(self.pairs, [product * self.num_attributes, (product + 1) * self.num_attributes])
        return set((self.pairs[start:end] % self.num_attributes).tolist())

    def _estimator(self, members: np.ndarray):
        """A function category -> {attribute: backed-off coverage} from the products ``members``."""
        A, C = self.num_attributes, len(self.snapshot.categories)
        member = np.zeros(self.snapshot.num_products, dtype=bool)
        member[members] = True
        category = self.snapshot.product_category
        sizes = np.zeros(C + 1, dtype=np.int64)  # index C: the root (every product)
        sizes[C] = members.size
        for _, level in self.snapshot.category_levels(category[members]):  # each product counts in its category and every ancestor
            sizes += np.bincount(level, minlength=C + 1)
        with_attribute = np.zeros((C + 1) * A, dtype=np.int64)
        for start in range(0, self.pairs.size, PAIR_CHUNK):  # a chunk at a time: whole-catalog temporaries were ~0.9 GB at 1M products
            pairs = self.pairs[start : start + PAIR_CHUNK]
            pairs = pairs[member[pairs // A]]
            products, attributes = pairs // A, pairs % A
            with_attribute += np.bincount(C * A + attributes, minlength=(C + 1) * A)
            for on, level in self.snapshot.category_levels(category[products]):
                with_attribute += np.bincount(level * A + attributes[on], minlength=(C + 1) * A)
        with_attribute = with_attribute.reshape(C + 1, A)
        size = {c: int(n) for c, n in enumerate(sizes[:C].tolist()) if n}
        size[-1] = int(sizes[C])
        counts = {(-1 if c == C else c): {a: int(n) for a, n in zip(np.flatnonzero(row).tolist(), row[row > 0].tolist())}
                  for c, row in enumerate(with_attribute) if row.any()}
        total = max(size.get(-1, 0), 1)
        root = {a: n / total for a, n in counts.get(-1, {}).items() if self.predictable[a]}
        cache: dict[int, dict[int, float]] = {-1: root}
        m = self.prior_weight

        def estimate(category: int) -> dict[int, float]:
            if category not in cache:
                parent = estimate(int(self.snapshot.category_parent[category]))
                n, own = size.get(category, 0), counts.get(category, {})
                cache[category] = {a: (own.get(a, 0) + m * prior) / (n + m) for a, prior in parent.items()}
            return cache[category]

        return estimate

    def _measure(self, holdout: float, seed: int) -> float:
        """The threshold with the best F1 on held-out products (0.3 when there are too few)."""
        count = self.snapshot.num_products
        held = np.random.default_rng(seed).permutation(count)[: max(1, int(round(holdout * count)))] if count >= 20 else np.zeros(0, int)
        if held.size == 0:
            return 0.3
        estimate = self._estimator(np.setdiff1d(np.arange(count), held))
        scores, labels = [], []
        leaf = self.snapshot.product_category[held]
        for category in np.unique(leaf).tolist():  # the held products of one category share its estimates
            found = estimate(int(category))
            if not found:
                continue
            attributes = np.fromiter(found, dtype=np.int64, count=len(found))
            products = held[leaf == category]
            scores.append(np.tile(np.fromiter(found.values(), dtype=np.float64, count=len(found)), products.size))
            keys = (products[:, None] * self.num_attributes + attributes[None, :]).ravel()
            at = np.searchsorted(self.pairs, keys).clip(max=max(self.pairs.size - 1, 0))
            labels.append(self.pairs[at] == keys if self.pairs.size else np.zeros(keys.size, dtype=bool))
        if not labels or not any(l.any() for l in labels):
            return 0.3
        scores_arr, labels_arr = np.concatenate(scores), np.concatenate(labels)
        best = None
        for threshold in THRESHOLDS:
            chosen = scores_arr >= threshold
            tp = int((chosen & labels_arr).sum())
            precision = tp / max(int(chosen.sum()), 1)
            recall = tp / int(labels_arr.sum())
            f1 = 2 * precision * recall / max(precision + recall, 1e-12)
            if best is None or f1 > best[0] + 1e-12:
                best = (f1, float(threshold), precision, recall)
        f1, threshold, precision, recall = best
        self.measured = {"threshold": threshold, "precision": precision, "recall": recall, "f1": f1, "held_out_products": int(held.size)}
        return threshold

    def coverage(self, product: int) -> dict[int, float]:
        """Backed-off coverage of each predictable attribute in ``product``'s category."""
        return self._estimates(int(self.snapshot.product_category[product]))

    def applies(self, product: int) -> list[int]:
        """Predictable attributes that apply to ``product``'s category, sorted by index."""
        category = int(self.snapshot.product_category[product])
        if category not in self._applies:
            self._applies[category] = sorted(a for a, value in self._estimates(category).items() if value >= self.min_coverage)
        return self._applies[category]

    def missing(self, product: int) -> list[int]:
        """Attributes that apply to ``product`` and that it lacks, sorted by index."""
        has = self.has(product)
        return [a for a in self.applies(product) if a not in has]


def example_gaps(applicability: Applicability, count: int, seed: int) -> list[tuple[int, int]]:
    """Up to ``count`` (product, attribute) pairs, each a different attribute, where the
    attribute applies to the product and it lacks it: what a pretraining run shows as a
    taste of completion. Products are visited in a seeded order."""
    order = np.random.default_rng(seed).permutation(applicability.snapshot.num_products)
    chosen, seen = [], set()
    for p in order.tolist():
        gaps = [a for a in applicability.missing(p) if a not in seen]
        if gaps:
            chosen.append((p, gaps[0]))
            seen.add(gaps[0])
        if len(chosen) == count:
            break
    return chosen
