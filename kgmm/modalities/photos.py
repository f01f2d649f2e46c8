"""Product photos as tensors: bounded decoding, a bounded cache, seeded augmentation.

Every photo goes through :func:`kg_builder.images.load_image` (JPEGs decoded at reduced
DCT scale, other formats refused above a pixel budget), is letter-boxed onto a square of
its own border colour (product shots are mostly on white, and stretching a tall bottle
would teach the CNN a wrong shape), and is kept as ``uint8`` at a little more than the
training size. Augmentation (random resized crop, flip, brightness/contrast) draws from
the batch's ``torch.Generator``, so a batch is reproducible in any worker process.
A photo that fails to decode now (deleted or replaced since the build) counts as missing.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from kg_builder.images import load_image

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
CACHE_BYTES = 512 * 2**20


class ImageStore:
    """Decoded, letter-boxed photos of the snapshot's products.

    Args:
        paths: image path per product index (``None``: no image).
        size: training side ``S``; photos are stored at ``ceil(1.15 * S)``.
        cache_bytes: at most this many bytes of decoded photos are kept per process.
    """

    def __init__(self, paths: list[str | None], size: int, cache_bytes: int = CACHE_BYTES) -> None:
        self.paths = paths
        self.size = size
        self.stored = math.ceil(size * 1.15)
        self.cache: dict[int, Tensor | None] = {}
        self.cache_bytes = cache_bytes
        self.used_bytes = 0
        self.failures: dict[int, str] = {}

    def has_image(self, index: int) -> bool:
        return self.paths[index] is not None and index not in self.failures

    def load(self, index: int) -> Tensor | None:
        """[3, H, H] uint8 letter-boxed photo, or None when missing or undecodable."""
        if index in self.cache:
            return self.cache[index]
        path = self.paths[index]
        image = None
        if path is not None:
            try:
                image = self._decode(path)
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
                self.failures[index] = f"{type(err).__name__}: {err}"
        size = image.numel() if image is not None else 0
        if self.used_bytes + size <= self.cache_bytes:
            self.cache[index] = image
            self.used_bytes += size
        return image

    def _decode(self, path: str) -> Tensor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rgb = load_image(path, max_side=max(4 * self.stored, 512))
        width, height = rgb.size
        side = max(width, height)
        border = rgb.getpixel((0, 0))
        square = Image.new("RGB", (side, side), border)
        square.paste(rgb, ((side - width) // 2, (side - height) // 2))
        square = square.resize((self.stored, self.stored), Image.BILINEAR, reducing_gap=2.0)
        return torch.from_numpy(np.asarray(square, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()

    def batch(self, indices: list[int | None], generator: torch.Generator, augment: bool) -> tuple[Tensor, Tensor]:
        """Pixels for ``indices`` (``None``: this row shows no image).

        Returns:
            (pixels [B, 3, S, S] float32 normalised, zeros where absent; present [B] bool)
        """
        pixels = torch.zeros(len(indices), 3, self.size, self.size)
        present = torch.zeros(len(indices), dtype=torch.bool)
        for row, index in enumerate(indices):
            image = None if index is None else self.load(index)
            if image is None:
                continue
            present[row] = True
            pixels[row] = self._augment(image, generator) if augment else self._resize(image.float() / 255)
        return (pixels - MEAN * present.view(-1, 1, 1, 1)) / STD, present

    def _resize(self, image: Tensor) -> Tensor:
        return F.interpolate(image.unsqueeze(0), size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)[0]

    def _augment(self, image: Tensor, generator: torch.Generator) -> Tensor:
        """Random resized crop (65-100% area, aspect 3/4-4/3), flip, brightness and contrast."""
        side = image.shape[-1]
        u = torch.rand(7, generator=generator).tolist()
        area = (0.65 + 0.35 * u[0]) * side * side
        ratio = math.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * u[1])
        w = min(side, max(8, round(math.sqrt(area * ratio))))
        h = min(side, max(8, round(math.sqrt(area / ratio))))
        top, left = int(u[2] * (side - h + 1)), int(u[3] * (side - w + 1))
        crop = self._resize(image[:, top : top + h, left : left + w].float() / 255)
        if u[4] < 0.5:
            crop = crop.flip(-1)
        brightness, contrast = 0.85 + 0.3 * u[5], 0.85 + 0.3 * u[6]
        mean = crop.mean()
        return ((crop - mean) * contrast + mean * brightness).clamp(0, 1)
