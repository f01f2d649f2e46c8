"""Masking rules, and each objective's loss falling when the tiny model overfits 16 products."""

from __future__ import annotations

import pytest
import torch

from tests.kgmm.k3m_testing import one_thread, tiny_config, tiny_setup

from kgmm.data.batches import batch_generator
from kgmm.objectives import IGNORE, compute_losses, mask_patches, mask_tokens
from kgmm.objectives.lpm import lpm_loss
from kgmm.training.optim import build_optimizer


def test_mask_tokens_follows_80_10_10_and_spares_special_tokens() -> None:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 1000, (64, 256), generator=generator)
    ids[:, 0], ids[:, -1] = 2, 3
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[:, 0] = maskable[:, -1] = False
    special = torch.tensor([0, 1, 2, 3, 4])
    masked, labels = mask_tokens(ids, maskable, 0.15, 4, 1000, special, generator)
    chosen = labels != IGNORE
    assert abs(chosen.float().mean().item() - 0.15 * 254 / 256) < 0.01
    assert not chosen[:, 0].any() and not chosen[:, -1].any()
    assert torch.equal(labels[chosen], ids[chosen]) and torch.equal(masked[~chosen], ids[~chosen])
    as_mask = (masked[chosen] == 4).float().mean().item()
    kept = (masked[chosen] == ids[chosen]).float().mean().item()
    assert abs(as_mask - 0.8) < 0.03 and abs(kept - 0.1) < 0.03
    assert not torch.isin(masked[chosen & (masked != 4)], torch.tensor([0, 1, 2, 3])).any()


def test_every_row_with_text_gets_a_masked_token() -> None:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(10, 100, (200, 3), generator=generator)
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[50:] = False  # rows without text
    _, labels = mask_tokens(ids, maskable, 0.01, 4, 100, torch.tensor([4]), generator)
    assert ((labels[:50] != IGNORE).sum(1) >= 1).all() and (labels[50:] == IGNORE).all()


def test_mask_patches_hides_a_share_of_present_images_only() -> None:
    present = torch.tensor([True, False, True])
    mask = mask_patches(present, 16, 0.25, torch.Generator().manual_seed(0))
    assert mask.sum(1).tolist() == [4, 0, 4]


def test_lpm_loss_ignores_padded_negatives() -> None:
    positive = torch.tensor([2.0])
    negative = torch.tensor([[1.0, 50.0]])
    assert torch.isclose(lpm_loss(positive, negative, torch.tensor([[True, False]])), torch.log1p(torch.exp(torch.tensor(-1.0))))


def test_each_loss_falls_when_overfitting_16_products() -> None:
    config = tiny_config(lr=3e-3, warmup_steps=0).replace("modality", drop_text=0.0, drop_image=0.0, drop_knowledge=0.0, swap_title=0.0, swap_image=0.0)
    with one_thread():
        model, data, _ = tiny_setup(config)
        products = torch.arange(16)
        optimizer = build_optimizer(model, config.train)
        history: dict[str, list[float]] = {"mlm": [], "mom": [], "lpm": []}
        model.train()
        for step in range(30):
            batch = data.build(products, batch_generator(0, step % 2), train=True)  # two fixed maskings
            losses = compute_losses(model, model(batch), batch, config)
            losses["loss"].backward()
            optimizer.step()
            optimizer.zero_grad()
            for name in history:
                history[name].append(losses[name].item())
    for name, values in history.items():
        start, end = sum(values[:4]) / 4, sum(values[-4:]) / 4
        assert end < 0.8 * start, f"{name} did not fall: {start:.3f} -> {end:.3f}"


@pytest.mark.parametrize("objective", ["mlm", "mom", "lpm"])
def test_a_zero_weight_turns_an_objective_off(objective: str) -> None:
    config = tiny_config().replace("objectives", **{objective: 0.0})
    with one_thread():
        model, data, _ = tiny_setup(config)
        batch = data.build(torch.arange(8), batch_generator(0, 0), train=True)
        losses = compute_losses(model, model(batch), batch, config)
    assert objective not in losses and torch.isfinite(losses["loss"])
