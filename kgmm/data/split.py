"""Holding facts out for validation, and the training graph without them.

Validation asks the question link prediction is for: given everything else about a
product, which value does it have for this attribute? One fact is held out for a share of
the products, only from attributes with at least two values (ranking one candidate says
nothing) and only where the value keeps another training fact. The held-out facts are
removed from the graph the model trains on, so neither the input nor the LPM targets
ever contain them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from graph_store import Snapshot


@dataclass(frozen=True)
class EdgeSplit:
    """Which snapshot edges train, and the held-out validation facts."""

    train_mask: np.ndarray  # [E] bool over the snapshot's edges
    val: np.ndarray  # [V, 3] int64 (product, attribute, value)

    @property
    def num_val(self) -> int:
        return int(self.val.shape[0])


def split_edges(snapshot: Snapshot, val_fraction: float, max_val: int, seed: int, min_val: int = 0) -> EdgeSplit:
    """Choose validation facts deterministically from ``seed``.

    One fact per chosen product, ``val_fraction`` of the products but at least ``min_val``
    and at most ``max_val`` facts (as many as the catalog allows): early stopping and the
    temperature are chosen on these, so a hundred facts is too few to mean anything. A
    fact qualifies when its attribute has two values and its value keeps another
    training fact (a value never seen in training cannot be learnt); a product's only fact
    may be held out (its text and photo still describe it).
    """
    num_edges = snapshot.num_edges
    train_mask = np.ones(num_edges, dtype=bool)
    empty = np.zeros((0, 3), dtype=np.int64)
    if num_edges == 0 or val_fraction <= 0 or max_val <= 0:
        return EdgeSplit(train_mask, empty)
    values_per_attribute = np.bincount(snapshot.value_attribute, minlength=len(snapshot.attributes))
    candidates = np.flatnonzero(values_per_attribute[snapshot.edge_attribute] >= 2)
    if candidates.size == 0:
        return EdgeSplit(train_mask, empty)
    rng = np.random.default_rng(seed)
    shuffled = candidates[rng.permutation(candidates.size)]
    per_product = shuffled[_first_per_product(snapshot.edge_product[shuffled], snapshot.num_products)]  # one random edge per product
    wanted = min(max_val, max(min_val, round(val_fraction * snapshot.num_products), 1))
    remaining = np.bincount(snapshot.edge_value, minlength=len(snapshot.values))
    chosen = []
    for edge in per_product[rng.permutation(per_product.size)].tolist():
        if len(chosen) >= wanted:
            break
        value = snapshot.edge_value[edge]
        if remaining[value] >= 2:  # the value keeps a training fact
            remaining[value] -= 1
            chosen.append(edge)
    chosen = np.sort(np.array(chosen, dtype=np.int64))
    train_mask[chosen] = False
    val = np.stack([snapshot.edge_product[chosen], snapshot.edge_attribute[chosen], snapshot.edge_value[chosen]], axis=1)
    return EdgeSplit(train_mask, val.astype(np.int64))


def _first_per_product(products: np.ndarray, num_products: int) -> np.ndarray:
    """Position of each product's first occurrence in ``products``, by product id: what
    ``np.unique(products, return_index=True)[1]`` gives, by a scatter of the smallest position
    instead of a sort (0.4 s instead of 3.6 s for 11M facts)."""
    size = products.size
    first = torch.full((num_products,), size, dtype=torch.long)
    first.scatter_reduce_(0, torch.from_numpy(products.astype(np.int64, copy=False)), torch.arange(size), "amin")
    first = first.numpy()
    return first[first < size]


def training_snapshot(snapshot: Snapshot, train_mask: np.ndarray) -> Snapshot:
    """The same snapshot with only the training edges (ids and modalities unchanged)."""
    return dataclasses.replace(
        snapshot,
        edge_product=snapshot.edge_product[train_mask],
        edge_attribute=snapshot.edge_attribute[train_mask],
        edge_value=snapshot.edge_value[train_mask],
        edge_source=snapshot.edge_source[train_mask],
        edge_score=snapshot.edge_score[train_mask],
    )
