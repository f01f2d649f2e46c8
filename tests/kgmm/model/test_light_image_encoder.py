"""The latency-sized ``light`` image backbone (issue 7, item 4): same contract as the timm CNNs.

Real photos (JPEG and PNG written with Pillow, and the example catalog's JPEGs) go through
the project's image pipeline; the encoder trains, masks patches as MOM needs, and a K3M
built on it saves and loads exactly. The default backbone stays what it was.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.kgmm.k3m_testing import one_thread_per_module, EXAMPLES, tiny_config, tiny_setup  # noqa: F401 (autouse fixture)

from kgmm.config import load_config
from kgmm.data.batches import batch_generator
from kgmm.modalities.photos import ImageStore
from kgmm.errors import ConfigError
from kgmm.model import K3M
from kgmm.modalities.image import PIXEL_PATCH, ImageEncoder, LightCNN
from kgmm.objectives import compute_losses
from kgmm.objectives.mom import pixel_loss as mom_pixel_loss
from kgmm.registry import check_image_backbone

LIGHT = EXAMPLES / "light.yaml"


def light_config():
    """The tests' tiny config on the light backbone (``examples/light.yaml`` is exactly that)."""
    return tiny_config().replace("image", backbone="light")


def photos(tmp_path: Path) -> list[str]:
    """A JPEG and a PNG with different content: a red/blue gradient and a green disc on white."""
    ys, xs = np.mgrid[0:150, 0:200]
    gradient = np.stack([xs * 255 // 199, np.full_like(xs, 40), ys * 255 // 149], -1).astype(np.uint8)
    jpeg = tmp_path / "gradient.jpg"
    Image.fromarray(gradient).save(jpeg, quality=90)
    disc = np.full((120, 90, 3), 255, np.uint8)
    disc[(ys[:120, :90] - 60) ** 2 + (xs[:120, :90] - 45) ** 2 < 35**2] = (20, 160, 40)
    png = tmp_path / "disc.png"
    Image.fromarray(disc).save(png)
    return [str(jpeg), str(png)]


def test_light_backbone_gives_patch_tokens_of_the_same_contract() -> None:
    torch.manual_seed(0)
    encoder = ImageEncoder("light", 64, 128)
    assert isinstance(encoder.backbone, LightCNN)
    assert encoder.grid == (4, 4) and encoder.num_patches == 16  # stride 32, as mobilenetv3_small_050
    pixels = torch.randn(3, 3, 128, 128)
    assert encoder(pixels).shape == (3, 16, 64)
    assert encoder.patch_pixels(pixels).shape == (3, 16, 3 * PIXEL_PATCH**2)
    assert ImageEncoder("light", 32, 224).grid == (7, 7)
    assert sum(p.numel() for p in encoder.backbone.parameters()) < 50_000  # latency-sized


def test_masked_patches_are_hidden_from_the_light_backbone() -> None:
    torch.manual_seed(0)
    encoder = ImageEncoder("light", 64, 128).eval()
    pixels = torch.randn(2, 3, 128, 128)
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[0, [0, 5, 10]] = True
    mask[1, 15] = True
    with torch.no_grad():
        tokens = encoder(pixels, mask)
        assert torch.equal(tokens[mask], encoder.mask_token.expand(4, -1))
        hidden = encoder.pixel_mask(mask).bool().expand_as(pixels)
        changed = torch.where(hidden, torch.randn_like(pixels) * 5, pixels)
        assert torch.equal(encoder(changed, mask), tokens)  # what a masked patch held is not read
        assert not torch.equal(encoder(pixels + 1.0, mask), tokens)


def test_light_encoder_reads_real_jpeg_and_png_through_the_image_pipeline(tmp_path: Path) -> None:
    store = ImageStore([*photos(tmp_path), None], 128)
    pixels, present = store.batch([0, 1, 2], batch_generator(0, 0), augment=False)
    assert present.tolist() == [True, True, False] and not store.failures
    assert pixels.shape == (3, 3, 128, 128)
    torch.manual_seed(0)
    encoder = ImageEncoder("light", 64, 128).eval()
    with torch.no_grad():
        tokens = encoder(pixels[present])
    assert tokens.shape == (2, 16, 64) and torch.isfinite(tokens).all()
    assert not torch.allclose(tokens[0], tokens[1])  # two different photos, two different token sets


def test_light_encoder_learns_masked_patches_of_real_photos(tmp_path: Path) -> None:
    """MOM alone on two real photos: masked patches' pixels are predicted better from the rest.

    Every masked token is the same [MASK] vector, so as in K3M one attention layer (which
    knows the positions) lets it read the visible patches; the loss must fall through the CNN.
    """
    store = ImageStore(photos(tmp_path), 128)
    pixels, _ = store.batch([0, 1], batch_generator(0, 0), augment=False)
    torch.manual_seed(0)
    encoder = ImageEncoder("light", 32, 128)
    context = torch.nn.TransformerEncoderLayer(32, 2, 64, dropout=0.0, batch_first=True)
    head = torch.nn.Linear(32, 3 * PIXEL_PATCH**2)
    parts = torch.nn.ModuleList([encoder, context, head])
    optimizer = torch.optim.AdamW(parts.parameters(), lr=3e-3)
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[:, ::3] = True
    target = encoder.patch_pixels(pixels)[mask]
    losses = []
    for _ in range(60):
        loss = mom_pixel_loss(head(context(encoder(pixels, mask) + encoder.position)[mask]), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert encoder.backbone.stem[0].weight.grad.abs().sum() > 0
    assert losses[-1] < 0.5 * losses[0], losses


def test_k3m_on_the_light_backbone_trains() -> None:
    config = light_config()
    model, data, _ = tiny_setup(config)
    assert isinstance(model.image.backbone, LightCNN)
    batch = data.build(data.with_image[:8], batch_generator(0, 1), train=True)
    assert batch.patch_mask.any()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    history = []
    for step in range(12):
        losses = compute_losses(model, model(batch), batch, config)
        optimizer.zero_grad()
        losses["loss"].backward()
        if step == 0:
            assert model.image.backbone.stem[0].weight.grad.abs().sum() > 0  # gradients reach the CNN
        optimizer.step()
        history.append({k: v.item() for k, v in losses.items()})
    assert history[-1]["loss"] < 0.8 * history[0]["loss"], history
    assert history[-1]["mom"] < history[0]["mom"], [h["mom"] for h in history]


def test_k3m_on_the_light_backbone_saves_and_loads_exactly(tmp_path: Path) -> None:
    config = light_config()
    model, data, _ = tiny_setup(config)
    batch = data.build(data.with_image[:8], batch_generator(0, 2), train=True)
    model.train()(batch)  # moves the BatchNorm running statistics off their initial values
    running = model.image.backbone.stem[1].running_mean
    assert running.abs().sum() > 0
    model.save_pretrained(tmp_path / "light")
    loaded = K3M.from_pretrained(tmp_path / "light")
    assert loaded.config.image.backbone == "light" and isinstance(loaded.image.backbone, LightCNN)
    own, other = model.state_dict(), loaded.state_dict()
    assert own.keys() == other.keys() and all(torch.equal(own[k], other[k]) for k in own)
    model.eval()
    loaded.eval()
    with torch.no_grad():
        a, b = model(batch), loaded(batch)
    assert torch.equal(a.product, b.product) and torch.equal(a.mom_prediction, b.mom_prediction)


def test_light_example_config_differs_from_tiny_only_in_the_backbone() -> None:
    light, tiny = load_config(LIGHT).to_dict(), load_config(EXAMPLES / "tiny.yaml").to_dict()
    assert light["image"].pop("backbone") == "light"
    assert tiny["image"].pop("backbone") == "mobilenetv3_small_050"  # the default stays the default
    assert light == tiny


def test_default_backbone_is_still_timm_and_names_are_still_checked() -> None:
    torch.manual_seed(0)
    encoder = ImageEncoder(tiny_config().image.backbone, 64, 128)
    assert not isinstance(encoder.backbone, LightCNN) and hasattr(encoder.backbone, "conv_stem")
    assert check_image_backbone("light") == "light"
    with pytest.raises(ConfigError, match="unknown image backbone 'lite'"):
        check_image_backbone("lite")
