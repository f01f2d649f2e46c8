"""Config: YAML sections, clear errors for unknown keys and components, hashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kgmm.k3m_testing import EXAMPLES

from kgmm.config import Config, load_config, save_config
from kgmm.errors import ConfigError


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
