"""The image modality: product photos and a CNN whose last feature map is read as patch tokens.

The input (:class:`ImageInput`) is built at the ``image`` stage of a batch: the photo
(another product's where the robustness noise swaps it), decoded and, while training,
augmented; hiding patches is the MOM objective's transform.

A light CNN (the default is MobileNetV3-Small 0.5) instead of an object detector, as in
MBSD: a ``g_h x g_w`` feature map gives ``N = g_h * g_w`` patch tokens with learned 2-D
positions. Masked image modelling hides a patch twice: its pixels are set to the
normalised mean (0) *before* the CNN, so no neighbouring patch sees them through its
receptive field, and its token is replaced by a learned [MASK] vector after it.

``backbone: light`` (:class:`LightCNN`) is MBSD's latency-sized encoder: a stem and four
depthwise-separable blocks in plain torch, 24k parameters; on a CPU about 4x faster per
product than the default at batch 1 and 2x at batch 32 (``benchmarks/latency.py``).
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import Config
from ..errors import ConfigError
from ..registry import LIGHT_CNN
from .base import Modality, padded_stream

PIXEL_PATCH = 4
"""Masked patches are reconstructed as ``PIXEL_PATCH x PIXEL_PATCH`` RGB averages (48 values)."""


class ImageEncoder(nn.Module):
    """Pixels -> patch tokens, with MOM masking.

    Args:
        backbone: a timm model name, or ``"light"`` for :class:`LightCNN`.
        hidden: the model's width ``d``.
        size: input side in pixels (the grid is measured once with a dummy image).
        weights: optional local state-dict file for the backbone.
    """

    def __init__(self, backbone: str, hidden: int, size: int, weights: str | None = None) -> None:
        super().__init__()
        self.backbone = LightCNN() if backbone == LIGHT_CNN else timm_backbone(backbone)
        if weights:
            load_backbone_weights(self.backbone, weights, backbone)
        was_training = self.backbone.training
        self.backbone.eval()
        try:
            with torch.no_grad():
                probe = self.backbone(torch.zeros(1, 3, size, size))[-1]  # [1, C, gh, gw]
        except Exception as err:  # noqa: BLE001
            raise ConfigError(f"image backbone {backbone!r} cannot run on {size}px images: {err}") from None
        self.backbone.train(was_training)
        if probe.dim() != 4:
            raise ConfigError(f"image backbone {backbone!r} has no 2-D feature map (got shape {tuple(probe.shape)}); use a CNN")
        channels, grid_h, grid_w = probe.shape[1:]
        self.grid = (int(grid_h), int(grid_w))
        self.size = size
        self.proj = nn.Linear(channels, hidden)
        self.position = nn.Parameter(torch.randn(self.num_patches, hidden) * 0.02)  # [N, d]
        self.mask_token = nn.Parameter(torch.randn(hidden) * 0.02)  # [d]

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    def forward(self, pixels: Tensor, patch_mask: Tensor | None = None) -> Tensor:
        """``pixels`` [n, 3, S, S] normalised, ``patch_mask`` [n, N] bool -> tokens [n, N, d]."""
        if patch_mask is not None:
            pixels = pixels * (1.0 - self.pixel_mask(patch_mask).to(pixels.dtype))  # masked pixels -> 0
        features = self.backbone(pixels)[-1]  # [n, C, gh, gw]
        tokens = self.proj(features.flatten(2).transpose(1, 2)) + self.position  # [n, N, d]
        if patch_mask is not None:
            tokens = torch.where(patch_mask.unsqueeze(-1), self.mask_token.to(tokens.dtype), tokens)
        return tokens

    def present(self, batch) -> Tensor:
        return batch.image_present

    def stream(self, batch, missing: Tensor) -> tuple[Tensor, Tensor]:
        """Patch tokens for rows with an image [B, N, d] (no padding); ``missing`` elsewhere."""
        size, patches = batch.image_present.shape[0], self.num_patches
        rows = batch.image_present.nonzero().squeeze(1)  # [p]
        if rows.numel() == 0:
            pad = torch.ones(size, patches, dtype=torch.bool, device=batch.pixels.device)
            pad[:, 0] = False
            return missing.view(1, 1, -1).expand(size, patches, missing.shape[0]), pad
        states = self(batch.pixels[rows], batch.patch_mask[rows])  # [p, N, d]
        return padded_stream(states, rows, size, patches, missing, None)

    def pixel_mask(self, patch_mask: Tensor) -> Tensor:
        """[n, N] patch mask -> [n, 1, S, S] float pixel mask (1 = hidden)."""
        grid = patch_mask.view(-1, 1, *self.grid).float()  # [n, 1, gh, gw]
        return F.interpolate(grid, size=(self.size, self.size), mode="nearest")

    def patch_pixels(self, pixels: Tensor) -> Tensor:
        """MOM pixel targets: [n, 3, S, S] -> [n, N, 3 * P * P], each patch normalised.

        Each patch is averaged down to ``P x P`` RGB cells (P = PIXEL_PATCH) and
        standardised per patch, as MAE does, so the target is the patch's pattern rather
        than its overall brightness.
        """
        gh, gw = self.grid
        pooled = F.adaptive_avg_pool2d(pixels.float(), (gh * PIXEL_PATCH, gw * PIXEL_PATCH))  # [n, 3, gh*P, gw*P]
        n = pooled.shape[0]
        patches = pooled.view(n, 3, gh, PIXEL_PATCH, gw, PIXEL_PATCH).permute(0, 2, 4, 1, 3, 5)
        patches = patches.reshape(n, gh * gw, 3 * PIXEL_PATCH * PIXEL_PATCH)  # [n, N, 48]
        mean = patches.mean(-1, keepdim=True)
        std = patches.std(-1, keepdim=True)
        return (patches - mean) / (std + 1e-3)


def timm_backbone(name: str) -> nn.Module:
    """A timm CNN cut after its last feature map (no unused head parameters)."""
    import timm

    try:
        return timm.create_model(name, pretrained=False, features_only=True, out_indices=(-1,))
    except Exception as err:  # noqa: BLE001 - timm raises many kinds for models without stages
        raise ConfigError(f"image backbone {name!r} has no feature map to read patches from ({err}); use a CNN") from None


def separable(channels_in: int, channels_out: int, stride: int) -> nn.Sequential:
    """Depthwise 3x3 then pointwise 1x1, each with BatchNorm and ReLU (MobileNetV1's block):
    about a ninth of a full 3x3 convolution's multiply-adds at these widths."""
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_in, 3, stride, 1, groups=channels_in, bias=False),
        nn.BatchNorm2d(channels_in),
        nn.ReLU(inplace=True),
        nn.Conv2d(channels_in, channels_out, 1, bias=False),
        nn.BatchNorm2d(channels_out),
        nn.ReLU(inplace=True),
    )


