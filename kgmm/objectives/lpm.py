"""LPM (link prediction): each held-out (product, attribute, value) fact against
same-attribute negatives, softmax cross-entropy over 1 positive + k negatives.

The facts are held out of the batch's input (pair tokens and subgraph) by the batch
builder, which also draws the negatives (never a known fact).

With the link score's evidence terms (``model.evidence``), the deep score alone (the model
without those terms) is trained as well, weighted ``objectives.lpm_deep``. Why: the evidence
terms are fitted first (stage 0) and fit the training facts closely (the n-gram classifier
memorises them), so the joint loss leaves the deep path almost no gradient, and on Flipkart
joint training added nothing on held-out facts; trained to predict on its own, the deep path
learns what the text, photo and graph say, and the two are blended on validation facts
after training (:func:`kgmm.training.blend.fit_blend`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import Objective


def lpm_loss(positive: Tensor, negative: Tensor, negative_mask: Tensor) -> Tensor:
    """Cross-entropy of each positive against its valid negatives.

    Args:
        positive: [T] scores of held-out facts.
        negative: [T, k] scores of their negatives.
        negative_mask: [T, k] bool, False where a negative is padding.
    """
    logits = torch.cat([positive.unsqueeze(1), negative], dim=1).float()  # [T, 1+k]
    valid = torch.cat([torch.ones_like(negative_mask[:, :1]), negative_mask], dim=1)
    logits = logits.masked_fill(~valid, float("-inf"))
    return F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device))


class LinkPrediction(Objective):
    name = "lpm"
    heads = ("lpm",)
    importance_column = 2

    def loss(self, model, output, batch) -> dict[str, Tensor]:
        if output.lpm_scores is None:
            return {}
        scores = output.lpm_scores  # [T, 1+k]: the held-out fact, then its negatives
        loss = lpm_loss(scores[:, 0], scores[:, 1:], batch.lpm_negative_mask)
        deep, share = output.lpm_deep, model.config.objectives.lpm_deep
        if deep is not None and share > 0:  # the deep score alone must predict too (see objectives.lpm_deep)
            loss = loss + share * lpm_loss(deep[:, 0], deep[:, 1:], batch.lpm_negative_mask)
        return {"lpm": loss}
