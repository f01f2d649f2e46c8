"""What the model learned: link-prediction ranking on held-out facts, and completions.

Ranking is *filtered*: a held-out value competes with every other value of its attribute
except the ones the product is known to have (a second colour is not an error). Two
baselines give the numbers a scale: a random ranking, and ranking values by how often
the attribute takes them in the training facts.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..data.batches import PretrainData, batch_generator

EVAL_SEED_KEY = -1  # batch_generator key of evaluation batches (subgraph sampling)


@torch.no_grad()
def encode_products(model, data: PretrainData, products: list[int], device: torch.device, batch_size: int, autocast=None,
                    modalities: tuple[str, ...] | None = None) -> Tensor:
    """Product vectors [len(products), d] with full inputs (no masking, dropout or hold-out);
    ``modalities`` reads only those streams (each modality alone), ``None`` all."""
    was_training = model.training
    model.eval()
    chunks = []
    try:
        for start in range(0, len(products), batch_size):
            chunk = products[start : start + batch_size]
            batch = data.build(chunk, batch_generator(data.config.train.seed, EVAL_SEED_KEY, start), train=False).to(device)
            with autocast() if autocast else nullcontext():
                output = model(batch, heads=False) if modalities is None else model(batch, heads=False, modalities=modalities)
                chunks.append(output.product.float())
    finally:
        model.train(was_training)
    d = model.config.model.hidden
    return torch.cat(chunks) if chunks else torch.zeros(0, d, device=device)


@torch.no_grad()
def rank_values(model, product: Tensor, attribute: int, candidates: Tensor, device: torch.device) -> Tensor:
    """Scores [M] of ``candidates`` (value ids) for one product vector [d] and attribute."""
    scores = model.score(product.view(1, -1), torch.tensor([attribute], device=device), candidates.view(1, -1).to(device))
    return scores[0].float()


@dataclass
class LinkMetrics:
    """Filtered ranking metrics on the validation facts, with baselines."""

    mrr: float
    hits1: float
    hits10: float
    count: int
    random_mrr: float
    popular_mrr: float

    def as_dict(self) -> dict[str, float]:
        return {
            "val_mrr": self.mrr,
            "val_hits@1": self.hits1,
            "val_hits@10": self.hits10,
            "val_facts": self.count,
            "random_mrr": self.random_mrr,
            "popular_mrr": self.popular_mrr,
        }


class LinkEvaluator:
    """Ranks each validation fact among the values of its attribute.

    Args:
        data: the run's tables (candidates per attribute, every known fact, training facts).
        facts: [V, 3] (product, attribute, value) held-out facts.
    """

    def __init__(self, data: PretrainData, facts: np.ndarray) -> None:
        self.data = data
        self.facts = facts
        known: dict[tuple[int, int], set[int]] = {}
        for p, a, v in data.known.tolist():
            known.setdefault((p, a), set()).add(v)
        self.known = known
        counts = np.bincount(data.train_value.numpy(), minlength=len(data.snapshot.values))
        self.popularity = torch.from_numpy(counts.astype(np.float32))
        self.filtered: list[Tensor] = []  # per fact: its candidates, other true values removed
        for p, a, v in facts.tolist():
            others = known.get((p, a), set()) - {v}
            cand = data.candidates[a]
            if others:
                cand = cand[~torch.isin(cand, torch.tensor(sorted(others)))]
            self.filtered.append(cand)
        self.random_mrr = float(np.mean([_harmonic(c.numel()) / c.numel() for c in self.filtered])) if self.filtered else 0.0
        self.popular_mrr = self._mrr([self.popularity[c] for c in self.filtered]) if self.filtered else 0.0

    def _mrr(self, scores: list[Tensor]) -> float:
        return float(np.mean([1.0 / r for r in self._ranks(scores)]))

    def _ranks(self, scores: list[Tensor]) -> list[float]:
        ranks = []
        for (_, _, v), cand, s in zip(self.facts.tolist(), self.filtered, scores):
            truth = s[(cand == v).nonzero()[0, 0]]
            higher = int((s > truth).sum())
            ties = int((s == truth).sum()) - 1
            ranks.append(1 + higher + ties / 2)  # ties share the average rank
        return ranks

    def evaluate(self, model, device: torch.device, batch_size: int, autocast=None, modalities: tuple[str, ...] | None = None) -> LinkMetrics:
        """Encode the facts' products and rank every fact (reading only ``modalities`` if given)."""
        if self.facts.shape[0] == 0:
            return LinkMetrics(0.0, 0.0, 0.0, 0, 0.0, 0.0)
        products = sorted(set(self.facts[:, 0].tolist()))
        position = {p: i for i, p in enumerate(products)}
        vectors = encode_products(model, self.data, products, device, batch_size, autocast, modalities)
        scores = [
            rank_values(model, vectors[position[p]], a, cand, device).cpu()
            for (p, a, _), cand in zip(self.facts.tolist(), self.filtered)
        ]
        ranks = np.array(self._ranks(scores))
        return LinkMetrics(
            mrr=float(np.mean(1.0 / ranks)),
            hits1=float(np.mean(ranks <= 1)),
            hits10=float(np.mean(ranks <= 10)),
            count=int(ranks.size),
            random_mrr=self.random_mrr,
            popular_mrr=self.popular_mrr,
        )


