"""AdamW with decoupled weight decay on matrices only, and warm-up then decay."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import TrainConfig


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW; biases, norms, embeddings and learned tokens are not decayed. The link score's
    evidence terms (:mod:`kgmm.model.evidence`: a handful of weights and a bag of n-grams each
    seen a few times per epoch) learn at ``evidence_lr_scale`` times the rate, as fastText's
    sparse classifier does next to a transformer's rate."""
    decay, no_decay, evidence = [], [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        if name.startswith("evidence."):
            evidence.append(parameter)
            continue
        is_matrix = parameter.dim() >= 2 and "embed" not in name and not name.startswith("knowledge.") and "relation" not in name
        (decay if is_matrix else no_decay).append(parameter)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if evidence:
        groups.append({"params": evidence, "weight_decay": 0.0, "lr": config.lr * config.evidence_lr_scale})
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.98), eps=1e-6)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup_steps``, then cosine or linear decay to 5% by ``max_steps``."""
    warmup, total, kind = config.warmup_steps, config.max_steps, config.schedule

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if kind == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if kind == "linear":
            return max(0.05, 1.0 - progress)
        return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
