"""Item classification by a linear probe: how much of the category a product vector holds.

The products are split once (seeded, stratified per class) into probe-train and probe-test
products; a multinomial logistic regression is fitted on the frozen vectors of the
probe-train products and scored on the probe-test products. The class is the top-level
category. Models must not read the answer: K3M variants encode every product with its own
category hidden (:class:`kgmm.evaluation.views.ModalityView`), and the KGE baselines are
trained without the probe-test products' ``in_category`` triples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from graph_store import Snapshot


@dataclass(frozen=True)
class ProbeSplit:
    """Probe-train and probe-test products with their class labels.

    Attributes:
        train: [n] product indices the probe is fitted on.
        test: [m] product indices it is scored on.
        labels: [P] int64 class of every product (-1: no category).
        classes: class names (top-level categories).
    """

    train: np.ndarray
    test: np.ndarray
    labels: np.ndarray
    classes: list[str]

    def hidden_mask(self, num_products: int) -> np.ndarray:
        """[P] bool, True for probe-test products (their category must stay unseen)."""
        mask = np.zeros(num_products, dtype=bool)
        mask[self.test] = True
        return mask


def probe_split(snapshot: Snapshot, test_fraction: float, seed: int) -> ProbeSplit:
    """Split the products that have a category, stratified by top-level category."""
    tops = [snapshot.categories[c].split(" > ")[0] if c >= 0 else None for c in snapshot.product_category.tolist()]
    classes = sorted({t for t in tops if t is not None})
    index = {name: i for i, name in enumerate(classes)}
    labels = np.array([index[t] if t is not None else -1 for t in tops], dtype=np.int64)
    rng = np.random.default_rng([seed, 31337])
    train, test = [], []
    for label in range(len(classes)):
        members = np.flatnonzero(labels == label)
        members = members[rng.permutation(members.size)]
        cut = int(round(test_fraction * members.size))
        test.extend(members[:cut].tolist())
        train.extend(members[cut:].tolist())
    return ProbeSplit(np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(test, dtype=np.int64)), labels, classes)


class LinearProbe:
    """Multinomial logistic regression (L2) on standardised vectors, fitted with L-BFGS."""

    def __init__(self, weight_decay: float = 1e-2, iterations: int = 200) -> None:
        self.weight_decay, self.iterations = weight_decay, iterations
        self.linear: torch.nn.Linear | None = None

    def fit(self, x: Tensor, y: Tensor) -> LinearProbe:
        """``x`` [n, d] vectors, ``y`` [n] class ids."""
        x = x.float()
        self.mean, self.std = x.mean(0), x.std(0).clamp(min=1e-6)
        z = (x - self.mean) / self.std
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(z.shape[1], int(y.max()) + 1)
        optimizer = torch.optim.LBFGS(self.linear.parameters(), max_iter=self.iterations, line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(self.linear(z), y) + self.weight_decay * self.linear.weight.pow(2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        return self

    @torch.no_grad()
    def accuracy(self, x: Tensor, y: Tensor) -> float:
        if y.numel() == 0:
            return 0.0
        logits = self.linear((x.float() - self.mean) / self.std)
        return float((logits.argmax(1) == y).float().mean())
