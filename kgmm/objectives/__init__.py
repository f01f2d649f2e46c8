"""Pretraining objectives as registered parts: K3M's MLM, MOM and LPM, and beyond K3M
MBSD's self-distillation and SCALE's importance-weighted contrastive learning.

Each objective is one file holding an :class:`~.base.Objective` (its weight, an optional
batch transform, the heads it reads, its loss) and one line in
:data:`kgmm.registry.OBJECTIVES`. An objective whose weight is 0 is off: it masks nothing,
adds no head and no term, so with the beyond-K3M weights at 0 the total is K3M's, bit for bit.

* **importance_weighting** (SCALE): each objective with an ``importance_column`` is scaled
  by the batch-mean (detached) importance of its modality, normalised to a mean scale of 1.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..config import Config
from ..registry import OBJECTIVES
from .base import Objective
from .masking import IGNORE, mask_patches, mask_tokens

__all__ = ["IGNORE", "OBJECTIVES", "Objective", "ObjectiveStep", "build_objectives", "compute_losses", "importance_scales",
           "mask_patches", "mask_tokens"]


def build_objectives(config: Config) -> list[Objective]:
    """The active objectives (weight above 0), in registry order."""
    built = (OBJECTIVES.get(name)(config) for name in OBJECTIVES.names)
    return [objective for objective in built if objective.weight > 0]


def importance_scales(modality_weights: Tensor) -> Tensor:
    """[3] scales of the text, image and knowledge objectives: the batch-mean importance of
    those modalities (columns 0-2 of ``modality_weights`` [B, M]), divided by their mean.

    Detached: with gradients, the cheapest way to lower the loss would be to turn the
    importance of the hardest objective's modality down, not to get better at it.
    """
    mean = modality_weights.detach().float().mean(0)[:3]  # [3]
    return mean / mean.mean().clamp(min=1e-6)


def compute_losses(model: nn.Module, output, batch, config: Config, objectives: list[Objective] | None = None) -> dict[str, Tensor]:
    """Each active objective's terms where the batch has targets for them, and ``loss``,
    their weighted sum (a zero that still has a graph when no objective had a target)."""
    objectives = build_objectives(config) if objectives is None else objectives
    scales = importance_scales(output.modality_weights) if config.objectives.importance_weighting else None
    losses: dict[str, Tensor] = {}
    total = None
    for objective in objectives:
        weight = objective.weight
        if scales is not None and objective.importance_column is not None:
            weight = weight * scales[objective.importance_column]
        for name, value in objective.loss(model, output, batch).items():
            losses[name] = value
            total = weight * value if total is None else total + weight * value
    losses["loss"] = output.product.sum() * 0.0 if total is None else total
    return losses


class ObjectiveStep(nn.Module):
    """The model and its objectives as one module: ``forward(batch) -> (output, losses)``.

    The trainer wraps this (not the bare model) in DistributedDataParallel, so parameters an
    objective uses after the model's own forward (distillation students, contrastive
    projections) are used inside DDP's forward and their gradients are synchronised.
    """

    def __init__(self, model: nn.Module, config: Config) -> None:
        super().__init__()
        self.model, self.config = model, config
        self.objectives = build_objectives(config)
        self.heads = tuple(sorted({head for objective in self.objectives for head in objective.heads}))

    @property
    def terms(self) -> list[str]:
        """Every term name this step can return, ``loss`` first."""
        return ["loss", *(term for objective in self.objectives for term in objective.terms)]

    def forward(self, batch) -> tuple[object, dict[str, Tensor]]:
        output = self.model(batch, heads=self.heads)
        return output, compute_losses(self.model, output, batch, self.config, self.objectives)
