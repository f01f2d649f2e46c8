"""A newcomer's extensions, each written in this file alone and trained with for real.

What ``docs/EXTENDING.md`` promises: an objective is one class plus one registry line, a
modality is an (input builder, encoder) pair plus one registry line; nothing else in kgmm
changes, and the trainer, ``metrics.jsonl`` and the loss plot pick the new parts up.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from kgmm.modalities import ModalInput, Modality, ModalityEncoder
from kgmm.objectives import Objective
from kgmm.registry import MODALITIES, OBJECTIVES
from kgmm.training import pretrain
from tests.kgmm.k3m_testing import build_store, one_thread, tiny_config


class ProductNorm(Objective):
    """A toy regulariser: keep product vectors near the unit sphere."""

    name = "product_norm"

    @property
    def weight(self) -> float:
        return 0.1

    def loss(self, model, output, batch) -> dict[str, Tensor]:
        return {self.name: (output.product.float().norm(dim=-1) - 1).pow(2).mean()}


class TitleLengthInput:
    """A toy modality's input: how many title tokens a product has, as one number."""

    def __init__(self, snapshot, tokenizer, config, media=None) -> None:
        pass

    def build(self, parts, data, generator) -> None:
        lengths = torch.tensor([[float(len(data.titles[p]))] for p in parts.rows])  # [B, 1]
        present = lengths[:, 0] > 0
        parts.extra["title_length"] = ModalInput(lengths / 16.0, torch.ones(len(parts.rows), 1, dtype=torch.bool), present)


class TitleLengthEncoder(ModalityEncoder):
    name = "title_length"

    def __init__(self, hidden: int, config, shared) -> None:
        super().__init__(hidden, config, shared)
        self.proj = nn.Linear(1, hidden)

    def encode(self, data: Tensor, mask: Tensor) -> Tensor:
        return self.proj(data).unsqueeze(1)  # [p, 1, d]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return build_store(tmp_path_factory.mktemp("store") / "example.db")


def test_an_objective_from_one_file_trains_and_is_logged(store: str, tmp_path: Path) -> None:
    with OBJECTIVES.registered(ProductNorm.name, ProductNorm), one_thread():
        result = pretrain(store, tiny_config(max_steps=4), tmp_path / "run")
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in records if r["kind"] == "train"]
    assert logged and all("product_norm" in r for r in logged)
    assert {"mlm", "mom", "lpm", "product_norm"} <= set(result.last_terms)
    assert "product_norm" not in OBJECTIVES.names  # registered for the block only


def test_a_modality_from_one_file_becomes_a_stream(store: str, tmp_path: Path) -> None:
    modality = Modality("title_length", TitleLengthInput, TitleLengthEncoder)
    with MODALITIES.registered("title_length", modality), one_thread():
        config = tiny_config(max_steps=4).replace("model", extra_modalities=["title_length"])
        result = pretrain(store, config, tmp_path / "run")
        from kgmm import K3M

        model = K3M.from_pretrained(result.model_dir)
        assert model.stream_names[-1] == "title_length"
        assert any(key.startswith("extras.title_length.proj") for key in model.state_dict())
    assert result.steps == 4 and result.link
