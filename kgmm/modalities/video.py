"""The video modality: a few frames per product from the media table, read through the
shared image CNN, one token per frame (mean of its patches) plus a learned time embedding."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graph_store import Snapshot

from ..config import Config
from .base import Modality, ModalInput, ModalityEncoder
from .media import CachedMediaInput, load_frames

VIDEO_FRAMES = 4  # frames per video, spread over its length


class VideoInput(CachedMediaInput):
    """Up to :data:`VIDEO_FRAMES` frames [B, F, 3, S, S] per product, decoded once and cached."""

    name = "video"
    unreadable = (OSError, ValueError, SyntaxError)

    def __init__(self, snapshot: Snapshot, tokenizer, config: Config, media: dict | None = None) -> None:
        super().__init__(snapshot, media)
        self.size = config.image.size

    def decode(self, path: str) -> Tensor:
        return load_frames(path, VIDEO_FRAMES, self.size)

    def make(self, clips: list[Tensor | None]) -> ModalInput:
        frames = torch.zeros(len(clips), VIDEO_FRAMES, 3, self.size, self.size)
        mask = torch.zeros(len(clips), VIDEO_FRAMES, dtype=torch.bool)
        for i, clip in enumerate(clips):
            if clip is not None:
                frames[i, : clip.shape[0]] = clip
                mask[i, : clip.shape[0]] = True
        return ModalInput(frames, mask, mask.any(1))


class VideoEncoder(ModalityEncoder):
    """Frames through the shared image CNN, one token per frame (mean of its patches) plus a
    learned time embedding; the stream's self-attention does the temporal mixing."""

    name = "video"

    def __init__(self, hidden: int, config: Config, shared: dict[str, nn.Module]) -> None:
        super().__init__(hidden, config, shared)
        self.time = nn.Parameter(torch.randn(VIDEO_FRAMES, hidden) * 0.02)  # [F, d]

    def encode(self, data: Tensor, mask: Tensor) -> Tensor:
        rows, frames = data.shape[:2]  # data [p, F, 3, S, S]
        image = self._shared["image"]
        patches = image(data.flatten(0, 1))  # [p*F, N, d]
        tokens = patches.mean(1).view(rows, frames, -1)  # [p, F, d]
        return tokens + self.time[:frames].to(tokens.dtype)


VIDEO = Modality("video", VideoInput, VideoEncoder)
