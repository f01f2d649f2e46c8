"""MOM (masked image modelling): a share of the image patches is hidden (pixels and token,
see :class:`~kgmm.modalities.image.ImageEncoder`) and the model either reconstructs each
hidden patch's pixels (``pixels``: regression on the normalised 4x4 RGB cells) or picks it
out among all hidden patches of the batch (``nce``: classification, InfoNCE)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..registry import MOM_TARGETS
from .base import Objective
from .masking import mask_patches


def pixel_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean squared error on the normalised pixels of the hidden patches ([Q, 48] each)."""
    return F.mse_loss(prediction.float(), target.float())


def nce_loss(prediction: Tensor, target: Tensor, temperature: float = 0.1) -> Tensor:
    """Classify each hidden patch among all hidden patches of the batch (InfoNCE)."""
    p = F.normalize(prediction.float(), dim=-1)
    t = F.normalize(target.float(), dim=-1)
    logits = p @ t.t() / temperature  # [Q, Q]
    return F.cross_entropy(logits, torch.arange(logits.shape[0], device=logits.device))


class MaskedImageModelling(Objective):
    name = "mom"
    heads = ("mom",)
    stage = "image"
    importance_column = 1

    def transform(self, parts, data, generator) -> None:
        parts.patch_mask = mask_patches(parts.image_present, data.num_patches, self.config.objectives.mom_probability, generator)

    def loss(self, model, output, batch) -> dict[str, Tensor]:
        if output.mom_prediction is None or output.mom_prediction.shape[0] <= 1:
            return {}
        return {"mom": MOM_TARGETS.get(self.config.objectives.mom_target)(output.mom_prediction, output.mom_target)}
