"""MLM: 15% of the text tokens (never [CLS]/[SEP]/[PAD]) are hidden; of those 80% become
[MASK], 10% a random token, 10% stay, and the model predicts the original."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import Objective
from .masking import IGNORE, mask_tokens


def mlm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """``logits`` [M, vocab] at the masked positions, ``labels`` [M] original ids."""
    return F.cross_entropy(logits.float(), labels)


class MaskedLanguageModelling(Objective):
    name = "mlm"
    heads = ("mlm",)
    stage = "text"
    importance_column = 0

    def transform(self, parts, data, generator) -> None:
        o = self.config.objectives
        maskable = parts.attention_mask.bool() & ~torch.isin(parts.input_ids, data.special_ids) & parts.text_present.unsqueeze(1)
        parts.input_ids, parts.mlm_labels = mask_tokens(
            parts.input_ids, maskable, o.mlm_probability, data.special.mask, data.special.vocab_size, data.special_ids, generator
        )

    def loss(self, model, output, batch) -> dict[str, Tensor]:
        if output.mlm_logits is None:
            return {}
        return {"mlm": mlm_loss(output.mlm_logits, batch.mlm_labels[batch.mlm_labels != IGNORE])}
