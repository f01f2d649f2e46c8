"""A model's scores for candidate values: product vectors, per-fact score rows, top values.

Every consumer of a model's link-prediction head goes through here: validation while
training (:mod:`.validation`), ``kgmm evaluate`` and ``kgmm complete``. Products are
encoded with full inputs (no masking, dropout or hold-out) by the batch builder they
are read through, so a caller chooses what the model may see by the data it passes
(a :class:`~kgmm.data.views.ViewData` with a modality view, or a training graph).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import nullcontext

import torch
from torch import Tensor

from ..data.batches import batch_generator
from ..model.k3m import EncodedProducts
from .task import RankingTask

FACTS_PER_CALL = 512
"""Facts :func:`fact_scores` scores per call (grouped by width within it)."""
EVAL_SEED_KEY = -1
"""``batch_generator`` key of evaluation batches (only the subgraph sample draws from it)."""


@torch.no_grad()
def encode_products(model, data, products: list[int], device: torch.device, batch_size: int, autocast=None,
                    modalities: tuple[str, ...] | None = None) -> EncodedProducts:
    """Product vectors [len(products), d] with full inputs, and what the link score's evidence
    terms read of them; ``modalities`` reads only those streams (each modality alone), ``None`` all."""
    was_training = model.training
    model.eval()
    chunks = []
    try:
        for start in range(0, len(products), batch_size):
            chunk = products[start : start + batch_size]
            batch = data.build(chunk, batch_generator(data.config.train.seed, EVAL_SEED_KEY, start), train=False).to(device)
            with autocast() if autocast else nullcontext():
                output = model(batch, heads=False) if modalities is None else model(batch, heads=False, modalities=modalities)
                chunks.append(output.products())
    finally:
        model.train(was_training)
    d = model.config.model.hidden
    return EncodedProducts.cat(chunks) if chunks else EncodedProducts(torch.zeros(0, d, device=device))


@torch.no_grad()
def value_scores(model, product: EncodedProducts, attribute: int, candidates: Tensor, device: torch.device, autocast=None) -> Tensor:
    """Scores [M] of ``candidates`` (value ids) for one encoded product (a row of
    :func:`encode_products`) and one attribute."""
    with autocast() if autocast else nullcontext():
        scores = model.score(product.vector.view(1, -1), torch.tensor([attribute], device=device), candidates.view(1, -1).to(device),
                             product.evidence)
    return scores[0].float()


@torch.no_grad()
def grouped_value_scores(model, products: EncodedProducts, attributes: Sequence[int], candidates: Sequence[Tensor],
                         device: torch.device, autocast=None, on_cpu: bool = False, exclude: Tensor | None = None,
                         check: bool = False) -> list[Tensor]:
    """Scores of every candidate value of ``attributes[i]`` for row ``i`` of ``products``: one
    vector [M_a] per row (on the device, or with ``on_cpu`` all moved in one copy), the
    numbers :func:`value_scores` gives row by row. ``exclude`` [rows]: a value per row (-1:
    none) left out of the category prior's counts, as a held-out fact would be; ``check``: the
    scores of a noise check (``K3M.score``'s ``check``).

    Why: scoring one (product, attribute) pair per call cost about a millisecond of dispatch
    and small-tensor work each (the evidence terms alone run a dozen small ops), which made
    the noise check of ``kgmm complete`` (every catalog value of every product) its slowest
    part. Here rows of similar width (:func:`width_groups`) go through one ``model.score`` call
    of [rows, their widest M_a]: each row's candidates first, then padding (value 0, scored
    and dropped). Every score function and evidence term scores each (row, value) on its own,
    so the padding changes no number.
    """
    return row_scores(model, products, range(len(attributes)), attributes, [candidates[int(a)] for a in attributes], device, autocast,
                      on_cpu, exclude, check)


@torch.no_grad()
def row_scores(model, products: EncodedProducts, rows: Sequence[int], attributes: Sequence[int], lists: Sequence[Tensor],
               device: torch.device, autocast=None, on_cpu: bool = False, exclude: Tensor | None = None,
               check: bool = False) -> list[Tensor]:
    """:func:`grouped_value_scores` for entry ``i``: product row ``rows[i]`` of ``products`` (rows
    may repeat), attribute ``attributes[i]`` and its own candidate values ``lists[i]`` (a ranking
    task's candidates, or the attribute's)."""
    if not attributes:
        return []
    rows = torch.as_tensor(list(rows), dtype=torch.long)
    out: list[Tensor | None] = [None] * len(lists)
    for group, values in padded_groups(lists):
        chosen = products.select(rows[group].to(products.vector.device))
        with autocast() if autocast else nullcontext():
            scores = model.score(chosen.vector, torch.as_tensor([int(attributes[entry]) for entry in group], dtype=torch.long, device=device),
                                 values.to(device), chosen.evidence, exclude=None if exclude is None else exclude[group].to(device), check=check)
        scores = scores.float().cpu() if on_cpu else scores.float()
        for i, entry in enumerate(group):
            out[entry] = scores[i, : lists[entry].numel()]
    return out  # type: ignore[return-value]


def padded_groups(lists: Sequence[Tensor]) -> Iterator[tuple[list[int], Tensor]]:
    """The entries of ``lists`` (value ids) in :func:`width_groups`, each group with its values
    padded with 0 to the group's widest: (entries, values [len(entries), width])."""
    for group in width_groups([c.numel() for c in lists]):
        values = torch.zeros(len(group), max(lists[entry].numel() for entry in group), dtype=torch.long)
        for i, entry in enumerate(group):
            values[i, : lists[entry].numel()] = lists[entry]
        yield group, values


