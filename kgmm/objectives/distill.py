"""MBSD self-distillation: the fused model is the teacher, each modality alone a student.

The teacher is the batch's own fused output (detached). Each student is the model reading
one stream alone (:meth:`kgmm.model.K3M.branch`: the other streams shown as absent, as
for a product that lacks them), trained with the KL divergence to the teacher's LPM
candidate distribution (and, for text, its masked-token distribution) plus feature
matching (MSE to the fused product vector). A student only learns on rows that have its
modality.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import Objective


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


def distill_loss(output, branches: dict, batch, temperature: float) -> Tensor:
    """Mean over the students (``branches``: stream name -> its output alone) of LPM KL +
    MLM KL (text) + feature MSE; ``output`` is the teacher."""
    terms = []
    product = output.product.detach()  # [B, d]
    for column, (name, branch) in enumerate(branches.items()):
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


class SelfDistillation(Objective):
    name = "distill"
    heads = ("mlm", "lpm")

    def loss(self, model, output, batch) -> dict[str, Tensor]:
        if output.encoded is None:  # not a full training forward: no students to teach
            return {}
        branches = {name: model.branch(batch, output, name) for name in model.stream_names}
        return {"distill": distill_loss(output, branches, batch, self.config.objectives.distill_temperature)}
