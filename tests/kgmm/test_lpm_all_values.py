"""1-N link prediction (``objectives.lpm_all_values``): every value of the attribute, not samples.

Why these tests: a true value scored as a negative teaches the model to push down a correct
answer, and a missing candidate makes the 1-N loss a sampled one again; both would go
unnoticed in a loss curve. The switch is opt-in, so configs without it keep their hash.
"""

from __future__ import annotations

import pytest
import torch

from kgmm.config import Config
from kgmm.data.batches import batch_generator
from kgmm.objectives import compute_losses
from tests.kgmm.k3m_testing import one_thread_per_module, example_snapshot, tiny_config, tiny_setup  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def setup():
    config = tiny_config().replace("objectives", lpm_all_values=True)
    model, data, _ = tiny_setup(config)
    return config, model, data


def test_candidates_are_the_attributes_values_minus_the_products_true_ones(setup) -> None:
    _, _, data = setup
    snapshot = example_snapshot()
    batch = data.build(torch.arange(24), batch_generator(0, 3), train=True)
    assert batch.lpm_row.numel() > 0
    for t in range(batch.lpm_row.numel()):
        product = int(batch.products[batch.lpm_row[t]])
        attribute, value = int(batch.lpm_attribute[t]), int(batch.lpm_value[t])
        everything = {v for v in range(len(snapshot.values)) if int(snapshot.value_attribute[v]) == attribute}
        true = {int(v) for p, a, v in zip(snapshot.edge_product, snapshot.edge_attribute, snapshot.edge_value)
                if int(p) == product and int(a) == attribute}
        assert value in true
        got = batch.lpm_negatives[t][batch.lpm_negative_mask[t]].tolist()
        assert len(got) == len(set(got)) and set(got) == everything - true
        assert (batch.lpm_negatives[t][~batch.lpm_negative_mask[t]] == -1).all()


def test_the_lpm_loss_is_finite_and_trains(setup) -> None:
    config, model, data = setup
    batch = data.build(torch.arange(24), batch_generator(0, 4), train=True)
    losses = compute_losses(model, model.train()(batch), batch, config)
    assert "lpm" in losses and torch.isfinite(losses["lpm"])
    losses["lpm"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.knowledge.parameters())


def test_the_default_is_on_and_switching_it_off_changes_the_hash() -> None:
    default = Config()
    assert default.objectives.lpm_all_values
    assert default.replace("objectives", lpm_all_values=True).hash() == default.hash()
    assert default.replace("objectives", lpm_all_values=False).hash() != default.hash()
