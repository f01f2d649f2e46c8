"""Stage 0: the link score's evidence terms fitted alone before joint training.

Why these tests: stage 0 must train only what it claims (the evidence terms and the value
bias, never the deep model), lower its own loss, be reproducible for a seed, and its category
dropout must reach the prior (a knob that changes nothing would be a silent no-op).
"""

from __future__ import annotations

import torch

from kgmm.training import evidence_stage
from kgmm.training.evidence_stage import fact_chunks, fact_sample, run_evidence_stage, transferable
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
    values = torch.tensor([5, 5, 7, 9, 9])
    assert transferable(values, values).tolist() == [True, True, False, True, True]
    # counted over every training fact, not only the ones offered
    assert transferable(values[2:3], torch.tensor([7, 7])).tolist() == [True]
    assert transferable(values[:0], values).numel() == 0


def test_a_large_catalog_fits_a_sample_of_its_facts_in_evenly_spaced_product_blocks() -> None:
    products = torch.arange(40).repeat_interleave(2)  # 80 facts, two a product
    assert torch.equal(fact_sample(products, 80), torch.arange(80)) and torch.equal(fact_sample(products, 0), torch.arange(80))
    sample = fact_sample(products, 30, block=5)  # at most 30: every 3rd block of 5 products
    assert sorted(set((products[sample] // 5).tolist())) == [0, 3, 6] and sample.numel() == 30
    assert torch.equal(fact_sample(products, 30, block=5), sample)  # deterministic
    thinned = fact_sample(products, 28, block=5)  # the same blocks hold 30, over 28: 28 of their facts, evenly spaced
    assert thinned.numel() == 28 and set(thinned.tolist()) <= set(sample.tolist())


def test_a_wide_attribute_gets_fewer_facts_a_step_and_every_fact_one_step() -> None:
    candidates = [torch.arange(5), torch.arange(5, 2005)]  # a narrow attribute and one with 2,000 values
    facts = torch.stack([torch.arange(700), torch.arange(700) % 2, torch.zeros(700, dtype=torch.long)], 1)
    chunks = fact_chunks(facts, candidates, size=512, cells=512 * 1024)
    assert sorted(torch.cat(chunks)[:, 0].tolist()) == list(range(700))
    for chunk in chunks:
        widest = max(candidates[a].numel() for a in chunk[:, 1].tolist())
        assert chunk.shape[0] <= 512 and (chunk.shape[0] * widest <= 512 * 1024 or chunk.shape[0] == 1)
    assert [c.shape[0] for c in chunks if int(c[0, 1]) == 0] == [350]  # narrow ones: one full step
    assert max(c.shape[0] for c in chunks if int(c[0, 1]) == 1) == 262  # 512 * 1024 // 2000


def test_chunks_recomputed_each_pass_give_the_same_fit_as_kept_ones(monkeypatch) -> None:
    kept, _, first = _fit()
    monkeypatch.setattr(evidence_stage, "CACHE_BYTES", 0)  # nothing kept: every chunk prepared again each pass
    recomputed, _, again = _fit()
    assert first.kept_chunks == first.chunks > 0 and again.kept_chunks == 0
    for name, value in kept.state_dict().items():
        assert torch.equal(value, recomputed.state_dict()[name]), name


def test_every_step_reports_its_progress_and_the_last_ends_the_stage() -> None:
    config = tiny_config(evidence_epochs=2)
    model, data, _ = tiny_setup(config)
    seen = []
    stage = run_evidence_stage(model, data, config, torch.device("cpu"), on_step=lambda *report: seen.append(report))
    assert [step for step, _, _ in seen] == list(range(1, stage.steps + 1))
    assert {steps for _, steps, _ in seen} == {stage.steps} == {2 * stage.chunks}
    assert seen[-1][2] > 0
