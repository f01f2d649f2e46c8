"""Blending the link score's parts on validation facts (kgmm.training.blend).

Why these tests: the blend is fitted on held-out facts and then used by every scorer, so it
must (1) be exactly what ``K3M.score`` computes from ``score_terms``, (2) never make the
validation loss worse, (3) silence a part that is noise, and (4) travel with the saved model.
"""

from __future__ import annotations

import torch

from kgmm.data.views import without_text
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
    model.evidence.blend.copy_(torch.stack([torch.linspace(0.5, 1.5, len(BLEND)), torch.linspace(2.0, -1.0, len(BLEND)),
                                            torch.linspace(-1.0, 1.0, len(BLEND))]))
    for view in (data, without_text(data)):  # with text the first row of scales, without it the second
        terms, valid, _, text = score_terms(model, view, task, torch.device("cpu"), 16)
        blended = (terms * model.evidence.blend[(~text).long()].unsqueeze(1)).sum(-1)
        scores = fact_scores(model, view, task, torch.device("cpu"), 16)
        for t, row in enumerate(scores):
            assert torch.allclose(row, blended[t, : row.numel()], atol=1e-4)
            assert int(valid[t].sum()) == row.numel()
    assert bool(text.logical_not().all())


def test_a_fitted_blend_lowers_the_validation_loss_and_silences_noise(tmp_path) -> None:
    model, data, task = _setup()
    with torch.no_grad():  # the deep score made pure noise, far louder than the rest
        model.scorer.relation.weight.normal_(std=30.0)
    result = fit_blend(model, data, task, torch.device("cpu"), 16)
    assert result is not None and result["nll_after"] < result["nll_before"]
    assert abs(result["scales"]["text"]["deep"]) < 0.2  # the noise is turned down, with text and without
    assert abs(result["scales"]["no_text"]["deep"]) < 0.2
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


def test_a_model_saved_with_one_row_of_scales_uses_it_with_and_without_text(tmp_path) -> None:
    model, data, task = _setup()
    model.evidence.blend.copy_(torch.linspace(0.5, 1.5, len(BLEND)).expand(3, -1))
    expected = fact_scores(model, without_text(data), task, torch.device("cpu"), 16)
    model.save_pretrained(tmp_path / "m")
    from safetensors.torch import load_file, save_file

    weights = next((tmp_path / "m").glob("*.safetensors"))
    state = load_file(weights)
    state["evidence.blend"] = state["evidence.blend"][0].clone()  # the layout before the second row
    save_file(state, weights)
    again = K3M.from_pretrained(tmp_path / "m")
    assert again.evidence.blend.shape == (3, len(BLEND))
    got = fact_scores(again, without_text(data), task, torch.device("cpu"), 16)
    assert all(torch.allclose(x, y, atol=1e-5) for x, y in zip(expected, got))


def test_check_scores_leave_out_the_parts_that_memorise_their_facts() -> None:
    model, data, task = _setup()
    model.evidence.blend[2] = 1.0
    model.evidence.blend[2, BLEND.index("deep")] = model.evidence.blend[2, BLEND.index("lexical")] = 0.0
    terms, _, _, text = score_terms(model, data, task, torch.device("cpu"), 16)
    assert bool(text.all())
    from kgmm.ranking.scoring import encode_products

    encoded = encode_products(model, data, task.products, torch.device("cpu"), 16)
    row = task.products.index(int(task.facts[0, 0]))
    values = task.candidates[0].view(1, -1)
    attribute = torch.tensor([int(task.facts[0, 1])])
    checked = model.score(encoded.vector[row : row + 1], attribute, values, encoded.evidence.select(row), check=True)
    keep = [i for i, name in enumerate(BLEND) if name not in ("deep", "lexical")]
    assert torch.allclose(checked[0], terms[0, : values.shape[1], keep].sum(-1), atol=1e-4)
