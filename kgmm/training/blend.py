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

import torch
import torch.nn.functional as F

from ..data.views import without_text
from ..model.evidence import BLEND, BLEND_ROWS, MEMORISING
from ..ranking import RankingTask, encode_products
from ..ranking.scoring import width_groups

CHUNK = 128
"""Facts scored per call (a chunk's value embeddings are [CHUNK, widest attribute, d])."""
PULL = 1e-3
"""L2 pull of each scale towards 1 (a part the validation facts say nothing about stays put)."""


@torch.no_grad()
def score_terms(model, data, task: RankingTask, device: torch.device, batch_size: int
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(terms [T, W, len(BLEND)], valid [T, W], truth [T], text [T]) of every task fact over
    its candidates; ``text``: the fact's product had its text read."""
    products = task.products
    encoded = encode_products(model, data, products, device, batch_size)
    index = {p: i for i, p in enumerate(products)}
    rows = torch.tensor([index[p] for p in task.facts[:, 0].tolist()], device=device)
    width = max(c.numel() for c in task.candidates)
    values = torch.zeros(len(task), width, dtype=torch.long)
    for t, candidates in enumerate(task.candidates):
        values[t, : candidates.numel()] = candidates
    valid = torch.arange(width).view(1, -1) < torch.tensor([c.numel() for c in task.candidates]).view(-1, 1)
    attribute = torch.as_tensor(task.facts[:, 1], dtype=torch.long)
    terms = []
    for start in range(0, len(task), CHUNK):
        chunk = slice(start, start + CHUNK)
        terms.append(model.score_terms(encoded.vector[rows[chunk]], attribute[chunk].to(device), values[chunk].to(device),
                                       encoded.evidence.select(rows[chunk])).float().cpu())
    return torch.cat(terms), valid, torch.tensor(task.truth), encoded.evidence.text[rows].cpu()


def fit_blend(model, data, task: RankingTask, device: torch.device, batch_size: int) -> dict | None:
    """Fit ``model.evidence.blend`` on ``task`` (validation facts); returns what it did, or
    None when the model has no evidence terms or there are no facts."""
    if getattr(model, "evidence", None) is None or len(task) == 0:
        return None
    clean = score_terms(model, data, task, device, batch_size)
    textless = score_terms(model, without_text(data), task, device, batch_size)
    text, no_text, check = (BLEND_ROWS.index(name) for name in ("text", "no_text", "check"))
    read = clean[3]
    checked = tuple(t[read] for t in clean[:3])  # the check row: the facts with text once more
    terms, valid, truth = (torch.cat(parts) for parts in zip(clean[:3], textless[:3], checked))
    row = torch.cat([torch.where(read, text, no_text), torch.where(textless[3], text, no_text), torch.full((int(read.sum()),), check)])
    # facts of similar width together, each group padded to its own widest: one table padded to the
    # widest attribute (2,000 brands) took 1.4 GB of autograd temporaries at every loss evaluation
    groups = []
    for group in width_groups(valid.sum(1).tolist()):
        index = torch.tensor(group)
        width = int(valid[index].sum(1).max())
        groups.append((terms[index, :width], valid[index, :width], truth[index], row[index]))
    count = int(truth.numel())
    del terms, clean, textless, checked
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
