"""Pretraining objectives: how inputs are masked, and the three losses.

* **MLM**: 15% of the text tokens (never [CLS]/[SEP]/[PAD]); of those 80% become [MASK],
  10% a random token, 10% stay, and the model predicts the original.
* **MOM**: a share of the image patches is hidden (pixels and token, see
  :class:`~kgmm.model.image_encoder.ImageEncoder`) and the model either reconstructs
  each hidden patch's pixels (``pixels``: regression on the normalised 4x4 RGB cells) or
  picks it out among all hidden patches of the batch (``nce``: classification, InfoNCE).
* **LPM**: each held-out (product, attribute, value) fact against same-attribute
  negatives, softmax cross-entropy over 1 positive + k negatives.

Masking draws from an explicit ``torch.Generator`` so a batch is a function of the seed
and its position in the run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import ObjectiveConfig

IGNORE = -100


def mask_tokens(
    input_ids: Tensor, maskable: Tensor, probability: float, mask_id: int, vocab_size: int, special_ids: Tensor, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """BERT's 80/10/10 masking.

    Args:
        input_ids: [B, L] token ids.
        maskable: [B, L] bool, positions that may be chosen (real, non-special tokens of
            rows with text). Every row with a maskable position gets at least one.
        probability: share of maskable positions chosen.
        mask_id: the [MASK] id.
        vocab_size: random replacements are drawn from ``[0, vocab_size)`` minus specials.
        special_ids: [s] ids never used as a random replacement.
        generator: randomness.

    Returns:
        (masked input_ids [B, L], labels [B, L] with -100 where not chosen)
    """
    chosen = (torch.rand(input_ids.shape, generator=generator) < probability) & maskable  # [B, L]
    needs_one = maskable.any(1) & ~chosen.any(1)  # rows that drew nothing
    if needs_one.any():
        noise = torch.rand(input_ids.shape, generator=generator).masked_fill(~maskable, -1.0)
        chosen[needs_one, noise[needs_one].argmax(1)] = True
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE))
    roll = torch.rand(input_ids.shape, generator=generator)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
    random_ids = torch.where(torch.isin(random_ids, special_ids), torch.full_like(random_ids, mask_id), random_ids)
    masked = torch.where(chosen & (roll < 0.8), torch.full_like(input_ids, mask_id), input_ids)
    masked = torch.where(chosen & (roll >= 0.8) & (roll < 0.9), random_ids, masked)
    return masked, labels


def mask_patches(present: Tensor, num_patches: int, probability: float, generator: torch.Generator) -> Tensor:
    """[B] image flags -> [B, N] hidden patches: ``round(p * N)`` (at least 1, at most N - 1) per image."""
    count = min(max(1, round(probability * num_patches)), max(num_patches - 1, 1))
    order = torch.rand(present.shape[0], num_patches, generator=generator).argsort(1)  # [B, N]
    mask = order < count
    return mask & present.unsqueeze(1)


def mlm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """``logits`` [M, vocab] at the masked positions, ``labels`` [M] original ids."""
    return F.cross_entropy(logits.float(), labels)


def mom_pixel_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean squared error on the normalised pixels of the hidden patches ([Q, 48] each)."""
    return F.mse_loss(prediction.float(), target.float())


def mom_nce_loss(prediction: Tensor, target: Tensor, temperature: float = 0.1) -> Tensor:
    """Classify each hidden patch among all hidden patches of the batch (InfoNCE)."""
    p = F.normalize(prediction.float(), dim=-1)
    t = F.normalize(target.float(), dim=-1)
    logits = p @ t.t() / temperature  # [Q, Q]
    return F.cross_entropy(logits, torch.arange(logits.shape[0], device=logits.device))


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


def compute_losses(output, batch, config: ObjectiveConfig) -> dict[str, Tensor]:
    """Each objective's loss where the batch has targets for it, and their weighted sum.

    Returns:
        name -> scalar tensor for ``mlm``, ``mom``, ``lpm`` (present ones only) and ``loss``.
    """
    losses: dict[str, Tensor] = {}
    if config.mlm > 0 and output.mlm_logits is not None:
        losses["mlm"] = mlm_loss(output.mlm_logits, batch.mlm_labels[batch.mlm_labels != IGNORE])
    if config.mom > 0 and output.mom_prediction is not None and output.mom_prediction.shape[0] > 1:
        loss = mom_pixel_loss if config.mom_target == "pixels" else mom_nce_loss
        losses["mom"] = loss(output.mom_prediction, output.mom_target)
    if config.lpm > 0 and output.lpm_scores is not None:
        scores = output.lpm_scores  # [T, 1+k]: the held-out fact, then its negatives
        losses["lpm"] = lpm_loss(scores[:, 0], scores[:, 1:], batch.lpm_negative_mask)
    weights = {"mlm": config.mlm, "mom": config.mom, "lpm": config.lpm}
    total = sum(weights[name] * value for name, value in losses.items())
    if not losses:  # nothing to learn from in this batch: a zero that still has a graph
        total = output.product.sum() * 0.0
    losses["loss"] = total
    return losses
