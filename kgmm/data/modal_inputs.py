"""Batch inputs of the extra modalities (``model.extra_modalities``), one builder per name.

Each builder turns the batch's products into a :class:`~kgmm.data.batch.ModalInput` that
the model's encoder of the same name (:mod:`kgmm.model.modalities`) reads:

* ``table``: the product's (attribute, value) list as its own token sequence,
  ``[CLS] brand: nike [SEP] color: red [SEP] ...``. It is serialised from the batch's pair
  tokens, i.e. *after* link-prediction facts were held out and knowledge was dropped, so a
  held-out fact can never reach the model through the table.
* ``video``: a few frames per product from the media table (:mod:`kgmm.data.media`).
* ``audio``: a log-mel spectrogram per product from the media table.

A product without the modality (no pairs, no media, media that fails to decode) is a row
with ``present`` False; its encoder then shows the model a placeholder instead.
"""

from __future__ import annotations

import wave
from typing import Protocol

import torch
from torch import Tensor

from graph_store import Snapshot

from ..config import Config
from ..text import SpecialIds
from .batch import ModalInput
from .media import load_frames, load_wav, log_mel, read_media_table

VIDEO_FRAMES = 4  # frames per video, spread over its length
AUDIO_SECONDS = 4.0  # leading seconds of a clip


class ModalInputBuilder(Protocol):
    """Builds one extra modality's input for a batch."""

    def build(self, rows: list[int], kv_value: Tensor, kv_mask: Tensor) -> ModalInput: ...


class TableInput:
    """``[CLS] attribute: value [SEP] ...`` token ids from the batch's visible pairs."""

    def __init__(self, snapshot: Snapshot, tokenizer, config: Config, media: dict | None = None) -> None:
        self.special = SpecialIds.of(tokenizer)
        self.max_length = config.text.max_length
        texts = [f"{attribute}: {value}" for attribute, value in snapshot.values]
        self.pieces: list[list[int]] = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []  # per value id

    def build(self, rows: list[int], kv_value: Tensor, kv_mask: Tensor) -> ModalInput:
        s = self.special
        sequences = []
        for values, real in zip(kv_value.tolist(), kv_mask.tolist()):
            tokens = [s.cls]
            for value, ok in zip(values, real):
                if ok and len(tokens) < self.max_length:
                    tokens += [*self.pieces[value], s.sep]
            sequences.append(tokens[: self.max_length])
        length = max([2] + [len(q) for q in sequences])
        ids = torch.full((len(rows), length), s.pad, dtype=torch.long)
        mask = torch.zeros(len(rows), length, dtype=torch.bool)
        for i, q in enumerate(sequences):
            ids[i, : len(q)] = torch.tensor(q, dtype=torch.long)
            mask[i, : len(q)] = True
        present = mask.sum(1) > 1  # more than the [CLS]
        return ModalInput(ids, mask, present)


class VideoInput:
    """Up to :data:`VIDEO_FRAMES` frames [B, F, 3, S, S] per product, decoded once and cached."""

    def __init__(self, snapshot: Snapshot, tokenizer, config: Config, media: dict | None = None) -> None:
        self.paths = (media or {}).get("video") or [None] * snapshot.num_products
        self.size = config.image.size
        self.cache: dict[int, Tensor | None] = {}

    def load(self, product: int) -> Tensor | None:
        if product not in self.cache:
            path = self.paths[product]
            try:
                self.cache[product] = load_frames(path, VIDEO_FRAMES, self.size) if path else None
            except (OSError, ValueError, SyntaxError):
                self.cache[product] = None
        return self.cache[product]

    def build(self, rows: list[int], kv_value: Tensor, kv_mask: Tensor) -> ModalInput:
        clips = [self.load(p) for p in rows]
        frames = torch.zeros(len(rows), VIDEO_FRAMES, 3, self.size, self.size)
        mask = torch.zeros(len(rows), VIDEO_FRAMES, dtype=torch.bool)
        for i, clip in enumerate(clips):
            if clip is not None:
                frames[i, : clip.shape[0]] = clip
                mask[i, : clip.shape[0]] = True
        return ModalInput(frames, mask, mask.any(1))


class AudioInput:
    """Log-mel spectrograms [B, mels, T] of the first :data:`AUDIO_SECONDS` of each clip."""

    def __init__(self, snapshot: Snapshot, tokenizer, config: Config, media: dict | None = None) -> None:
        self.paths = (media or {}).get("audio") or [None] * snapshot.num_products
        self.cache: dict[int, Tensor | None] = {}

    def load(self, product: int) -> Tensor | None:
        if product not in self.cache:
            path = self.paths[product]
            try:
                self.cache[product] = log_mel(load_wav(path, AUDIO_SECONDS)) if path else None
            except (OSError, ValueError, EOFError, wave.Error):  # not a readable WAV: missing
                self.cache[product] = None
        return self.cache[product]

    def build(self, rows: list[int], kv_value: Tensor, kv_mask: Tensor) -> ModalInput:
        clips = [self.load(p) for p in rows]
        mels = next((c.shape[0] for c in clips if c is not None), 32)
        length = max([1] + [c.shape[1] for c in clips if c is not None])
        spectra = torch.zeros(len(rows), mels, length)
        mask = torch.zeros(len(rows), length, dtype=torch.bool)
        for i, clip in enumerate(clips):
            if clip is not None:
                spectra[i, :, : clip.shape[1]] = clip
                mask[i, : clip.shape[1]] = True
        return ModalInput(spectra, mask, mask.any(1))


BUILDERS: dict[str, type] = {"table": TableInput, "video": VideoInput, "audio": AudioInput}


def input_builders(snapshot: Snapshot, tokenizer, config: Config) -> dict[str, ModalInputBuilder]:
    """One builder per configured extra modality (the media table is read once here)."""
    names = config.model.extra_modalities
    media = read_media_table(config.modality.media, snapshot.product_ids) if config.modality.media and names else None
    return {name: BUILDERS[name](snapshot, tokenizer, config, media) for name in names}
