"""Config: YAML sections, clear errors for unknown keys and components, hashes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import pytest

from tests.kgmm.k3m_testing import EXAMPLES

import kgmm.config
from kgmm.config import (
    HASH_VERSION,
    RUN_ONLY_FIELDS,
    SECTIONS,
    Config,
    TrainConfig,
    field_types,
    hash_version_of,
    load_config,
    save_config,
)
from kgmm.errors import CheckpointError, ConfigError


@pytest.mark.parametrize("name", ["tiny.yaml", "base.yaml"])
def test_example_configs_load(name: str) -> None:
    config = load_config(EXAMPLES / name)
    assert config.model.hidden % config.model.heads == 0


def test_round_trip_and_hashes(tmp_path: Path) -> None:
    config = load_config(EXAMPLES / "tiny.yaml")
    save_config(config, tmp_path / "c.yaml")
    again = load_config(tmp_path / "c.yaml")
    assert again == config and again.hash() == config.hash()
    longer = config.replace("train", max_steps=10_000, num_workers=3)
    assert longer.hash() != config.hash()
    assert longer.hash(training_only=True) == config.hash(training_only=True)
    assert config.replace("train", lr=0.1).hash(training_only=True) != config.hash(training_only=True)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"txt": {}}, "unknown section txt; known: text, image"),
        ({"text": {"hiden": 3}}, "unknown key hiden; known: encoder"),
        ({"text": {"encoder": "gpt2"}}, "unknown text encoder 'gpt2'; known: bert, pretrained"),
        ({"model": {"fusion": "concat"}}, "unknown fusion strategy 'concat'; known: mean, gated, gumbel"),
        ({"model": {"score": "complex"}}, "unknown score function 'complex'; known: distmult, transe, rotate, bilinear, mlp"),
        ({"knowledge": {"gnn": "gcn"}}, "unknown knowledge GNN 'gcn'; known: rgcn, transformer, none"),
        ({"image": {"backbone": "resnet19"}}, "unknown image backbone 'resnet19'; known light CNNs: mobilenetv3_small_050"),
        ({"train": {"batch_size": "16"}}, "expected an integer"),
        ({"model": {"hidden": 65, "heads": 2}}, "multiple of model.heads"),
        ({"text": {"encoder": "pretrained"}}, "needs text.pretrained"),
    ],
)
def test_bad_configs_say_what_is_known(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        Config.from_dict(data)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("text: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")


def digest_of(differs: dict) -> str:
    return f"v{HASH_VERSION}-" + hashlib.sha256(json.dumps(differs, sort_keys=True).encode()).hexdigest()


def test_the_hash_covers_only_what_differs_from_the_defaults() -> None:
    assert HASH_VERSION == 3 and Config().hash() == digest_of({})
    spelled_out = Config.from_dict(Config().to_dict())  # every default written out: still the defaults
    assert spelled_out.hash() == Config().hash() == Config.from_dict({}).hash()
    changed = Config().replace("train", lr=0.01).replace("model", extra_modalities=["table"])
    assert changed.hash() == digest_of({"train": {"lr": 0.01}, "model": {"extra_modalities": ["table"]}})
    assert Config().replace("train", lr=Config().train.lr).hash() == Config().hash()


def test_a_new_field_at_its_default_changes_no_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding a field with a default (here to ``train``) leaves every existing hash alone."""
    before = Config().replace("train", lr=0.01, max_steps=7)
    hashes = before.hash(), before.hash(training_only=True), Config().hash()

    @dataclass
    class LaterTrainConfig(TrainConfig):
        new_knob: float = 0.5

    @dataclass
    class LaterConfig(Config):
        train: TrainConfig = field(default_factory=LaterTrainConfig)

    monkeypatch.setattr(kgmm.config, "Config", LaterConfig)  # the defaults Config.hash compares with
    after = LaterConfig(train=LaterTrainConfig(lr=0.01, max_steps=7))
    assert "new_knob" in after.to_dict()["train"]
    assert (after.hash(), after.hash(training_only=True), LaterConfig().hash()) == hashes
    assert LaterConfig(train=LaterTrainConfig(lr=0.01, max_steps=7, new_knob=0.7)).hash() != hashes[0]


