"""The audio modality: a log-mel spectrogram of the first seconds of each product's clip
(from the media table), through a small conv net, one token per 40 ms."""

from __future__ import annotations

import wave

import torch
from torch import Tensor, nn

from graph_store import Snapshot

from ..config import Config
from .base import Modality, ModalInput, ModalityEncoder
from .media import MEL_BINS, CachedMediaInput, load_wav, log_mel

AUDIO_SECONDS = 4.0  # leading seconds of a clip


class AudioInput(CachedMediaInput):
    """Log-mel spectrograms [B, mels, T] of the first :data:`AUDIO_SECONDS` of each clip."""

    name = "audio"
    unreadable = (OSError, ValueError, EOFError, wave.Error)  # not a readable WAV: missing

    def __init__(self, snapshot: Snapshot, tokenizer, config: Config, media: dict | None = None) -> None:
        super().__init__(snapshot, media)

    def decode(self, path: str) -> Tensor:
        return log_mel(load_wav(path, AUDIO_SECONDS))

    def make(self, clips: list[Tensor | None]) -> ModalInput:
        mels = next((c.shape[0] for c in clips if c is not None), MEL_BINS)
        length = max([1] + [c.shape[1] for c in clips if c is not None])
        spectra = torch.zeros(len(clips), mels, length)
        mask = torch.zeros(len(clips), length, dtype=torch.bool)
        for i, clip in enumerate(clips):
            if clip is not None:
                spectra[i, :, : clip.shape[1]] = clip
                mask[i, : clip.shape[1]] = True
        return ModalInput(spectra, mask, mask.any(1))


class AudioEncoder(ModalityEncoder):
    """A small conv net over the log-mel spectrogram [mels, T] -> one token per 4 frames (40 ms)."""

    name = "audio"

    def __init__(self, hidden: int, config: Config, shared: dict[str, nn.Module]) -> None:
        super().__init__(hidden, config, shared)
        channels = 32
        self.conv = nn.Sequential(
            nn.Conv2d(1, channels, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.GELU(),
        )
        self.proj = nn.Linear(channels * ((MEL_BINS + 3) // 4), hidden)
        self.norm = nn.LayerNorm(hidden)

    def encode(self, data: Tensor, mask: Tensor) -> Tensor:
        spectra = data * mask.unsqueeze(1).to(data.dtype)  # [p, mels, T]; padding columns read as 0
        maps = self.conv(spectra.unsqueeze(1))  # [p, c, mels/4, T/4]
        tokens = maps.flatten(1, 2).transpose(1, 2)  # [p, T/4, c * mels/4]
        return self.norm(self.proj(tokens))  # [p, T/4, d]

    def token_mask(self, inputs: ModalInput, rows: Tensor) -> Tensor:
        mask = inputs.mask[rows].float().unsqueeze(1)  # [p, 1, T]
        for _ in range(2):  # the two stride-2 convolutions (kernel 3, padding 1)
            mask = mask[..., ::2]  # output column i is centred on input column 2i
        return mask.squeeze(1) > 0


AUDIO = Modality("audio", AudioInput, AudioEncoder)
