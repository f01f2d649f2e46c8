"""Validation while training: rank held-out facts, with baselines that give the numbers a scale.

The ranking itself is :class:`~.task.RankingTask`'s (filtered, ties averaged), the same
code ``kgmm evaluate`` reports with. Two baselines come with every validation: a random
ranking, and ranking values by how often the attribute takes them in the training facts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .scoring import fact_scores
from .task import RankingTask


@dataclass
class LinkMetrics:
    """Filtered ranking metrics on the validation facts, with baselines."""

    mrr: float
    hits1: float
    hits3: float
    hits10: float
    count: int
    random_mrr: float
    popular_mrr: float

    def as_dict(self) -> dict[str, float]:
        return {
            "val_mrr": self.mrr,
            "val_hits@1": self.hits1,
            "val_hits@3": self.hits3,
            "val_hits@10": self.hits10,
            "val_facts": self.count,
            "random_mrr": self.random_mrr,
            "popular_mrr": self.popular_mrr,
        }


class Validator:
    """Ranks a task's facts with a model, reading products through ``data``.

    Args:
        data: the batch builder products are read through (its ``train_value`` gives the
            popularity baseline).
        task: the held-out facts with their filtered candidates.
    """

    def __init__(self, data, task: RankingTask) -> None:
        self.data, self.task = data, task
        counts = np.bincount(data.train_value.numpy(), minlength=len(data.snapshot.values))
        popularity = torch.from_numpy(counts.astype(np.float32))
        sizes = [c.numel() for c in task.candidates]
        self.random_mrr = float(np.mean([_harmonic(n) / n for n in sizes])) if sizes else 0.0  # expected MRR of a random order
        self.popular_mrr = task.metrics([popularity[c] for c in task.candidates])["mrr"] if len(task) else 0.0

    def evaluate(self, model, device: torch.device, batch_size: int, autocast=None, modalities: tuple[str, ...] | None = None) -> LinkMetrics:
        """Encode the facts' products and rank every fact (reading only ``modalities`` if given)."""
        if len(self.task) == 0:
            return LinkMetrics(0.0, 0.0, 0.0, 0.0, 0, 0.0, 0.0)
        m = self.task.metrics(fact_scores(model, self.data, self.task, device, batch_size, autocast, modalities))
        return LinkMetrics(m["mrr"], m["hits@1"], m["hits@3"], m["hits@10"], m["count"], self.random_mrr, self.popular_mrr)


def _harmonic(n: int) -> float:
    return float(np.sum(1.0 / np.arange(1, n + 1)))
