"""Self-distillation (MBSD), contrastive learning and modality importance (SCALE): each loss
is finite, absent when off (the total is K3M's, bit for bit), and falls when overfitting."""

from __future__ import annotations

import hashlib
import json
import math

import pytest
import torch

from tests.kgmm.k3m_testing import TINY, one_thread, tiny_config, tiny_setup

from kgmm.config import ADDED_FIELDS, load_config
from kgmm.data.batches import batch_generator
from kgmm.objectives import (
    compute_losses,
    contrastive_loss,
    importance_scales,
    kl_to_teacher,
)
from kgmm.training.optim import build_optimizer

NO_NOISE = {"drop_text": 0.0, "drop_image": 0.0, "drop_knowledge": 0.0, "swap_title": 0.0, "swap_image": 0.0}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_thread():
        yield


def losses_of(model, batch, objectives, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)  # the same dropout masks for every model
    return compute_losses(model.train()(batch), batch, objectives)


K3M_FIELDS = {
    "text": {"dropout", "encoder", "heads", "hidden", "intermediate", "layers", "max_length", "pretrained", "vocab_size"},
    "image": {"augment", "backbone", "size", "weights"},
    "knowledge": {"fanout", "gnn", "gnn_layers", "max_pairs"},
    "model": {"dropout", "fusion", "gumbel_tau", "heads", "hidden", "interaction_layers", "score"},
    "objectives": {"lpm", "lpm_negatives", "lpm_positives", "mlm", "mlm_probability", "mom", "mom_probability", "mom_target"},
    "modality": {"drop_image", "drop_knowledge", "drop_text", "swap_image", "swap_title"},
    "train": {"batch_size", "checkpoint_every", "cpu_threads", "device", "eval_batch_size", "eval_every", "grad_accumulation",
              "grad_clip", "keep_checkpoints", "log_every", "lr", "max_steps", "max_val", "num_workers", "patience", "precision",
              "schedule", "seed", "val_fraction", "warmup_steps", "weight_decay"},
}
"""The config fields of K3M as first released: every later field must be in ADDED_FIELDS."""


def test_a_config_without_the_new_fields_keeps_its_hash() -> None:
    for section, names in load_config(TINY).to_dict().items():
        later = set(names) - K3M_FIELDS[section]
        assert later <= ADDED_FIELDS.get(section, set()), f"{section}: {later} change every old config's hash"
    config = load_config(TINY)
    data = config.to_dict()
    for section, names in ADDED_FIELDS.items():
        for name in names:
            del data[section][name]
    assert config.hash() == hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
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
    old = losses_of(k3m, batch, config.objectives)
    assert set(old) == {"mlm", "mom", "lpm", "loss"}
    assert torch.equal(old["loss"], old["mlm"] + old["mom"] + old["lpm"])
    new = losses_of(extended, batch, on.objectives)
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
    weighted = config.replace("objectives", importance_weighting=True).objectives
    torch.manual_seed(0)
    out = model.train()(batch)
    losses = compute_losses(out, batch, weighted)
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
    model, data, _ = tiny_setup(config)
    optimizer = build_optimizer(model, config.train)
    history: dict[str, list[float]] = {"distill": [], "contrastive": []}
    model.train()
    for step in range(30):
        batch = data.build(torch.arange(16), batch_generator(0, step % 2), train=True)
        losses = compute_losses(model(batch), batch, config.objectives)
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
        streams, present, pairs, kv_mask = model._encode(batch, model.stream_names)
        for name in model.stream_names:
            alone = model(batch, modalities=(name,))
            student = model._decode(batch, *model._alone(batch, name, streams, present, pairs, kv_mask), heads=True)
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
