"""Filtered ranking of held-out triples, shared by every model in the protocol.

A held-out triple (product, attribute, value) is ranked among all values of its attribute,
*filtered*: the product's other true values of that attribute (from any split) are taken
out of the candidates, so a second colour is not counted as an error. Ties share the
average rank (a model that scores everything equally gets the random MRR, not 1.0), as
everywhere in kgmm. Every model hands in one score vector
per triple over :attr:`RankingTask.candidates`; the metrics are computed here only once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from graph_store import Snapshot

HITS = (1, 3, 10)


@dataclass
class RankingTask:
    """Held-out triples with their filtered candidate values.

    Attributes:
        facts: [T, 3] int64 (product, attribute, value).
        candidates: per triple, the candidate value ids [M_t] (the true value included).
        truth: per triple, the position of the true value in its candidates.
    """

    facts: np.ndarray
    candidates: list[Tensor]
    truth: list[int]

    @classmethod
    def build(cls, snapshot: Snapshot, facts: np.ndarray) -> RankingTask:
        """Candidates from ``snapshot`` (the whole graph: filtering uses every known fact)."""
        # a product's facts are one slice of the edges (a snapshot sorts them by product): no
        # table of every (product, attribute) of the catalog, which took 47 s and gigabytes at 1M products
        facts = np.asarray(facts, dtype=np.int64).reshape(-1, 3)
        ptr = snapshot.edge_ptr
        starts, ends = ptr[facts[:, 0]], ptr[facts[:, 0] + 1]
        per_attribute = [np.flatnonzero(snapshot.value_attribute == a) for a in range(len(snapshot.attributes))]
        candidates, truth = [], []
        for (p, a, v), start, end in zip(facts.tolist(), starts.tolist(), ends.tolist()):
            own = snapshot.edge_value[start:end][snapshot.edge_attribute[start:end] == a]
            others = own[own != v]
            cand = per_attribute[a]
            if others.size:
                cand = cand[~np.isin(cand, others)]
            candidates.append(torch.from_numpy(cand.astype(np.int64)))
            truth.append(int(np.searchsorted(cand, v)))
        return cls(facts, candidates, truth)

    def __len__(self) -> int:
        return int(self.facts.shape[0])

    @property
    def products(self) -> list[int]:
        """The distinct products of the triples, sorted."""
        return sorted(set(self.facts[:, 0].tolist()))

    def ranks(self, scores: list[Tensor]) -> np.ndarray:
        """[T] filtered rank of each true value (1 = best), ties averaged."""
        out = np.empty(len(self), dtype=np.float64)
        for i, (s, t) in enumerate(zip(scores, self.truth)):
            s = s.float()
            true = s[t]
            out[i] = 1 + float((s > true).sum()) + (float((s == true).sum()) - 1) / 2
        return out

    def metrics(self, scores: list[Tensor]) -> dict[str, float]:
        """MRR and Hits@1/3/10 of ``scores`` (one vector per triple)."""
        return ranking_metrics(self.ranks(scores))

    def random_metrics(self) -> dict[str, float]:
        """Expected metrics of a random ranking (every candidate tied)."""
        return self.metrics([torch.zeros(c.numel()) for c in self.candidates])


def ranking_metrics(ranks: np.ndarray) -> dict[str, float]:
    """MRR, Hits@k and the count, from filtered ranks."""
    if ranks.size == 0:
        return {"mrr": 0.0, **{f"hits@{k}": 0.0 for k in HITS}, "count": 0}
    return {"mrr": float(np.mean(1.0 / ranks)), **{f"hits@{k}": float(np.mean(ranks <= k)) for k in HITS}, "count": int(ranks.size)}
