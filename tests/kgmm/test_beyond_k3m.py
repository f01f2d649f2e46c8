"""Self-distillation (MBSD), contrastive learning and modality importance (SCALE): each loss
is finite, absent when off (the total is K3M's, bit for bit), and falls when overfitting."""

from __future__ import annotations

import math

from types import SimpleNamespace

import pytest
import torch

from tests.kgmm.k3m_testing import one_thread_per_module, TINY, tiny_config, tiny_setup  # noqa: F401 (autouse fixture)

from kgmm.config import load_config
from kgmm.data.batches import batch_generator
from kgmm.objectives import compute_losses, importance_scales
from kgmm.objectives.contrastive import contrastive_loss
from kgmm.objectives.distill import kl_to_teacher
from kgmm.training.optim import build_optimizer

NO_NOISE = {"drop_text": 0.0, "drop_image": 0.0, "drop_knowledge": 0.0, "swap_title": 0.0, "swap_image": 0.0}


def losses_of(model, batch, config, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)  # the same dropout masks for every model
    return compute_losses(model, model.train()(batch), batch, config)


def test_the_later_switches_change_the_hash_only_when_used() -> None:
    """Configs hash only what differs from the defaults, so the Beyond-K3M fields (off by
    default) leave a K3M config's hash, and its checkpoints' resumability, as they were."""
    config = load_config(TINY)
    off = config.replace("objectives", distill=0.0, contrastive=0.0, importance_weighting=False).replace("train", behaviour_steps=0)
    assert off.hash() == config.hash()
    assert config.replace("objectives", distill=1.0).hash() != config.hash()
    assert config.replace("objectives", importance_weighting=True).hash(training_only=True) != config.hash(training_only=True)


def test_switched_off_the_model_and_the_losses_are_k3m_exactly() -> None:
    config = tiny_config()
    k3m, data, _ = tiny_setup(config)
    on = config.replace("objectives", distill=1.0, contrastive=1.0)
    extended, _, _ = tiny_setup(on)
    own = k3m.state_dict()
    assert set(extended.state_dict()) - set(own) == {k for k in extended.state_dict() if k.startswith("contrast.")}
    assert all(torch.equal(own[k], extended.state_dict()[k]) for k in own)  # same initialisation, new tensors drawn last
    assert set(tiny_setup(config.replace("objectives", distill=1.0))[0].state_dict()) == set(own)  # distillation adds none

    batch = data.build(torch.arange(16), batch_generator(0, 7), train=True)
    old = losses_of(k3m, batch, config)
    assert set(old) == {"mlm", "mom", "lpm", "loss"}
    assert torch.equal(old["loss"], old["mlm"] + old["mom"] + old["lpm"])
    new = losses_of(extended, batch, on)
    assert set(new) == {"mlm", "mom", "lpm", "distill", "contrastive", "loss"}
    for name in ("mlm", "mom", "lpm"):  # the teacher's forward pass is untouched by the students
        assert torch.equal(new[name], old[name]), name
    assert all(torch.isfinite(v) for v in new.values())
    assert torch.allclose(new["loss"], old["loss"] + new["distill"] + new["contrastive"])


def test_importance_weighting_scales_each_masked_objective_by_its_modality() -> None:
    weights = torch.tensor([[0.5, 0.25, 0.25], [0.7, 0.0, 0.3]])
    scales = importance_scales(weights)
    assert torch.allclose(scales.mean(), torch.tensor(1.0))
    assert torch.allclose(scales, torch.tensor([0.6, 0.125, 0.275]) / torch.tensor([0.6, 0.125, 0.275]).mean())
    config = tiny_config()
    model, data, _ = tiny_setup(config)
    batch = data.build(torch.arange(16), batch_generator(0, 3), train=True)
    weighted = config.replace("objectives", importance_weighting=True)
    torch.manual_seed(0)
    out = model.train()(batch)
    losses = compute_losses(model, out, batch, weighted)
    s = importance_scales(out.modality_weights)
    assert torch.allclose(losses["loss"], s[0] * losses["mlm"] + s[1] * losses["mom"] + s[2] * losses["lpm"])


