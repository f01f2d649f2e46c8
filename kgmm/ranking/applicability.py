"""Which attributes apply to a product, learned from the catalog itself.

A watch has a dial shape, a cushion cover does not: completing every attribute for every
product would fill the graph with nonsense. An attribute *applies* to a product when it
is common among the products of the product's category: at least ``min_coverage`` of
them have it. The category used is the most specific one (the leaf or an ancestor) that
holds at least ``min_support`` products, so that one odd sibling does not decide; a
product without a category is compared with the whole catalog.

Attributes that cannot be predicted are never proposed: those with fewer than two values
(nothing to choose) and identifier-like ones whose values are nearly unique per product
(model numbers, names), which no model can guess and no analyst wants guessed.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from graph_store import Snapshot


class Applicability:
    """Attribute coverage per category, from a snapshot's facts.

    Args:
        snapshot: the graph (catalog and text facts).
        min_coverage: share of a category's products that must have an attribute.
        min_support: products a category needs before its coverage is trusted.
        max_distinct: attributes with more distinct values than this share of the
            products having them are identifier-like and left out.
    """

    def __init__(self, snapshot: Snapshot, min_coverage: float = 0.3, min_support: int = 10, max_distinct: float = 0.5) -> None:
        self.snapshot = snapshot
        self.min_coverage, self.min_support = min_coverage, min_support
        num_attributes = len(snapshot.attributes)
        self.has: list[set[int]] = [set() for _ in range(snapshot.num_products)]
        for p, a in zip(snapshot.edge_product.tolist(), snapshot.edge_attribute.tolist()):
            self.has[p].add(a)
        values = np.bincount(snapshot.value_attribute, minlength=num_attributes)
        products = np.zeros(num_attributes, dtype=np.int64)
        for attributes in self.has:
            for a in attributes:
                products[a] += 1
        self.predictable = (values >= 2) & (values <= max_distinct * np.maximum(products, 1))  # [A] bool
        self.chains = [self._chain(c) for c in snapshot.product_category.tolist()]
        self.size: Counter = Counter()  # category (-1: everything) -> products
        self.coverage: dict[int, Counter] = {}  # category -> attribute -> products having it
        for p, chain in enumerate(self.chains):
            for c in (*chain, -1):
                self.size[c] += 1
                self.coverage.setdefault(c, Counter()).update(self.has[p])
        self._applies: dict[int, list[int]] = {}

    def _chain(self, category: int) -> tuple[int, ...]:
        chain = []
        while category >= 0:
            chain.append(category)
            category = int(self.snapshot.category_parent[category])
        return tuple(chain)

    def reference(self, product: int) -> int:
        """The category whose coverage decides for ``product`` (-1: the whole catalog)."""
        for c in self.chains[product]:
            if self.size[c] >= self.min_support:
                return c
        return -1

    def applies(self, category: int) -> list[int]:
        """Predictable attributes that at least ``min_coverage`` of ``category``'s products have."""
        if category not in self._applies:
            size = self.size[category]
            counts = self.coverage.get(category, Counter())
            self._applies[category] = sorted(
                a for a, n in counts.items() if self.predictable[a] and size and n / size >= self.min_coverage
            )
        return self._applies[category]

    def missing(self, product: int) -> list[int]:
        """Attributes that apply to ``product`` and that it lacks, sorted by index."""
        return [a for a in self.applies(self.reference(product)) if a not in self.has[product]]


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
