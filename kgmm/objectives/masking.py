"""How inputs are hidden for masked modelling: BERT's token masking and image patch masking.

These are the batch transforms of the MLM and MOM objectives (:mod:`.mlm`, :mod:`.mom`).
Both draw from an explicit ``torch.Generator`` so a batch is a function of the seed and
its position in the run.
"""

from __future__ import annotations

import torch
from torch import Tensor

IGNORE = -100
"""Label of a position the loss ignores (PyTorch's cross-entropy default)."""


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