def _harmonic(n: int) -> float:
    return float(np.sum(1.0 / np.arange(1, n + 1)))


@dataclass
class Completion:
    """The model's top values for an attribute a product lacks."""

    product_id: str
    title: str
    attribute: str
    values: list[tuple[str, float]]  # (value, probability among the attribute's values)


def missing_attribute_examples(data: PretrainData, count: int, seed: int) -> list[tuple[int, int]]:
    """(product, attribute) pairs where the attribute is common in the product's top-level
    category (at least 30% of its products, at least 3 values, not an identifier that
    nearly every product spells differently) but the product lacks it."""
    snapshot = data.snapshot
    if snapshot.num_edges == 0:
        return []
    top = np.array([(snapshot.categories[c].split(" > ")[0] if c >= 0 else "") for c in snapshot.product_category])
    has = {}
    for p, a in zip(snapshot.edge_product.tolist(), snapshot.edge_attribute.tolist()):
        has.setdefault(p, set()).add(a)
    values_per_attribute = np.bincount(snapshot.value_attribute, minlength=len(snapshot.attributes))
    products_per_attribute = np.bincount(
        np.unique(snapshot.edge_product * len(snapshot.attributes) + snapshot.edge_attribute) % len(snapshot.attributes),
        minlength=len(snapshot.attributes),
    )
    identifier_like = values_per_attribute > 0.5 * np.maximum(products_per_attribute, 1)  # model ids, names
    order = np.random.default_rng(seed).permutation(snapshot.num_products)
    chosen, seen_attributes = [], set()
    coverage_cache: dict[str, np.ndarray] = {}
    for p in order.tolist():
        group = top[p]
        if group not in coverage_cache:
            members = np.flatnonzero(top == group)
            mask = np.isin(snapshot.edge_product, members)
            counts = np.bincount(np.unique(snapshot.edge_product[mask] * len(snapshot.attributes) + snapshot.edge_attribute[mask]) % len(snapshot.attributes), minlength=len(snapshot.attributes))
            coverage_cache[group] = counts / max(len(members), 1)
        coverage = coverage_cache[group].copy()
        coverage[list(has.get(p, ()))] = 0
        coverage[(values_per_attribute < 3) | identifier_like] = 0
        coverage[list(seen_attributes)] = 0
        best = int(coverage.argmax())
        if coverage[best] >= 0.3:
            chosen.append((p, best))
            seen_attributes.add(best)
        if len(chosen) == count:
            break
    return chosen


def complete(model, data: PretrainData, pairs: list[tuple[int, int]], device: torch.device, top: int = 3, autocast=None) -> list[Completion]:
    """Top ``top`` values (with softmax probabilities over the attribute's values) per pair."""
    if not pairs:
        return []
    snapshot = data.snapshot
    vectors = encode_products(model, data, [p for p, _ in pairs], device, len(pairs), autocast)
    out = []
    for (p, a), vector in zip(pairs, vectors):
        cand = data.candidates[a]
        probs = torch.softmax(rank_values(model, vector, a, cand, device).cpu(), 0)
        best = probs.topk(min(top, cand.numel()))
        values = [(snapshot.values[int(cand[i])][1], float(prob)) for prob, i in zip(best.values, best.indices)]
        out.append(Completion(snapshot.product_ids[p], snapshot.titles[p], snapshot.attributes[a], values))
    return out
