"""Held-out attribute triples for the evaluation protocol, stratified per attribute.

K3M evaluates value prediction on triples that the model never saw. Here a seeded
fraction of *every* attribute's triples is held out (stratified, so frequent attributes
do not crowd out rare ones), split into a test part (the reported numbers) and a
validation part (model selection and the calibration temperature). A triple is only
held out when every model can in principle learn it:

* its attribute has at least two values (ranking one candidate says nothing);
* its value keeps at least one training triple (an identifier seen once, such as a
  model number, has no learnable embedding in any model);
* its product keeps at least one training triple (a KGE model has no other way to
  place a product).

Fractions are met in expectation: ``fraction * n`` is rounded down and the remainder
is a seeded coin, so an attribute with three triples still contributes sometimes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graph_store import Snapshot


@dataclass(frozen=True)
class HeldOutSplit:
    """Which snapshot edges train, and the held-out test and validation triples.

    Attributes:
        train_mask: [E] bool over the snapshot's edges; False for every held-out triple.
        test: [T, 3] int64 (product, attribute, value) reported triples.
        val: [V, 3] int64 validation triples (model selection, calibration).
        seed: the seed that chose them.
    """

    train_mask: np.ndarray
    test: np.ndarray
    val: np.ndarray
    seed: int

    @property
    def held_out(self) -> np.ndarray:
        """[T + V, 3] every triple kept out of training."""
        return np.concatenate([self.test, self.val])

    def describe(self, snapshot: Snapshot) -> dict:
        """Sizes, for the report."""
        return {
            "triples": snapshot.num_edges,
            "train": int(self.train_mask.sum()),
            "test": int(self.test.shape[0]),
            "val": int(self.val.shape[0]),
            "test_attributes": int(np.unique(self.test[:, 1]).size) if self.test.size else 0,
            "test_products": int(np.unique(self.test[:, 0]).size) if self.test.size else 0,
            "seed": self.seed,
        }

    def save(self, snapshot: Snapshot, path: Path) -> None:
        """The held-out triples by name (product id, attribute, value), for audit and reuse."""

        def named(rows: np.ndarray) -> list[list[str]]:
            return [[snapshot.product_ids[p], snapshot.attributes[a], snapshot.values[v][1]] for p, a, v in rows.tolist()]

        path.write_text(json.dumps({"seed": self.seed, "test": named(self.test), "val": named(self.val)}, ensure_ascii=False), encoding="utf-8")


def held_out_split(snapshot: Snapshot, test_fraction: float, val_fraction: float, seed: int) -> HeldOutSplit:
    """Choose test and validation triples per attribute, deterministically from ``seed``.

    Args:
        snapshot: the whole graph (catalog and text facts).
        test_fraction: share of each attribute's triples reported as test.
        val_fraction: share held out for validation.
        seed: the split's seed.
    """
    if not (0 <= test_fraction < 1 and 0 <= val_fraction < 1 and test_fraction + val_fraction < 1):
        raise ValueError("test and validation fractions must lie in [0, 1) and sum to less than 1")
    num_edges = snapshot.num_edges
    train_mask = np.ones(num_edges, dtype=bool)
    rng = np.random.default_rng(seed)
    product_left = np.bincount(snapshot.edge_product, minlength=snapshot.num_products)
    value_left = np.bincount(snapshot.edge_value, minlength=len(snapshot.values))
    values_per_attribute = np.bincount(snapshot.value_attribute, minlength=len(snapshot.attributes))
    order = np.argsort(snapshot.edge_attribute, kind="stable")
    bounds = np.searchsorted(snapshot.edge_attribute[order], np.arange(len(snapshot.attributes) + 1))
    test, val = [], []
    for attribute in range(len(snapshot.attributes)):
        edges = order[bounds[attribute] : bounds[attribute + 1]]
        if edges.size == 0 or values_per_attribute[attribute] < 2:
            continue
        wanted_test = _stochastic_round(test_fraction * edges.size, rng)
        wanted_val = _stochastic_round(val_fraction * edges.size, rng)
        for edge in edges[rng.permutation(edges.size)].tolist():
            if wanted_test == 0 and wanted_val == 0:
                break
            product, value = snapshot.edge_product[edge], snapshot.edge_value[edge]
            if product_left[product] < 2 or value_left[value] < 2:
                continue
            product_left[product] -= 1
            value_left[value] -= 1
            train_mask[edge] = False
            if wanted_test:
                test.append(edge)
                wanted_test -= 1
            else:
                val.append(edge)
                wanted_val -= 1
    return HeldOutSplit(train_mask, _triples(snapshot, test), _triples(snapshot, val), seed)


def _stochastic_round(x: float, rng: np.random.Generator) -> int:
    whole = int(np.floor(x))
    return whole + int(rng.random() < x - whole)


def _triples(snapshot: Snapshot, edges: list[int]) -> np.ndarray:
    chosen = np.sort(np.asarray(edges, dtype=np.int64))
    return np.stack([snapshot.edge_product[chosen], snapshot.edge_attribute[chosen], snapshot.edge_value[chosen]], axis=1).astype(np.int64).reshape(-1, 3)
