"""Stage 0: the link score's evidence terms fitted alone before joint training.

Why these tests: stage 0 must train only what it claims (the evidence terms and the value
bias, never the deep model), lower its own loss, be reproducible for a seed, and its category
dropout must reach the prior (a knob that changes nothing would be a silent no-op).
"""

from __future__ import annotations

import torch

from kgmm.training.evidence_stage import run_evidence_stage, transferable
from tests.kgmm.k3m_testing import one_thread_per_module, tiny_config, tiny_setup  # noqa: F401 (autouse fixture)


def _fit(**train):
    config = tiny_config(evidence_epochs=3, **train)
    model, data, _ = tiny_setup(config)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stage = run_evidence_stage(model, data, config, torch.device("cpu"))
    return model, before, stage


def test_stage_zero_trains_the_evidence_terms_only_and_lowers_its_loss() -> None:
    model, before, stage = _fit()
    assert stage.steps > 0 and stage.last_loss < stage.first_loss
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("evidence.") or k == "value_bias" for k in changed)
    assert "value_bias" in changed and "evidence.ngram.weight" in changed


def test_stage_zero_is_reproducible_and_category_dropout_reaches_the_prior() -> None:
    first, _, _ = _fit(evidence_category_dropout=0.5)
    again, _, _ = _fit(evidence_category_dropout=0.5)
    other, _, _ = _fit(evidence_category_dropout=0.0)
    weights = "evidence.ngram.weight"
    assert torch.equal(first.state_dict()[weights], again.state_dict()[weights])
    assert not torch.equal(first.state_dict()[weights], other.state_dict()[weights])


def test_no_stage_zero_without_evidence_terms_or_epochs() -> None:
    config = tiny_config(evidence_epochs=0)
    model, data, _ = tiny_setup(config)
    assert run_evidence_stage(model, data, config, torch.device("cpu")).steps == 0
    config = tiny_config(evidence_epochs=2).replace("model", evidence=False)
    model, data, _ = tiny_setup(config)
    assert run_evidence_stage(model, data, config, torch.device("cpu")).steps == 0


def test_only_facts_whose_value_has_another_training_fact_are_fitted() -> None:
    # values 5 and 9 have two facts each, value 7 one: its fact teaches nothing that transfers
    facts = torch.tensor([[0, 0, 5], [1, 0, 5], [2, 0, 7], [3, 1, 9], [4, 1, 9]])
    kept = transferable(facts, facts[:, 2])
    assert kept[:, 2].tolist() == [5, 5, 9, 9]
    # counted over every training fact, not only the ones offered
    assert transferable(facts[2:3], torch.tensor([7, 7])).shape[0] == 1
    assert transferable(facts[:0], facts[:, 2]).shape[0] == 0