def test_kl_to_teacher_is_zero_on_agreement_and_ignores_padding() -> None:
    teacher = torch.tensor([[2.0, 0.0, -1.0, 9.0]])
    valid = torch.tensor([[True, True, True, False]])
    student = teacher.clone().requires_grad_()
    assert kl_to_teacher(student, teacher, 2.0, valid).abs() < 1e-6
    padded_differently = torch.tensor([[2.0, 0.0, -1.0, -50.0]], requires_grad=True)
    loss = kl_to_teacher(padded_differently, teacher, 2.0, valid)
    assert loss.abs() < 1e-6
    loss.backward()
    assert torch.isfinite(padded_differently.grad).all() and padded_differently.grad[0, 3] == 0


def test_contrastive_loss_pairs_present_views_and_detaches_importance() -> None:
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(6, 16, generator=generator)
    present = torch.ones(6, dtype=torch.bool)
    weights = torch.full((6, 3), 1 / 3, requires_grad=True)
    aligned = {"text": (base, present), "image": (base.clone(), present), "knowledge": (base.clone(), present)}
    shuffled = {"text": (base, present), "image": (base[torch.randperm(6, generator=generator)], present), "knowledge": (base.clone(), present)}
    low, high = contrastive_loss(aligned, weights, 0.05), contrastive_loss(shuffled, weights, 0.05)
    assert low < 0.05 < high and torch.isfinite(high)
    assert not high.requires_grad  # importance is detached; the views here carry no gradient
    missing = {"text": (base, torch.zeros(6, dtype=torch.bool)), "image": (base, present), "knowledge": (base, present)}
    assert torch.isclose(contrastive_loss(missing, weights, 0.05), contrastive_loss({k: missing[k] for k in ("image", "knowledge")}, weights[:, 1:], 0.05))


def test_new_losses_fall_when_overfitting_16_products() -> None:
    config = tiny_config(lr=3e-3, warmup_steps=0).replace("modality", **NO_NOISE)
    config = config.replace("objectives", mlm=0.1, mom=0.1, lpm=0.1, distill=1.0, contrastive=1.0, importance_weighting=True)
    # the evidence terms (20x learning rate) move the teacher's distribution faster than 30 steps of
    # students can follow; this test pins the losses' mechanics, so it reads the deep score alone
    config = config.replace("model", evidence=False)
    model, data, _ = tiny_setup(config)
    optimizer = build_optimizer(model, config.train)
    history: dict[str, list[float]] = {"distill": [], "contrastive": []}
    model.train()
    for step in range(30):
        batch = data.build(torch.arange(16), batch_generator(0, step % 2), train=True)
        losses = compute_losses(model, model(batch), batch, config)
        losses["loss"].backward()
        optimizer.step()
        optimizer.zero_grad()
        for name, values in history.items():
            values.append(losses[name].item())
    for name, values in history.items():
        assert all(math.isfinite(v) for v in values), name
        start, end = sum(values[:4]) / 4, sum(values[-4:]) / 4
        assert end < 0.8 * start, f"{name} did not fall: {start:.3f} -> {end:.3f}"


def test_each_modality_alone_is_what_its_student_sees() -> None:
    config = tiny_config().replace("objectives", distill=1.0)
    model, data, _ = tiny_setup(config)
    batch = data.build(torch.arange(12), batch_generator(0, 5), train=True)
    batch.text_present[0] = False  # a row without text: text alone knows nothing about it
    batch.mlm_labels[0] = -100
    model.eval()
    with torch.no_grad():
        encoded = SimpleNamespace(encoded=model._encode(batch, model.stream_names))  # what a training forward keeps
        for name in model.stream_names:
            alone = model(batch, modalities=(name,))
            student = model.branch(batch, encoded, name)  # the distillation student
            assert torch.equal(alone.product, student.product) and torch.equal(alone.lpm_scores, student.lpm_scores), name
            column = model.stream_names.index(name)
            rows = alone.present[:, column]
            assert torch.equal(alone.modality_weights[rows, column], torch.ones(int(rows.sum())))
            assert torch.isfinite(alone.product).all()
            assert (alone.mlm_logits is not None) == (name == "text")
            assert (alone.mom_prediction is not None) == (name == "image")
        assert not model(batch, modalities=("text",)).present[0, 0]
    with pytest.raises(ValueError, match="unknown modality video"):
        model(batch, modalities=("video",))
