"""Every registered objective and modality, picked up from the registries (PyKEEN's habit).

A part added with one registry line is tested here without a new test: each objective,
switched on, gives a finite loss term that reaches the model's parameters; each modality,
read by a model, becomes a stream with finite tokens on the rows that have it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kgmm.config import ObjectiveConfig
from kgmm.data.batches import batch_generator
from kgmm.modalities import CORE
from kgmm.objectives import compute_losses
from kgmm.registry import MODALITIES, OBJECTIVES
from tests.kgmm.k3m_testing import one_thread_per_module, example_snapshot, tiny_config, tiny_setup  # noqa: F401 (autouse fixture)
from tests.kgmm.model.test_modalities import write_gif, write_wav


def with_objective(name: str):
    """The tiny config with objective ``name`` on (its config weight, where it has one, at 1)."""
    config = tiny_config()
    return config.replace("objectives", **{name: 1.0}) if name in ObjectiveConfig.__dataclass_fields__ else config


@pytest.mark.parametrize("name", OBJECTIVES.names)
def test_every_registered_objective_gives_a_finite_term_with_gradients(name: str) -> None:
    config = with_objective(name)
    model, data, _ = tiny_setup(config)
    batch = data.build(torch.arange(12), batch_generator(0, 7), train=True)
    objective = OBJECTIVES.get(name)(config)
    losses = compute_losses(model, model.train()(batch), batch, config)
    assert set(objective.terms) <= set(losses), f"{name} returned none of its terms on a full batch"
    term = sum(losses[t] for t in objective.terms)
    assert torch.isfinite(term)
    term.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.fixture(scope="module")
def media_table(tmp_path_factory) -> Path:
    """A media table giving a GIF and a WAV to a third of the example products."""
    folder = tmp_path_factory.mktemp("media")
    rows = ["product_id,modality,path"]
    for i, product in enumerate(example_snapshot().product_ids[:36:3]):
        write_gif(folder / f"{i}.gif", [(200, 0, 0), (0, 200, 0)])
        write_wav(folder / f"{i}.wav", 300 + 10 * i, 0.3)
        rows += [f"{product},video,{i}.gif", f"{product},audio,{i}.wav"]
    (folder / "media.csv").write_text("\n".join(rows) + "\n")
    return folder / "media.csv"


@pytest.mark.parametrize("name", MODALITIES.names)
def test_every_registered_modality_becomes_a_stream(name: str, media_table: Path) -> None:
    config = tiny_config().replace("modality", media=str(media_table))
    if name not in CORE:
        config = config.replace("model", extra_modalities=[name])
    model, data, _ = tiny_setup(config)
    batch = data.build(torch.arange(36), batch_generator(0, 8), train=False)
    assert name in model.stream_names
    encoder = model.stream_encoder(name)
    present = encoder.present(batch)
    assert present.any(), f"no example product has {name}"
    tokens, pad = encoder.stream(batch, model.missing_token(name))
    assert tokens.shape[:2] == pad.shape and tokens.shape[0] == 36
    assert torch.isfinite(tokens).all() and not pad.all(1).any()  # every row shows at least one token