class LightCNN(nn.Module):
    """The ``light`` image backbone: stride-2 stem + four stride-2 separable blocks.

    Total stride 32, as the timm CNNs, so ``S`` pixels give the same ``S/32`` grid and MOM's
    patches and targets do not change with the backbone. One block per stage, no squeeze-
    excitation or hard-swish: on a CPU at batch 1 the many small kernels of a MobileNetV3
    cost more in dispatch than in arithmetic, so fewer, plainer layers are what cut latency.
    Returns a one-element list, like timm's ``features_only`` models.
    """

    WIDTHS = (16, 32, 64, 96, 128)

    def __init__(self) -> None:
        super().__init__()
        w = self.WIDTHS
        self.stem = nn.Sequential(nn.Conv2d(3, w[0], 3, 2, 1, bias=False), nn.BatchNorm2d(w[0]), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*(separable(a, b, 2) for a, b in pairwise(w)))

    def forward(self, pixels: Tensor) -> list[Tensor]:
        """[n, 3, S, S] -> [[n, 128, S/32, S/32]]."""
        return [self.blocks(self.stem(pixels))]


def load_backbone_weights(model: nn.Module, path: str | Path, name: str) -> None:
    """Load a local ``.safetensors`` / ``.pth`` state dict into a timm (or the light) backbone.

    Tensors the backbone does not have (the classifier) are ignored; a missing or
    mismatched one is an error, since silently training from a half-loaded CNN wastes a run.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"image.weights {path}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001
        raise ConfigError(f"image.weights {path}: unreadable ({type(err).__name__}: {err})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ConfigError(f"image.weights {path}: not a state dict")
    state = {k.removeprefix("module.").removeprefix("backbone."): v for k, v in state.items()}
    own = model.state_dict()
    state = {k: v for k, v in state.items() if k in own}  # the classifier and head are not used
    try:
        missing, _ = model.load_state_dict(state, strict=False)
    except RuntimeError as err:
        raise ConfigError(f"image.weights {path} do not fit backbone {name!r}: {str(err).splitlines()[0]}") from None
    if missing:
        raise ConfigError(f"image.weights {path} do not fit backbone {name!r}: {len(missing)} of {len(own)} tensors missing (first: {missing[0]})")


def make_image_encoder(hidden: int, config: Config, shared: dict[str, Any]) -> ImageEncoder:
    return ImageEncoder(config.image.backbone, hidden, config.image.size, config.image.weights)


class ImageInput:
    """Builds ``pixels``, ``image_present`` and an empty ``patch_mask`` from the builder's
    photo store; ``image_swapped`` keeps only rows whose swapped photo decoded."""

    def __init__(self, snapshot, tokenizer, config: Config, media: dict | None = None) -> None:
        self.augment = config.image.augment

    def build(self, parts, data, generator: torch.Generator) -> None:
        sources = [
            None if not present or dropped else (int(parts.partners[i, 1]) if swapped else parts.rows[i])
            for i, (present, dropped, swapped) in enumerate(zip(parts.has_image.tolist(), parts.drop_image.tolist(),
                                                                parts.image_swapped.tolist()))
        ]
        parts.pixels, parts.image_present = data.images.batch(sources, generator, parts.train and self.augment)
        parts.image_swapped = parts.image_swapped & parts.image_present
        parts.patch_mask = torch.zeros(len(parts.rows), data.num_patches, dtype=torch.bool)


IMAGE = Modality("image", ImageInput, make_image_encoder, stage="image")
