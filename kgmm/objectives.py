"""Pretraining objectives: how inputs are masked, and the three losses.

* **MLM**: 15% of the text tokens (never [CLS]/[SEP]/[PAD]); of those 80% become [MASK],
  10% a random token, 10% stay, and the model predicts the original.
* **MOM**: a share of the image patches is hidden (pixels and token, see
  :class:`~kgmm.model.image_encoder.ImageEncoder`) and the model either reconstructs
  each hidden patch's pixels (``pixels``: regression on the normalised 4x4 RGB cells) or
  picks it out among all hidden patches of the batch (``nce``: classification, InfoNCE).
* **LPM**: each held-out (product, attribute, value) fact against same-attribute
  negatives, softmax cross-entropy over 1 positive + k negatives.

Beyond K3M, each off unless its weight is positive (off: the total is K3M's, bit for bit):

* **distill** (MBSD self-distillation): the fused model is the teacher (detached); each
  modality alone (:meth:`K3M.forward` with one stream, the others absent) is a student,
  trained with the KL divergence to the teacher's LPM candidate distribution (and, for
  text, its masked-token distribution) plus feature matching (MSE to the fused product
  vector).
* **contrastive** (SCALE): InfoNCE between the projected views of two modalities of one
  product, in-batch negatives, for every pair of modalities both present; each pair's term
  is weighted by the product of the two modalities' (detached) importance weights.
* **importance_weighting** (SCALE): MLM, MOM and LPM are scaled by the batch-mean
  (detached) importance of text, image and knowledge, normalised to a mean scale of 1.

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
    if config.importance_weighting:
        weights = {name: w * scale for (name, w), scale in zip(weights.items(), importance_scales(output.modality_weights))}
    total = sum(weights[name] * value for name, value in losses.items())
    if not losses:  # nothing to learn from in this batch: a zero that still has a graph
        total = output.product.sum() * 0.0
    if config.distill > 0 and output.branches:
        losses["distill"] = distill_loss(output, batch, config.distill_temperature)
        total = total + config.distill * losses["distill"]
    if config.contrastive > 0 and output.views:
        losses["contrastive"] = contrastive_loss(output.views, output.modality_weights, config.contrastive_temperature)
        total = total + config.contrastive * losses["contrastive"]
    losses["loss"] = total
    return losses


def importance_scales(modality_weights: Tensor) -> Tensor:
    """[3] scales of MLM, MOM, LPM: the batch-mean importance of text, image, knowledge
    (columns 0-2 of ``modality_weights`` [B, M]), divided by their mean.

    Detached: with gradients, the cheapest way to lower the loss would be to turn the
    importance of the hardest objective's modality down, not to get better at it.
    """
    mean = modality_weights.detach().float().mean(0)[:3]  # [3]
    return mean / mean.mean().clamp(min=1e-6)


def kl_to_teacher(student: Tensor, teacher: Tensor, temperature: float, valid: Tensor | None = None) -> Tensor:
    """Hinton's ``T^2 * KL(teacher || student)`` over the last dimension, mean over rows.

    Args:
        student: [N, C] logits (gradients flow).
        teacher: [N, C] logits (detached here).
        temperature: softening ``T``.
        valid: [N, C] bool, False where a candidate is padding (left out of both).
    """
    s, t = student.float() / temperature, teacher.detach().float() / temperature
    if valid is not None:  # a large finite negative, not -inf: keeps 0 * log 0 out of the gradient
        s, t = s.masked_fill(~valid, -1e4), t.masked_fill(~valid, -1e4)
    log_s, log_t = F.log_softmax(s, -1), F.log_softmax(t, -1)
    terms = log_t.exp() * (log_t - log_s)
    if valid is not None:
        terms = terms.masked_fill(~valid, 0.0)
    return terms.sum(-1).mean() * temperature**2


def distill_loss(output, batch, temperature: float) -> Tensor:
    """Mean over the students (each modality alone) of LPM KL + MLM KL (text) + feature MSE.

    A student only learns on rows that have its modality; the teacher is ``output``
    itself, detached.
    """
    terms = []
    product = output.product.detach()  # [B, d]
    for column, (name, branch) in enumerate(output.branches.items()):
        rows = branch.present[:, column]  # [B] rows that have this modality
        if not rows.any():
            continue
        loss = F.mse_loss(branch.product[rows].float(), product[rows].float())
        if output.lpm_scores is not None and branch.lpm_scores is not None:
            facts = rows[batch.lpm_row]  # [T]
            if facts.any():
                valid = torch.cat([torch.ones_like(batch.lpm_negative_mask[:, :1]), batch.lpm_negative_mask], 1)[facts]
                loss = loss + kl_to_teacher(branch.lpm_scores[facts], output.lpm_scores[facts], temperature, valid)
        if name == "text" and output.mlm_logits is not None and branch.mlm_logits is not None:
            loss = loss + kl_to_teacher(branch.mlm_logits, output.mlm_logits, temperature)
        terms.append(loss)
    return torch.stack(terms).mean() if terms else output.product.sum() * 0.0


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

    For modalities ``a``, ``b``: on the rows with both, row ``i``'s ``a`` view must pick
    its own ``b`` view among the batch's (and back); the pair's term is weighted by the
    batch mean of ``w_a * w_b``, and the weights are normalised to sum to 1.
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
