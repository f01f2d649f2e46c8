"""Blend the parts of the link score on validation facts, after training.

Why: the link score is a sum of parts (:meth:`kgmm.model.k3m.K3M.score_terms`: the deep
score, the value bias, the evidence features' terms, the lexical classifier). Every part is
trained on the training facts, which some parts fit far more closely than held-out ones (the
n-gram classifier memorises its facts: its training loss ends near 0.3 while held-out facts
score much worse), so the balance the training loss sets between the parts is the balance
on facts the model has seen. Stacking's usual cure is to set it on held-out predictions: one
scale per part (:data:`kgmm.model.evidence.BLEND`, a dozen numbers), fitted by minimum
cross-entropy on the validation facts early stopping already reads, stored in the model
(``evidence.blend``), so ``kgmm complete`` and ``kgmm evaluate`` score with them. A dozen
numbers fitted on hundreds of facts do not overfit them (the fit is kept only when it lowers
the validation loss, and a small pull towards 1 keeps unused parts where they were); the
test facts choose nothing.

There are three rows of scales (:data:`kgmm.model.evidence.BLEND_ROWS`): one for products whose
text is read, one for those whose text is not, fitted on the same validation facts scored
again with every text removed, and one for noise checks (the same facts with text, the parts
that memorise their training facts held at 0). Why: without text the text parts are 0 and the balance of the
rest (prior, value bias, deep score) is a different question; with one row, the value bias
the text rows want (a catalog-wide popularity) outweighed the category prior on textless rows
and they fell below the category rule (Flipkart, 50% missing text, measured in
``docs/EVALUATION.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..data.views import without_text
from ..model.evidence import BLEND, BLEND_ROWS, MEMORISING
from ..ranking import RankingTask, encode_products
from ..ranking.scoring import padded_groups

CHUNK = 128
"""Facts scored per call (a chunk's value embeddings are [CHUNK, widest attribute, d])."""
PULL = 1e-3
"""L2 pull of each scale towards 1 (a part the validation facts say nothing about stays put)."""


@dataclass
class TermGroup:
    """Facts of similar width (positions ``index`` in the task) and their score terms, padded
    to the group's widest: terms [g, w, len(BLEND)], valid [g, w], truth [g], text [g]."""

    index: torch.Tensor
    terms: torch.Tensor
    valid: torch.Tensor
    truth: torch.Tensor
    text: torch.Tensor

    def rows(self, keep: torch.Tensor) -> TermGroup:
        return TermGroup(self.index[keep], self.terms[keep], self.valid[keep], self.truth[keep], self.text[keep])


@torch.no_grad()
def score_term_groups(model, data, task: RankingTask, device: torch.device, batch_size: int) -> list[TermGroup]:
    """The score terms of every task fact over its candidates, in width groups
    (:func:`~kgmm.ranking.scoring.width_groups`); ``text``: the fact's product had its text read.
    Why groups: one table padded to the widest attribute (2,000 brands) for every fact was
    gigabytes at a million products, and a loss over it gigabytes more."""
    products = task.products
    encoded = encode_products(model, data, products, device, batch_size)
    index = {p: i for i, p in enumerate(products)}
    rows = torch.tensor([index[p] for p in task.facts[:, 0].tolist()], device=device)
    attribute = torch.as_tensor(task.facts[:, 1], dtype=torch.long)
    text = encoded.evidence.text[rows].cpu()
    truth = torch.tensor(task.truth)
    widths = [c.numel() for c in task.candidates]
    out = []
    for group, values in padded_groups(task.candidates):
        width = values.shape[1]
        members = torch.tensor(group)
        terms = []
        for start in range(0, len(group), CHUNK):
            chunk = members[start : start + CHUNK]
            terms.append(model.score_terms(encoded.vector[rows[chunk]], attribute[chunk].to(device), values[start : start + CHUNK].to(device),
                                           encoded.evidence.select(rows[chunk])).float().cpu())
        valid = torch.arange(width).view(1, -1) < torch.tensor([widths[t] for t in group]).view(-1, 1)
        out.append(TermGroup(members, torch.cat(terms), valid, truth[members], text[members]))
    return out


def score_terms(model, data, task: RankingTask, device: torch.device, batch_size: int
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(terms [T, W, len(BLEND)], valid [T, W], truth [T], text [T]): :func:`score_term_groups`
    as one table in task order, padded to the widest (a small task's view, for inspection)."""
    groups = score_term_groups(model, data, task, device, batch_size)
    width = max(g.valid.shape[1] for g in groups)
    terms = torch.zeros(len(task), width, len(BLEND))
    valid = torch.zeros(len(task), width, dtype=torch.bool)
    truth = torch.zeros(len(task), dtype=torch.long)
    text = torch.zeros(len(task), dtype=torch.bool)
    for g in groups:
        w = g.valid.shape[1]
        terms[g.index, :w], valid[g.index, :w], truth[g.index], text[g.index] = g.terms, g.valid, g.truth, g.text
    return terms, valid, truth, text


def fit_blend(model, data, task: RankingTask, device: torch.device, batch_size: int) -> dict | None:
    """Fit ``model.evidence.blend`` on ``task`` (validation facts); returns what it did, or
    None when the model has no evidence terms or there are no facts."""
    if getattr(model, "evidence", None) is None or len(task) == 0:
        return None
    clean = score_term_groups(model, data, task, device, batch_size)
    textless = score_term_groups(model, without_text(data), task, device, batch_size)
    text, no_text, check = (BLEND_ROWS.index(name) for name in ("text", "no_text", "check"))
    # each fact with text once in the text row, once in the check row; each fact without its text
    # in the no-text row (a product with no text at all: its clean row is the no-text row too)
    groups = [(g.terms, g.valid, g.truth, torch.where(g.text, text, no_text)) for g in clean]
    groups += [(g.terms, g.valid, g.truth, torch.where(g.text, text, no_text)) for g in textless]
    groups += [(g.terms, g.valid, g.truth, torch.full((len(g.truth),), check)) for g in (g.rows(g.text) for g in clean) if len(g.truth)]
    count = sum(int(truth.numel()) for _, _, truth, _ in groups)
    del clean, textless
    used = torch.ones(len(BLEND_ROWS), len(BLEND))
    used[check, [BLEND.index(name) for name in MEMORISING]] = 0.0  # held at 0 in the check row
    scales = torch.ones(len(BLEND_ROWS), len(BLEND), requires_grad=True)

    def loss(pull: float = PULL) -> torch.Tensor:
        total = sum(F.cross_entropy((part * (scales * used)[rows].unsqueeze(1)).sum(-1).masked_fill(~mask, float("-inf")), target,
                                    reduction="sum") for part, mask, target, rows in groups)
        return total / count + pull * (scales - 1).pow(2).sum()

    with torch.no_grad():
        before = float(loss(0.0))
    optimizer = torch.optim.LBFGS([scales], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value = loss()
        value.backward()
        return value

    with torch.enable_grad():
        optimizer.step(closure)
    with torch.no_grad():
        after = float(loss(0.0))
    kept = after < before  # never worse than the training balance on the facts it was fitted on
    fitted = (scales.detach() if kept else torch.ones(len(BLEND_ROWS), len(BLEND))) * used
    model.evidence.blend.copy_(fitted.to(model.evidence.blend.device))
    return {"scales": {kind: {name: round(float(x), 4) for name, x in zip(BLEND, scales_row)} for kind, scales_row in zip(BLEND_ROWS, fitted)},
            "facts": len(task),
            "nll_before": round(before, 5), "nll_after": round(after if kept else before, 5)}
