"""What a modality is: how a batch gets its input, and how the model encodes it (one pair).

Every stream K3M reads except knowledge is a :class:`Modality` registered once in
:data:`kgmm.registry.MODALITIES`: ``text`` and ``image`` (K3M's own, always read) and the
extras a config lists under ``model.extra_modalities`` (``table``, ``video``, ``audio``, or a
modality of your own). Its ``input`` class builds the batch fields while the batch is built
(:mod:`kgmm.data.batches`, at the modality's stage); its ``encoder`` factory makes the module
that turns those fields into stream tokens ``[B, T, d]`` and a padding mask ``[B, T]``. From
there K3M treats every stream alike: its own block in every interaction layer, its pooled
vector in the modality importance weights, and a learned placeholder token with weight
exactly 0 on a row that lacks it.

To add a modality: one file with an input class (see :class:`ModalInputBuilder`) and an
encoder (a :class:`ModalityEncoder` subclass), a ``Modality(...)`` of the two, and one
registry line (or ``MODALITIES.register`` from your own code). ``docs/EXTENDING.md`` has it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import torch
from torch import Tensor, nn


@dataclass
class ModalInput:
    """One extra modality's input, batch-first.

    ``data`` is whatever its encoder reads (token ids [B, T], frames [B, F, 3, S, S],
    log-mel spectrograms [B, mels, T]); ``mask`` [B, T] marks its real positions
    (tokens, frames, spectrogram columns); ``present`` [B] says which rows have it.
    """

    data: Tensor
    mask: Tensor
    present: Tensor

    def to(self, device: torch.device | str, non_blocking: bool = False) -> ModalInput:
        return ModalInput(*(t.to(device, non_blocking=non_blocking) for t in (self.data, self.mask, self.present)))

    def pin_memory(self) -> ModalInput:
        return ModalInput(self.data.pin_memory(), self.mask.pin_memory(), self.present.pin_memory())

    def clone(self) -> ModalInput:
        return ModalInput(self.data.clone(), self.mask.clone(), self.present.clone())


class ExtraInputs(dict):
    """name -> :class:`ModalInput`, with the tensor methods (``to``, ``pin_memory``, ``clone``)
    that code treating every batch field as a tensor calls."""

    def to(self, device: torch.device | str, non_blocking: bool = False) -> ExtraInputs:
        return ExtraInputs({name: item.to(device, non_blocking=non_blocking) for name, item in self.items()})

    def pin_memory(self) -> ExtraInputs:
        return ExtraInputs({name: item.pin_memory() for name, item in self.items()})

    def clone(self) -> ExtraInputs:
        return ExtraInputs({name: item.clone() for name, item in self.items()})


class ModalInputBuilder(Protocol):
    """Builds one modality's batch fields.

    Constructed once per run as ``input(snapshot, tokenizer, config, media)`` (``media``: the
    media table, :func:`kgmm.modalities.media.read_media_table`, or None); ``build`` then sets
    the fields on the batch being built (``parts``: named fields so far; ``data``: the batch
    builder, with its tables; ``generator``: the batch's randomness).
    """

    def build(self, parts: Any, data: Any, generator: torch.Generator) -> None: ...


@dataclass(frozen=True)
class Modality:
    """A stream of the model: its input builder and its encoder factory, under one name.

    Attributes:
        name: the registry name, the stream's name and its batch key.
        input: the :class:`ModalInputBuilder` class.
        encoder: ``encoder(hidden, config, shared) -> nn.Module``; ``shared`` holds modules
            the model built before (``"text"``, ``"image"``: backbones an extra may read
            through; ``"transformer"``: a text transformer restored from a checkpoint).
        stage: the batch-building stage its input belongs to (``text``, ``image``, ``extras``).
    """

    name: str
    input: type
    encoder: Callable[..., nn.Module]
    stage: str = "extras"


class ModalityEncoder(nn.Module):
    """Base of the extra modalities' encoders: runs :meth:`encode` on the rows that have the
    modality (``batch.extra[name]``), a placeholder elsewhere.

    Args:
        hidden: the model's width ``d``.
        config: the full config.
        shared: modules built before it (see :class:`Modality`); used, not owned.
    """

    name: str = ""

    def __init__(self, hidden: int, config, shared: dict[str, nn.Module]) -> None:
        super().__init__()
        self.hidden = hidden
        self._shared = dict(shared)  # a plain dict is not registered: no duplicate weights
        self.missing = nn.Parameter(torch.randn(hidden) * 0.02)  # placeholder token of an absent input

    def encode(self, data: Tensor, mask: Tensor) -> Tensor:
        """Tokens [p, T, d] of ``p`` rows that have the modality (``mask`` [p, T])."""
        raise NotImplementedError

    def token_mask(self, inputs: ModalInput, rows: Tensor) -> Tensor:
        """Real-token mask [p, T] of the encoded rows (an encoder may change T)."""
        return inputs.mask[rows]

    def present(self, batch) -> Tensor:
        """[B] rows that have the modality."""
        return batch.extra[self.name].present

    def stream(self, batch, missing: Tensor) -> tuple[Tensor, Tensor]:
        """(tokens [B, T, d], pad [B, T]) of this modality in ``batch``."""
        return self(batch.extra[self.name])

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


def padded_stream(states: Tensor, rows: Tensor, size: int, length: int, missing: Tensor, pad_of_rows: Tensor | None) -> tuple[Tensor, Tensor]:
    """A [B, T, d] stream where ``rows`` hold ``states`` [p, T, d] and every other row the
    ``missing`` placeholder with one valid token; ``pad_of_rows`` [p, T] (None: no padding)."""
    d = missing.shape[0]
    pad = torch.ones(size, length, dtype=torch.bool, device=states.device)
    pad[:, 0] = False
    tokens = missing.to(states.dtype).view(1, 1, d).expand(size, length, d).clone()
    tokens[rows] = states
    pad[rows] = False if pad_of_rows is None else pad_of_rows
    return tokens, pad
