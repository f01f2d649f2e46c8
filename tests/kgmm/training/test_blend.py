"""Blending the link score's parts on validation facts (kgmm.training.blend).

Why these tests: the blend is fitted on held-out facts and then used by every scorer, so it
must (1) be exactly what ``K3M.score`` computes from ``score_terms``, (2) never make the
validation loss worse, (3) silence a part that is noise, and (4) travel with the saved model.
"""

from __future__ import annotations

import torch

from kgmm.model import K3M
from kgmm.model.evidence import BLEND
from kgmm.ranking import RankingTask, fact_scores
from kgmm.training.blend import fit_blend, score_terms
from tests.kgmm.k3m_testing import one_thread_per_module, tiny_config, tiny_setup  # noqa: F401 (autouse fixture)


def _setup():
    model, data, _ = tiny_setup(tiny_config())
    facts = torch.stack([data.train_product, data.train_attribute, data.train_value], 1)[:60].numpy()
    return model.eval(), data, RankingTask.build(data.snapshot, facts)


def test_the_score_is_the_blended_sum_of_its_terms() -> None:
    model, data, task = _setup()
    model.evidence.blend.copy_(torch.linspace(0.5, 1.5, len(BLEND)))
    terms, valid, _ = score_terms(model, data, task, torch.device("cpu"), 16)
    blended = terms @ model.evidence.blend
    scores = fact_scores(model, data, task, torch.device("cpu"), 16)
    for t, row in enumerate(scores):
        assert torch.allclose(row, blended[t, : row.numel()], atol=1e-4)
        assert int(valid[t].sum()) == row.numel()


def test_a_fitted_blend_lowers_the_validation_loss_and_silences_noise(tmp_path) -> None:
    model, data, task = _setup()
    with torch.no_grad():  # the deep score made pure noise, far louder than the rest
        model.scorer.relation.weight.normal_(std=30.0)
    result = fit_blend(model, data, task, torch.device("cpu"), 16)
    assert result is not None and result["nll_after"] < result["nll_before"]
    assert abs(result["scales"]["deep"]) < 0.2  # the noise is turned down
    model.save_pretrained(tmp_path / "m")
    again = K3M.from_pretrained(tmp_path / "m")
    assert torch.equal(again.evidence.blend, model.evidence.blend)
    a = fact_scores(model, data, task, torch.device("cpu"), 16)
    b = fact_scores(again, data, task, torch.device("cpu"), 16)
    assert all(torch.allclose(x, y, atol=1e-5) for x, y in zip(a, b))


def test_without_evidence_terms_there_is_nothing_to_blend() -> None:
    model, data, _ = tiny_setup(tiny_config().replace("model", evidence=False))
    facts = torch.stack([data.train_product, data.train_attribute, data.train_value], 1)[:5].numpy()
    assert fit_blend(model, data, RankingTask.build(data.snapshot, facts), torch.device("cpu"), 16) is None
