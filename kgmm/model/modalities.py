"""The modality interface: how a further modality plugs into K3M as one more stream.

A :class:`ModalityEncoder` turns its :class:`~kgmm.data.batch.ModalInput` into stream
tokens ``[B, T, d]`` and a padding mask ``[B, T]`` (True: ignore). From there K3M treats
it like text or image: it gets its own block in every interaction layer, its pooled vector
(masked mean of its tokens) enters the modality importance weights, and a row without the
modality is a learned placeholder token with weight exactly 0. To add a modality: subclass
:class:`ModalityEncoder`, implement :meth:`encode`, register it in
:data:`kgmm.registry.MODALITIES`, and add its batch input in :mod:`kgmm.data.modal_inputs`.

Encoders here share the big backbones rather than bringing their own (SCALE shares its
encoders across modalities too): the table reads through the text transformer, video
frames through the image CNN. Shared modules are held outside the module tree
(``self._shared``), so their weights are saved once, under the stream that owns them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import Config
from ..data.batch import ModalInput
from ..data.media import MEL_BINS
from ..data.modal_inputs import VIDEO_FRAMES


class ModalityEncoder(nn.Module):
    """Base: runs :meth:`encode` on the rows that have the modality, a placeholder elsewhere.

    Args:
        hidden: the model's width ``d``.
        config: the full config.
        text: the model's :class:`~kgmm.model.text_encoder.TextEncoder` (shared, not owned).
        image: the model's :class:`~kgmm.model.image_encoder.ImageEncoder` (shared, not owned).
    """

    def __init__(self, hidden: int, config: Config, text: nn.Module, image: nn.Module) -> None:
        super().__init__()
        self.hidden = hidden
        self._shared = (text, image)  # a tuple is not registered: no duplicate weights
        self.missing = nn.Parameter(torch.randn(hidden) * 0.02)  # placeholder token of an absent input

    def encode(self, data: Tensor, mask: Tensor) -> Tensor:
        """Tokens [p, T, d] of ``p`` rows that have the modality (``mask`` [p, T])."""
        raise NotImplementedError

    def token_mask(self, inputs: ModalInput, rows: Tensor) -> Tensor:
        """Real-token mask [p, T] of the encoded rows (an encoder may change T)."""
        return inputs.mask[rows]

    def forward(self, inputs: ModalInput) -> tuple[Tensor, Tensor]:
        """(tokens [B, T, d], pad [B, T]); rows without the modality: placeholder + pad."""
        size, d = inputs.present.shape[0], self.hidden
        rows = inputs.present.nonzero().squeeze(1)
        if rows.numel() == 0:
            pad = torch.ones(size, 1, dtype=torch.bool, device=inputs.present.device)
            pad[:, 0] = False
            return self.missing.view(1, 1, d).expand(size, 1, d), pad
        states = self.encode(inputs.data[rows], inputs.mask[rows])  # [p, T, d]
        length = states.shape[1]
        tokens = self.missing.to(states.dtype).view(1, 1, d).expand(size, length, d).clone()
        tokens[rows] = states
        pad = torch.ones(size, length, dtype=torch.bool, device=states.device)
        pad[:, 0] = False
        pad[rows] = ~self.token_mask(inputs, rows)
        return tokens, pad


class TableEncoder(ModalityEncoder):
    """``[CLS] attribute: value [SEP] ...`` through the shared text transformer.

    Shared rather than a second BERT: the vocabulary and the meaning of words ("red",
    "cotton") are the same as in titles; the table gets its own projection into the joint
    space and a learned table-type vector, so the streams stay distinguishable.
    """

    def __init__(self, hidden: int, config: Config, text: nn.Module, image: nn.Module) -> None:
        super().__init__(hidden, config, text, image)
        self.proj = nn.Linear(text.transformer.config.hidden_size, hidden)
        self.kind = nn.Parameter(torch.zeros(hidden))

    def encode(self, data: Tensor, mask: Tensor) -> Tensor:
        transformer = self._shared[0].transformer
        kwargs = {"token_type_ids": torch.zeros_like(data)} if self._shared[0].uses_token_types else {}
        states = transformer(input_ids=data, attention_mask=mask.long(), **kwargs).last_hidden_state  # [p, T, w]
        return self.proj(states) + self.kind  # [p, T, d]


class VideoEncoder(ModalityEncoder):
    """Frames through the shared image CNN, one token per frame (mean of its patches) plus a
    learned time embedding; the stream's self-attention does the temporal mixing."""

    def __init__(self, hidden: int, config: Config, text: nn.Module, image: nn.Module) -> None:
        super().__init__(hidden, config, text, image)
        self.time = nn.Parameter(torch.randn(VIDEO_FRAMES, hidden) * 0.02)  # [F, d]

    def encode(self, data: Tensor, mask: Tensor) -> Tensor:
        rows, frames = data.shape[:2]  # data [p, F, 3, S, S]
        image = self._shared[1]
        patches = image(data.flatten(0, 1))  # [p*F, N, d]
        tokens = patches.mean(1).view(rows, frames, -1)  # [p, F, d]
        return tokens + self.time[:frames].to(tokens.dtype)


class AudioEncoder(ModalityEncoder):
    """A small conv net over the log-mel spectrogram [mels, T] -> one token per 4 frames (40 ms)."""

    def __init__(self, hidden: int, config: Config, text: nn.Module, image: nn.Module) -> None:
        super().__init__(hidden, config, text, image)
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