def width_groups(widths: Sequence[int], slack: float = 2.0) -> list[list[int]]:
    """Row indices grouped so that no row is padded to more than ``slack`` times its own width:
    rows sorted by width, a new group whenever a row is wider than ``slack`` times the group's
    narrowest. Why: padding every row to the widest attribute (a brand with hundreds of values)
    made a batch of narrow attributes score hundreds of padding values each; at most about
    log2(widest / narrowest) + 1 calls instead."""
    order = sorted(range(len(widths)), key=lambda row: (widths[row], row))
    groups: list[list[int]] = []
    for row in order:
        if groups and widths[row] <= slack * widths[groups[-1][0]]:
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


@torch.no_grad()
def fact_scores(model, data, task: RankingTask, device: torch.device, batch_size: int, autocast=None,
                modalities: tuple[str, ...] | None = None) -> list[Tensor]:
    """One score vector per triple of ``task`` over its candidates (on the CPU), products read
    from ``data`` (through ``modalities`` only, when given)."""
    products = task.products
    if not products:
        return []
    position = {p: i for i, p in enumerate(products)}
    vectors = encode_products(model, data, products, device, batch_size, autocast, modalities)  # n rows
    facts, out = task.facts.tolist(), []
    for start in range(0, len(facts), FACTS_PER_CALL):  # bounded memory: [facts, widest candidates, parts] per call
        chunk = facts[start : start + FACTS_PER_CALL]
        out += row_scores(model, vectors, [position[p] for p, _, _ in chunk], [a for _, a, _ in chunk],
                          task.candidates[start : start + FACTS_PER_CALL], device, autocast, on_cpu=True)
    return out


@torch.no_grad()
def top_values(model, data, pairs: list[tuple[int, int]], device: torch.device, top: int = 3, autocast=None) -> list[list[tuple[int, float]]]:
    """Per (product, attribute) pair, its ``top`` value ids with softmax probabilities over
    all values of the attribute (uncalibrated: a temperature is :mod:`.calibration`'s job)."""
    if not pairs:
        return []
    vectors = encode_products(model, data, [p for p, _ in pairs], device, len(pairs), autocast)
    out = []
    for (_, a), vector in zip(pairs, vectors):
        candidates = data.candidates[a]
        probs = torch.softmax(value_scores(model, vector, a, candidates, device).cpu(), 0)
        best = probs.topk(min(top, candidates.numel()))
        out.append([(int(candidates[i]), float(prob)) for prob, i in zip(best.values, best.indices)])
    return out
