"""The K3M model on real batches: shapes, masks that really hide, missing modalities, save/load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.kgmm.k3m_testing import one_thread_per_module, tiny_config, tiny_setup  # noqa: F401 (autouse fixture)

from kgmm.data.batches import batch_generator
from kgmm.errors import CheckpointError
from kgmm.model import K3M
from kgmm.schema import NodeKind
from kgmm.objectives import IGNORE, compute_losses


@pytest.fixture(scope="module")
def setup():
    model, data, _ = tiny_setup()
    return model, data


def train_batch(data, seed: int = 0, size: int = 8):
    generator = batch_generator(seed, 99)
    products = torch.randperm(data.num_products, generator=generator)[:size]
    return data.build(products, generator, train=True)


def outputs(model, batch):
    model.eval()
    with torch.no_grad():
        return model(batch)


def same(a, b, fields=("product", "fused", "modality_weights", "mlm_logits", "mom_prediction", "lpm_scores")) -> bool:
    return all(
        (getattr(a, f) is None and getattr(b, f) is None) or torch.equal(getattr(a, f), getattr(b, f)) for f in fields
    )


def test_forward_shapes_and_losses(setup) -> None:
    model, data = setup
    batch = train_batch(data)
    out = model.train()(batch)
    d = model.config.model.hidden
    assert out.product.shape == (8, d) and out.modality_weights.shape == (8, 3)
    assert out.mlm_logits.shape == (int((batch.mlm_labels != IGNORE).sum()), model.dims.vocab_size)
    assert out.mom_prediction.shape == out.mom_target.shape == (int(batch.patch_mask.sum()), 48)
    assert out.lpm_scores.shape == (batch.lpm_row.numel(), 1 + batch.lpm_negatives.shape[1])  # 1-N: every other value of the attribute
    losses = compute_losses(model, out, batch, model.config)
    assert set(losses) == {"mlm", "mom", "lpm", "loss"} and all(torch.isfinite(v) for v in losses.values())
    losses["loss"].backward()
    assert model.image.backbone.conv_stem.weight.grad is not None
    model.zero_grad(set_to_none=True)


def test_missing_modalities_are_placeholders_with_zero_weight(setup) -> None:
    model, data = setup
    batch = train_batch(data)
    batch.text_present[:] = False
    batch.mlm_labels[:] = IGNORE
    batch.image_present[:] = False
    batch.patch_mask[:] = False
    batch.kv_mask[:] = False
    out = outputs(model, batch)
    assert torch.isfinite(out.product).all()
    assert torch.equal(out.modality_weights[:, :2], torch.zeros(8, 2))  # text and image weigh exactly 0
    assert out.mlm_logits is None and out.mom_prediction is None


def test_pixels_of_a_masked_patch_do_not_change_the_output(setup) -> None:
    model, data = setup
    batch = train_batch(data)
    row = int(batch.image_present.nonzero()[0])
    before = outputs(model, batch)
    region = model.image.pixel_mask(batch.patch_mask[row : row + 1])[0, 0].bool()  # [S, S] hidden pixels
    assert region.any() and not region.all()
    changed = batch.pixels.clone()
    changed[row][:, region] = torch.randn(3, int(region.sum())) * 3
    batch_changed = type(batch)(**{**batch.__dict__, "pixels": changed})
    after = outputs(model, batch_changed)
    assert same(before, after)
    assert not torch.equal(before.mom_target, after.mom_target)  # the target is what changed
    visible = batch.pixels.clone()
    visible[row][:, ~region] += 1.0
    assert not same(before, outputs(model, type(batch)(**{**batch.__dict__, "pixels": visible})))


def test_absent_modalities_and_padding_are_not_read(setup) -> None:
    model, data = setup
    batch = train_batch(data)
    batch.image_present[0] = False
    batch.patch_mask[0] = False
    batch.text_present[1] = False
    batch.mlm_labels[1] = IGNORE
    before = outputs(model, batch)
    changed = type(batch)(**{k: v.clone() for k, v in batch.__dict__.items()})
    changed.pixels[0] = torch.randn_like(changed.pixels[0])  # row 0 has no image
    changed.input_ids[1] = torch.randint(5, 100, changed.input_ids[1].shape)  # row 1 has no text
    pad = changed.attention_mask == 0
    changed.input_ids[pad] = 7  # padding
    changed.kv_value[~changed.kv_mask] = 3  # pair padding
    assert same(before, outputs(model, changed))


def test_a_masked_token_is_hidden_from_the_model(setup) -> None:
    model, data = setup
    batch = train_batch(data, seed=3)
    rows, cols = ((batch.mlm_labels != IGNORE) & (batch.input_ids == data.special.mask)).nonzero(as_tuple=True)
    in_own_title = [
        (r, c) for r, c in zip(rows.tolist(), cols.tolist())
        if not batch.title_swapped[r] and 1 <= c <= len(data.titles[int(batch.products[r])])
    ]
    assert in_own_title, "no [MASK] in a title of this batch"
    row, col = in_own_title[0]
    product = int(batch.products[row])
    table = data.titles  # tokenised lazily, read-only: the batch reads an edited eager copy instead
    titles = list(table)
    title = titles[product]
    title[col - 1] = title[col - 1] + 1 if title[col - 1] + 1 < data.special.vocab_size else 10  # change the hidden token
    data.titles = titles
    try:
        again = train_batch(data, seed=3)
    finally:
        data.titles = table
    assert torch.equal(again.input_ids, batch.input_ids)
    assert not torch.equal(again.mlm_labels, batch.mlm_labels)
    # every stream and head but the link score's evidence terms, which read the whole text on
    # purpose (LPM does not ask for the masked token; the MLM head never sees them)
    assert same(outputs(model, batch), outputs(model, again), ("product", "fused", "modality_weights", "mlm_logits", "mom_prediction"))


def test_held_out_facts_are_not_in_the_input(setup) -> None:
    _, data = setup
    batch = train_batch(data)
    assert batch.lpm_row.numel() > 0
    value_nodes = (batch.node_kind == NodeKind.VALUE).nonzero().squeeze(1)
    for row, value in zip(batch.lpm_row.tolist(), batch.lpm_value.tolist()):
        assert value not in batch.kv_value[row][batch.kv_mask[row]].tolist()
        nodes = value_nodes[batch.node_key[value_nodes] == value]
        src, dst = batch.edge_index
        touching = (torch.isin(src, nodes) & (dst == row)) | ((src == row) & torch.isin(dst, nodes))
        assert not touching.any()
    negatives = batch.lpm_negatives[batch.lpm_negative_mask]
    attributes = batch.lpm_attribute.unsqueeze(1).expand_as(batch.lpm_negatives)[batch.lpm_negative_mask]
    assert torch.equal(data.value_attribute[negatives], attributes)  # same-attribute negatives


def test_save_and_load_round_trip_exactly(setup, tmp_path: Path) -> None:
    model, data = setup
    model.save_pretrained(tmp_path / "m")
    loaded = K3M.from_pretrained(tmp_path / "m")
    own, other = model.state_dict(), loaded.state_dict()
    assert own.keys() == other.keys() and all(torch.equal(own[k], other[k]) for k in own)
    assert loaded.config == model.config and loaded.dims == model.dims and loaded.id_maps == model.id_maps
    assert loaded.tokenizer.get_vocab() == model.tokenizer.get_vocab()
    assert loaded.snapshot_hash == model.snapshot_hash
    batch = train_batch(data)
    assert same(outputs(model, batch), outputs(loaded, batch))


def test_foreign_and_corrupt_checkpoints_are_refused(setup, tmp_path: Path) -> None:
    model, _ = setup
    with pytest.raises(CheckpointError, match="no such checkpoint directory"):
        K3M.from_pretrained(tmp_path / "nothing")
    foreign = tmp_path / "hf"
    foreign.mkdir()
    (foreign / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="not a kgmm checkpoint"):
        K3M.from_pretrained(foreign)
    model.save_pretrained(tmp_path / "ok")
    broken = tmp_path / "broken"
    shutil.copytree(tmp_path / "ok", broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="model.safetensors is missing or corrupt"):
        K3M.from_pretrained(broken)
    (broken / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json is corrupt"):
        K3M.from_pretrained(broken)


@pytest.mark.parametrize(
    ("fusion", "score", "gnn", "target"),
    [("mean", "transe", "transformer", "nce"), ("gumbel", "rotate", "none", "pixels"), ("gated", "bilinear", "rgcn", "pixels"), ("gumbel", "mlp", "rgcn", "nce")],
)
def test_every_component_trains(fusion: str, score: str, gnn: str, target: str) -> None:
    config = tiny_config()
    config = config.replace("model", fusion=fusion, score=score).replace("knowledge", gnn=gnn).replace("objectives", mom_target=target)
    model, data, _ = tiny_setup(config)
    batch = train_batch(data)
    losses = compute_losses(model, model.train()(batch), batch, config)
    assert torch.isfinite(losses["loss"])
    losses["loss"].backward()
    assert model.scorer.relation.weight.grad is not None


def test_pretrained_text_encoder_from_a_local_directory(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel

    from kgmm.text import save_tokenizer

    _, _, tokenizer = tiny_setup()
    local = tmp_path / "my-bert"
    bert = BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=48, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=96, max_position_embeddings=128))
    bert.save_pretrained(local)
    save_tokenizer(tokenizer, local)
    config = tiny_config().replace("text", encoder="pretrained", pretrained=str(local))
    model, _, _ = tiny_setup(config)
    loaded = model.text.transformer.embeddings.word_embeddings.weight
    assert torch.equal(loaded, bert.embeddings.word_embeddings.weight)  # weights came from the directory
    model.save_pretrained(tmp_path / "saved")
    shutil.rmtree(local)  # the checkpoint no longer needs the original directory
    again = K3M.from_pretrained(tmp_path / "saved")
    assert torch.equal(again.text.transformer.embeddings.word_embeddings.weight, loaded)
    assert again.text.transformer.config.hidden_size == 48
