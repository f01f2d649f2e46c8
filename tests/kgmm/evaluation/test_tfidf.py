"""The tfidf and frozen-text baselines on the real example catalog: better than random on the
held-out triples, trained on training triples only, moved by the same text damage K3M sees,
calibrated, and in the report of ``run_protocol``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.kgmm.k3m_testing import example_snapshot, one_thread, tiny_config

from kgmm.data.batches import PretrainData
from kgmm.data.split import split_edges
from kgmm.evaluation.corruption import CONDITIONS, corrupt, text_sources
from kgmm.evaluation.protocol import ProtocolOptions, prepare, run_protocol, targets
from kgmm.evaluation.report import markdown
from kgmm.evaluation.tfidf import (TextClassifier, _candidate_scores, evaluate_text_baseline, fit_text_baseline, has_text,
                                   product_texts, tfidf_features, training_rows)
from kgmm.text import train_wordpiece


@pytest.fixture(scope="module")
def prepared():
    return prepare(example_snapshot(), ProtocolOptions(config=tiny_config(), test_fraction=0.15, val_fraction=0.15))


@pytest.fixture(scope="module")
def entry(prepared):
    return evaluate_text_baseline("tfidf", prepared.snapshot, prepared.train_snapshot, prepared.val, prepared.test,
                                  conditions=CONDITIONS, ratios=(0.0, 0.5, 1.0), seed=0, split_seed=prepared.split.seed)


def test_tfidf_beats_random_on_held_out_triples(prepared, entry) -> None:
    random = prepared.test.random_metrics()
    clean = entry["clean"]
    assert clean["count"] == len(prepared.test) > 20
    assert clean["hits@1"] > random["hits@1"] + 0.15 and clean["mrr"] > random["mrr"] + 0.1
    assert entry["train"]["C"] in (1.0, 10.0, 100.0) and set(entry["train"]["val_hits@1"]) == {"1.0", "10.0", "100.0"}


def test_tfidf_never_trains_on_held_out_triples(prepared) -> None:
    features = tfidf_features(product_texts(prepared.snapshot))
    classifier = TextClassifier.fit(features, training_rows(features, prepared.train_snapshot), C=10.0)
    fitted = {(p, a, v) for a, pairs in classifier.training_pairs.items() for p, v in pairs}
    held = {tuple(t) for t in prepared.split.held_out.tolist()}
    train = prepared.train_snapshot
    assert not fitted & held
    assert fitted == set(zip(train.edge_product.tolist(), train.edge_attribute.tolist(), train.edge_value.tolist()))


def test_unseen_values_score_lowest_and_tie() -> None:
    scores = _candidate_scores(np.array([3, 7]), np.log(np.array([0.25, 0.75])), np.array([1, 3, 5, 7]))
    assert scores[3] > scores[1] > scores[0] == scores[2]


def test_tfidf_reads_the_same_damaged_text_as_k3m(prepared, entry) -> None:
    clean = entry["clean"]
    conditions = entry["conditions"]
    for image_only in ("missing_image", "noise_image"):
        assert all(cell == clean for cell in conditions[image_only].values())
    assert conditions["missing_text"]["0.0"] == clean
    for condition in ("missing_text", "missing_both", "noise_text"):
        assert conditions[condition]["1.0"]["hits@1"] < clean["hits@1"] - 0.1
    # with every text gone, each attribute's head falls back to its prior: one ranking per attribute
    assert conditions["missing_text"]["1.0"] == conditions["missing_both"]["1.0"]
    # the plan is the one corrupt() applies to K3M's token tables
    snapshot = prepared.snapshot
    tokenizer = train_wordpiece([t for pair in zip(snapshot.titles, snapshot.descriptions) for t in pair], 3000)
    with one_thread():
        data = PretrainData(snapshot, split_edges(snapshot, 0.0, 0, 0), tokenizer, tiny_config(), 16)
    for condition in ("missing_text", "noise_text"):
        source = text_sources(has_text(snapshot), condition, 0.5, 0)
        damaged = corrupt(data, condition, 0.5, 0)
        assert 0 < (source != np.arange(source.size)).sum() < source.size
        assert damaged.titles == [data.titles[s] if s >= 0 else [] for s in source.tolist()]


def test_tfidf_is_calibrated_on_validation_triples(prepared, entry) -> None:
    calibration = entry["calibration"]
    assert calibration["val"]["facts"] == len(prepared.val) and calibration["test"]["facts"] == len(prepared.test)
    assert calibration["temperature"] > 0 and calibration["val"]["nll_after"] <= calibration["val"]["nll_before"] + 1e-9


def test_frozen_text_reads_a_local_encoder(prepared, tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = sorted({w for text in product_texts(prepared.snapshot) for w in text.lower().split() if w.isalpha()})[:500]
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt")).save_pretrained(tmp_path)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=5 + len(words), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(tmp_path)
    with one_thread():
        entry = evaluate_text_baseline("frozen-text", prepared.snapshot, prepared.train_snapshot, prepared.val, prepared.test,
                                       conditions=("missing_text",), ratios=(0.0, 1.0), seed=0, split_seed=0,
                                       pretrained=str(tmp_path), max_length=32)
    assert entry["kind"] == "text" and entry["train"]["features"] == 32
    assert entry["clean"]["hits@1"] > prepared.test.random_metrics()["hits@1"]
    assert entry["conditions"]["missing_text"]["1.0"] != entry["clean"]
    with pytest.raises(ValueError, match="text.pretrained"):
        evaluate_text_baseline("frozen-text", prepared.snapshot, prepared.train_snapshot, prepared.val, prepared.test,
                               conditions=(), ratios=(0.0,), seed=0, split_seed=0)


def test_report_holds_tfidf_and_targets_count_it(tmp_path: Path) -> None:
    options = ProtocolOptions(config=tiny_config(), variants=(), kge_models=(), ratios=(0.0, 1.0), conditions=("missing_text",))
    report = run_protocol(example_snapshot(), options, tmp_path)
    assert set(report["models"]) == {"majority", "tfidf"}
    tfidf = report["models"]["tfidf"]
    assert tfidf["kind"] == "text" and 0 < tfidf["clean"]["hits@1"] <= 1 and tfidf["calibration"]["temperature"] > 0
    assert tfidf["conditions"]["missing_text"]["1.0"]["hits@1"] < tfidf["clean"]["hits@1"]
    text = markdown(json.loads(json.dumps(report)))
    assert "| tfidf |" in text and "### missing text" in text
    # the target compares the default model with the best baseline, tfidf included
    models = {**report["models"], "k3m": {"kind": "k3m", "clean": {"hits@1": 1.05 * tfidf["clean"]["hits@1"]}}}
    models["majority"]["clean"] = {**models["majority"]["clean"], "hits@1": 0.5 * tfidf["clean"]["hits@1"]}
    goal = targets(models)["hits1_vs_best_baseline"]
    assert goal["best_baseline"] == "tfidf" and not goal["met"] and "1.1" in goal["goal"]
    models["k3m"]["clean"]["hits@1"] = 1.2 * tfidf["clean"]["hits@1"]
    assert targets(models)["hits1_vs_best_baseline"]["met"]
