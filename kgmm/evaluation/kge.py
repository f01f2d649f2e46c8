"""Knowledge-graph-embedding baselines: PyG's TransE, DistMult, ComplEx and RotatE.

The entities are products, values and categories; the relations are the attributes plus
``in_category``. The models see only the graph (no text, no photo), so they are the
baseline K3M's knowledge modality is measured against.

Training uses the models' own score functions (``torch_geometric.nn.kge``) with the same
objective as K3M's link prediction rather than PyG's ``loss()``: for each training triple,
``negatives`` tails of the *same relation* that are not known training facts
(:class:`kgmm.sampling.AttributeNegativeSampler`), softmax cross-entropy over the positive
and its negatives. PyG's ``loss()`` corrupts heads and tails with any entity, which makes
most negatives trivially wrong (a product as the value of "colour") and, measured on the
validation split, ranked values clearly worse. Every model is trained for the same number
of epochs and the epoch with the best validation MRR is kept.

A product whose category is to be predicted by the linear probe must not have its
``in_category`` triple in training, or its embedding would simply encode the answer; see
``hidden_categories``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from graph_store import Snapshot

from ..sampling import AttributeNegativeSampler
from ..ranking import RankingTask

KGE_MODELS = ("transe", "distmult", "complex", "rotate")


@dataclass
class KGEConfig:
    """Training settings shared by every KGE baseline."""

    hidden: int = 64
    epochs: int = 80
    batch_size: int = 512
    lr: float = 0.01
    negatives: int = 32
    weight_decay: float = 0.0
    eval_every: int = 5
    seed: int = 0


@dataclass
class KGEResult:
    """A trained KGE model and where its entities live."""

    name: str
    model: torch.nn.Module
    num_products: int
    seconds: float
    best_epoch: int
    best_val_mrr: float
    curve: list[tuple[int, float]] = field(default_factory=list)

    @torch.no_grad()
    def scores(self, task: RankingTask) -> list[Tensor]:
        """One score vector per triple of ``task`` over its candidates."""
        return _scores(self.model, self.num_products, task)

    @torch.no_grad()
    def product_embeddings(self) -> Tensor:
        """[P, d'] the products' entity embeddings (real and imaginary parts concatenated)."""
        index = torch.arange(self.num_products)
        parts = [self.model.node_emb(index)]
        if hasattr(self.model, "node_emb_im"):
            parts.append(self.model.node_emb_im(index))
        return torch.cat(parts, dim=1)


def _build(name: str, num_nodes: int, num_relations: int, hidden: int) -> torch.nn.Module:
    from torch_geometric.nn import kge

    classes = {"transe": kge.TransE, "distmult": kge.DistMult, "complex": kge.ComplEx, "rotate": kge.RotatE}
    if name not in classes:
        raise ValueError(f"unknown KGE model {name!r}; known: {', '.join(classes)}")
    return classes[name](num_nodes, num_relations, hidden)


def training_triples(train_snapshot: Snapshot, hidden_categories: np.ndarray | None = None) -> tuple[Tensor, list[Tensor]]:
    """(triples [N, 3] as (product, relation, tail entity), candidate tails per relation).

    Entities: products ``[0, P)``, values ``[P, P + V)``, categories ``[P + V, P + V + C)``.
    Relations: attributes ``[0, A)`` and ``in_category`` = ``A``.

    Args:
        train_snapshot: the training graph (held-out triples already removed).
        hidden_categories: [P] bool, products whose category triple is left out.
    """
    P, V, A = train_snapshot.num_products, len(train_snapshot.values), len(train_snapshot.attributes)
    attribute = np.stack([train_snapshot.edge_product, train_snapshot.edge_attribute, train_snapshot.edge_value + P], 1)
    placed = train_snapshot.product_category >= 0
    if hidden_categories is not None:
        placed &= ~hidden_categories
    products = np.flatnonzero(placed)
    category = np.stack([products, np.full(products.size, A), train_snapshot.product_category[products] + P + V], 1)
    triples = torch.from_numpy(np.concatenate([attribute, category]).astype(np.int64))
    candidates = [torch.from_numpy(np.flatnonzero(train_snapshot.value_attribute == a) + P) for a in range(A)]
    candidates.append(torch.arange(len(train_snapshot.categories)) + P + V)
    return triples, candidates


def train_kge(
    name: str,
    train_snapshot: Snapshot,
    val_task: RankingTask,
    config: KGEConfig,
    hidden_categories: np.ndarray | None = None,
    progress=None,
) -> KGEResult:
    """Train one KGE baseline on the training graph; keep the best epoch by validation MRR.

    Args:
        name: one of :data:`KGE_MODELS`.
        train_snapshot: the training graph.
        val_task: validation triples (model selection).
        config: shared settings.
        hidden_categories: products whose category triple is withheld (the probe's test products).
        progress: called with (epoch, epochs) after each epoch.
    """
    import time

    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    P, V, C = train_snapshot.num_products, len(train_snapshot.values), len(train_snapshot.categories)
    triples, candidates = training_triples(train_snapshot, hidden_categories)
    sampler = AttributeNegativeSampler(candidates, triples)
    model = _build(name, P + V + C, len(train_snapshot.attributes) + 1, config.hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    best_state, best_mrr, best_epoch, curve = None, -1.0, 0, []
    start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(triples.shape[0], generator=generator)
        for chunk in order.split(config.batch_size):
            batch = triples[chunk]  # [b, 3]
            sample = sampler.sample(batch, config.negatives, generator=generator)
            tails = torch.cat([batch[:, 2:], sample.value.clamp(min=0)], dim=1)  # [b, 1 + k]
            logits = _pairwise(model, batch[:, 0], batch[:, 1], tails)
            logits = logits.masked_fill(torch.cat([torch.zeros_like(sample.mask[:, :1]), ~sample.mask], 1), float("-inf"))
            loss = F.cross_entropy(logits, torch.zeros(batch.shape[0], dtype=torch.long))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if progress:
            progress(epoch, config.epochs)
        if epoch % config.eval_every == 0 or epoch == config.epochs:
            model.eval()
            mrr = val_task.metrics(_scores(model, P, val_task))["mrr"] if len(val_task) else 0.0
            curve.append((epoch, mrr))
            if mrr > best_mrr:
                best_mrr, best_epoch, best_state = mrr, epoch, copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return KGEResult(name, model, P, time.perf_counter() - start, best_epoch, max(best_mrr, 0.0), curve)


def _pairwise(model: torch.nn.Module, head: Tensor, relation: Tensor, tails: Tensor) -> Tensor:
    """Scores [N, M] of ``M`` tails per (head [N], relation [N]) with a PyG KGE model."""
    n, m = tails.shape
    return model(head.repeat_interleave(m), relation.repeat_interleave(m), tails.reshape(-1)).view(n, m)


@torch.no_grad()
def _scores(model: torch.nn.Module, num_products: int, task: RankingTask) -> list[Tensor]:
    out = []
    for (p, a, _), cand in zip(task.facts.tolist(), task.candidates):
        out.append(_pairwise(model, torch.tensor([p]), torch.tensor([a]), (cand + num_products).view(1, -1))[0].float())
    return out