def test_training_only_hash_ignores_run_length_fields() -> None:
    run_only = {"max_steps": 5, "device": "cpu", "patience": 5, "num_workers": 2}
    assert set(run_only) <= RUN_ONLY_FIELDS["train"]
    longer = Config().replace("train", **run_only)
    assert longer.hash(training_only=True) == Config().hash(training_only=True) == digest_of({})
    assert longer.hash() == digest_of({"train": run_only})
    assert Config().replace("train", batch_size=8, max_steps=5).hash(training_only=True) == digest_of({"train": {"batch_size": 8}})


def test_hash_versions() -> None:
    assert hash_version_of(Config().hash()) == HASH_VERSION
    assert hash_version_of(hashlib.sha256(b"a version-1 hash").hexdigest()) == 1  # a bare digest
    assert hash_version_of("v7-abc") == 7


def test_a_checkpoint_from_before_this_hash_is_refused_clearly(tmp_path: Path) -> None:
    import torch

    from kgmm.training.checkpoint import STATE_FILE, load_training_state

    state = {"state": {}, "optimizer": {}, "scheduler": {}, "rng": {}, "snapshot_hash": "s"}
    torch.save({**state, "config_hash": Config().hash(training_only=True)}, tmp_path / STATE_FILE)
    assert load_training_state(tmp_path)["config_hash"] == Config().hash(training_only=True)
    torch.save({**state, "config_hash": hashlib.sha256(b"{}").hexdigest()}, tmp_path / STATE_FILE)  # as kgmm wrote it before
    with pytest.raises(CheckpointError, match="predates this version of kgmm") as caught:
        load_training_state(tmp_path)
    assert "start a new run" in str(caught.value) and "\n" not in str(caught.value)


def test_every_field_has_a_type_the_loader_checks() -> None:
    for section, kind in SECTIONS.items():
        hints = field_types(kind)
        assert set(hints) == {f.name for f in fields(kind)}
        assert all(not isinstance(hint, str) for hint in hints.values()), f"{section}: annotation left a string"
    assert field_types(TrainConfig)["lr"] is float and field_types(kgmm.config.ModalityConfig)["media"] == str | None
    assert Config.from_dict(Config().to_dict()) == Config()  # every default passes its own type's check


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"model": {"extra_modalities": "table"}}, "model.extra_modalities: expected a list of names"),
        ({"model": {"extra_modalities": [1]}}, "model.extra_modalities: expected a list of names"),
        ({"knowledge": {"fanout": ["8"]}}, "knowledge.fanout: expected a list of integers"),
        ({"knowledge": {"fanout": [True]}}, "knowledge.fanout: expected a list of integers"),
        ({"knowledge": {"behaviour": 1}}, "knowledge.behaviour: expected true or false"),
        ({"train": {"lr": "fast"}}, "train.lr: expected a number"),
        ({"train": {"seed": True}}, "train.seed: expected an integer"),
        ({"text": {"hidden": None}}, "text.hidden: a value is required"),
        ({"text": {"encoder": 3}}, "text.encoder: expected a string"),
        ({"modality": {"media": 3}}, "modality.media: expected a string"),
        ({"modality": {"drop_text": 1.0}}, "modality.drop_text must lie in [0, 1)"),
        ({"modality": {"swap_image": -0.1}}, "modality.swap_image must lie in [0, 1)"),
    ],
)
def test_values_are_checked_against_the_field_types(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_dict(data)
    assert message in str(caught.value)


def test_typed_values_come_back_in_their_type() -> None:
    config = Config.from_dict({"train": {"lr": 1}, "image": {"weights": None}, "modality": {"media": "m.csv"}})
    assert config.train.lr == 1.0 and isinstance(config.train.lr, float)
    assert config.image.weights is None and config.modality.media == "m.csv"  # rates only for the float fields


def test_an_unsupported_field_type_is_a_programming_error() -> None:
    @dataclass
    class Odd:
        table: dict[str, int] = field(default_factory=dict)

    with pytest.raises(TypeError, match="not supported"):
        kgmm.config._section(Odd, {"table": {"a": 1}}, "odd")
