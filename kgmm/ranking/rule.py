"""The rule every learned model must beat: the most common value in the product's category.

For a held-out (product, attribute, value) the candidates are ranked by how many training
products *in the product's leaf category* have each value; ties are broken by the count
in the parent category, then the grandparent, up to the whole catalog. This is what a
merchandiser would write by hand ("shirts in Men's Clothing are usually cotton"), and on a
catalog with deep categories it is a strong baseline.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch
from torch import Tensor

from graph_store import Snapshot

from .task import RankingTask


class MajorityPerCategory:
    """Value counts per (category, attribute) from the training graph.

    Args:
        train_snapshot: the training graph (held-out triples already removed).
    """

    def __init__(self, train_snapshot: Snapshot) -> None:
        self.snapshot = train_snapshot
        self.chains = [_chain(train_snapshot, c) for c in train_snapshot.product_category.tolist()]
        self.counts: dict[tuple[int, int], Counter] = {}  # (category or -1 = everything, attribute) -> value counts
        for p, a, v in zip(train_snapshot.edge_product.tolist(), train_snapshot.edge_attribute.tolist(), train_snapshot.edge_value.tolist()):
            for category in (*self.chains[p], -1):
                self.counts.setdefault((category, a), Counter())[v] += 1

    def best(self, product: int, attribute: int) -> int | None:
        """The rule's value for (product, attribute): the most common in the most specific level
        of the product's category chain that has the attribute (None: no product has it)."""
        for category in (*self.chains[product], -1):
            counts = self.counts.get((category, attribute))
            if counts:
                return max(counts.items(), key=lambda item: (item[1], -item[0]))[0]
        return None

    def scores(self, task: RankingTask) -> list[Tensor]:
        """One score vector per triple: the rank of each candidate under the back-off order,
        negated (higher is better; equal counts at every level tie)."""
        out = []
        for (p, a, _), cand in zip(task.facts.tolist(), task.candidates):
            levels = [self.counts.get((c, a), Counter()) for c in (*self.chains[p], -1)]
            keys = np.array([[level.get(v, 0) for v in cand.tolist()] for level in levels], dtype=np.int64)  # [L, M]
            out.append(torch.from_numpy(_lexicographic_rank(keys)).float().neg())
        return out


def _chain(snapshot: Snapshot, category: int) -> tuple[int, ...]:
    """The category and its ancestors, most specific first."""
    chain = []
    while category >= 0:
        chain.append(category)
        category = int(snapshot.category_parent[category])
    return tuple(chain)


def _lexicographic_rank(keys: np.ndarray) -> np.ndarray:
    """Dense rank (0 = best) of columns of ``keys`` [L, M], compared row 0 first, larger first."""
    if keys.shape[1] == 0:
        return np.zeros(0)
    order = np.lexsort(-keys[::-1])  # np.lexsort sorts by the last key first
    ordered = keys[:, order]
    new = np.ones(order.size, dtype=bool)
    new[1:] = (ordered[:, 1:] != ordered[:, :-1]).any(axis=0)
    dense = np.cumsum(new) - 1
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = dense
    return rank
