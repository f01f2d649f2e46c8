"""Stage 1 of MBSD's two-stage schedule: contrastive pretraining on behaviour pairs.

Products that users view, buy or search together are alike in ways a catalog does not
say. Before the multimodal objectives (stage 2, :class:`kgmm.training.trainer.Trainer`),
``train.behaviour_steps`` steps pull the fused vectors of behaviour-linked products
together and push them away from the other products of the batch (InfoNCE with in-batch
negatives, symmetric, each pair weighted by its behaviour weight).

A step's pairs are drawn from the training graph's behaviour edges with a generator seeded
by (seed, step), so stage 1 is as reproducible as stage 2. The two ends of a step's pairs
are encoded as two batches of distinct products (the subgraph sampler needs distinct seed
nodes), with the same masking, dropout and modality noise as stage-2 batches, so stage 1
already teaches the model to cope with missing and noisy modalities.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import Tensor

from ..config import Config
from ..data.batches import PretrainData, batch_generator
from ..objectives.contrastive import symmetric_infonce
from .metrics import MetricsLog

STAGE1_KEY = 7  # batch_generator key of stage-1 batches (stage 2 uses 0 and 1)


@dataclass
class BehaviourStageResult:
    """What stage 1 did: steps, seconds, and its first and last loss (``None``: skipped)."""

    steps: int = 0
    pairs: int = 0
    seconds: float = 0.0
    first_loss: float | None = None
    last_loss: float | None = None


def behaviour_pairs(data: PretrainData) -> tuple[Tensor, Tensor, Tensor]:
    """(a [B], b [B], weight [B]) of the training snapshot's behaviour edges, every kind."""
    snapshot = data.snapshot
    return (torch.from_numpy(snapshot.behaviour_src.astype("int64")), torch.from_numpy(snapshot.behaviour_dst.astype("int64")),
            torch.from_numpy(snapshot.behaviour_weight.astype("float32")))


def sample_pairs(a: Tensor, b: Tensor, weight: Tensor, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Up to ``size`` pairs in which no product appears twice (one end of one pair only).

    Pairs are visited in a random order and kept greedily while both ends are new, so an
    in-batch negative is never the same product as a positive.
    """
    order = torch.randperm(a.numel(), generator=generator)
    seen: set[int] = set()
    kept: list[int] = []
    for i in order.tolist():
        x, y = int(a[i]), int(b[i])
        if x in seen or y in seen:
            continue
        seen.update((x, y))
        kept.append(i)
        if len(kept) == size:
            break
    index = torch.tensor(kept, dtype=torch.long)
    return a[index], b[index], weight[index]


def behaviour_infonce(left: Tensor, right: Tensor, weight: Tensor, temperature: float) -> Tensor:
    """Symmetric InfoNCE of [N, d] pairs (row i of each is a positive pair), weighted per pair.

    Weights are normalised to mean 1, so they say which pairs matter more, not how large the
    loss is.
    """
    per_pair = symmetric_infonce(left, right, temperature)  # [N]
    w = weight.to(per_pair.device).float()
    return (per_pair * (w / w.mean())).mean()


def run_behaviour_stage(model, data: PretrainData, config: Config, device: torch.device, log: MetricsLog | None = None,
                        autocast=None, on_step=None) -> BehaviourStageResult:
    """Train ``model`` for ``config.train.behaviour_steps`` contrastive steps (its own AdamW).

    Stage 2 starts with a fresh optimizer and schedule: stage 1 only moves the weights.
    Returns an empty result, changing nothing, when the steps are 0 or the training graph
    has fewer than two behaviour pairs (a batch needs a negative).
    """
    steps = config.train.behaviour_steps
    a, b, weight = behaviour_pairs(data)
    if steps <= 0 or a.numel() < 2:
        return BehaviourStageResult()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.train.lr, weight_decay=config.train.weight_decay)
    temperature = config.objectives.behaviour_temperature
    was_training = model.training
    model.train()
    start, first, last, pairs = time.perf_counter(), None, None, 0
    try:
        for step in range(steps):
            generator = batch_generator(config.train.seed, STAGE1_KEY, step)
            left, right, w = sample_pairs(a, b, weight, config.train.batch_size, generator)
            if left.numel() < 2:
                continue
            with autocast() if autocast else nullcontext():
                u = model(data.build(left, generator, train=True).to(device), heads=False).fused
                v = model(data.build(right, generator, train=True).to(device), heads=False).fused
            loss = behaviour_infonce(u, v, w, temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.train.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.grad_clip)
            optimizer.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(f"behaviour stage: loss is {value} at step {step + 1}")
            first = value if first is None else first
            last, pairs = value, pairs + left.numel()
            if log is not None and ((step + 1) % max(config.train.log_every, 1) == 0 or step + 1 == steps):
                log.write({"kind": "behaviour", "step": step + 1, "behaviour": round(value, 5), "pairs": int(left.numel()),
                           "seconds": round(time.perf_counter() - start, 2)})
            if on_step is not None:
                on_step(step + 1)
    finally:
        model.train(was_training)
    return BehaviourStageResult(steps, pairs, time.perf_counter() - start, first, last)
