"""SCALE's inter-modality contrastive learning, weighted by the learned modality importance.

For modalities ``a``, ``b``: on the rows with both, row ``i``'s ``a`` view must pick its own
``b`` view among the batch's (and back); each pair's term is weighted by the batch mean of
``w_a * w_b`` (detached importance weights), normalised to sum to 1. A view is a stream's
pooled vector before interaction through a projection of its own (this objective's head).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Objective


def symmetric_infonce(left: Tensor, right: Tensor, temperature: float) -> Tensor:
    """Per-pair InfoNCE [N] of [N, d] views (row ``i`` of each is a positive pair, the other
    rows in-batch negatives), averaged over both directions; cosine similarity / ``temperature``."""
    a, b = F.normalize(left.float(), dim=-1), F.normalize(right.float(), dim=-1)
    logits = a @ b.t() / temperature  # [N, N]
    target = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, target, reduction="none") + F.cross_entropy(logits.t(), target, reduction="none")) / 2


def contrastive_loss(views: dict[str, tuple[Tensor, Tensor]], modality_weights: Tensor, temperature: float) -> Tensor:
    """Importance-weighted symmetric InfoNCE over every pair of modality views.

    Args:
        views: name -> (view [B, d], present [B]), in the column order of ``modality_weights``.
        modality_weights: [B, M] importance; detached, so the importance is learned from the
            objectives, not bent to make this loss small (it could weight a hard pair to 0).
        temperature: InfoNCE temperature.
    """
    weights = modality_weights.detach().float()
    items = list(views.items())
    terms, scales = [], []
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            (za, pa), (zb, pb) = items[i][1], items[j][1]
            rows = pa & pb
            if int(rows.sum()) < 2:
                continue
            terms.append(symmetric_infonce(za[rows], zb[rows], temperature).mean())
            scales.append((weights[rows, i] * weights[rows, j]).mean())
    if not terms:
        return sum(z.sum() for z, _ in views.values()) * 0.0
    scale = torch.stack(scales)
    return (torch.stack(terms) * scale).sum() / scale.sum().clamp(min=1e-12)


class ModalityContrast(Objective):
    name = "contrastive"
    head_name = "contrast"  # the model's attribute holding the projections (checkpoint key prefix)

    def make_head(self, model: nn.Module) -> nn.Module:
        d = self.config.model.hidden
        return nn.ModuleDict({name: nn.Linear(d, d) for name in model.stream_names})

    def loss(self, model, output, batch) -> dict[str, Tensor]:
        if output.encoded is None:
            return {}
        head = getattr(model, self.head_name)
        streams, present = output.encoded[0], output.encoded[1]
        views = {name: (head[name](model.stream_vector(name, *streams[name])), present[name]) for name in model.stream_names}
        return {"contrastive": contrastive_loss(views, output.modality_weights, self.config.objectives.contrastive_temperature)}
