"""The modalities a product is read through, each an (input builder, encoder) pair in one file.

``text`` and ``image`` are K3M's own and always read; ``table``, ``video`` and ``audio`` (SCALE)
are read when a config lists them under ``model.extra_modalities``. Knowledge (pairs and
subgraph) is the model's own stream, built by the batch builder and the knowledge encoder.
See :mod:`.base` for what a modality is and how to add one.
"""

from __future__ import annotations

from graph_store import Snapshot

from ..config import Config
from ..registry import MODALITIES
from .base import ExtraInputs, ModalInput, ModalInputBuilder, Modality, ModalityEncoder

CORE = ("text", "image")
"""Modalities every model reads, in the order their encoders are built and run."""

__all__ = ["CORE", "ExtraInputs", "MODALITIES", "ModalInput", "ModalInputBuilder", "Modality", "ModalityEncoder", "input_builders"]


def input_builders(snapshot: Snapshot, tokenizer, config: Config) -> dict[str, ModalInputBuilder]:
    """One input builder per modality the config reads (core first); the media table is read once here."""
    names = (*CORE, *config.model.extra_modalities)
    media = None
    if config.modality.media and config.model.extra_modalities:
        from .media import read_media_table

        media = read_media_table(config.modality.media, snapshot.product_ids)
    return {name: MODALITIES.get(name).input(snapshot, tokenizer, config, media) for name in names}
