"""Stage 0: fit the link score's evidence terms alone before the whole model trains.

Why: the evidence terms (:mod:`kgmm.model.evidence`: category-prior and mention weights, an
IDF-weighted n-gram classifier) are a shallow model over inputs that do not change during
training, so they can see every training fact many times in seconds, while one step of the
whole model (transformer, CNN, GNN) takes about a second on a CPU. A fastText classifier
needs tens of passes over its data; the whole model gets a few. So the stage gives the
shallow part its passes first (LPM's own loss, 1-N over the attribute's values, the
product's other true values masked, the prior counted leave-one-out), and joint training
then learns the deep residual on top. ``train.evidence_epochs`` (0: off).

Text dropout is applied at the training rate (``modality.drop_text``) so the terms do not
learn to rely on text every product has, and the category is withheld from the prior for a
share of the facts when ``train.evidence_category_dropout`` is set (off by default; the
catalog-wide prior instead). Why it exists: on Flipkart (seed 0) stage 0 with the category
hidden everywhere (the text-only view) reached validation Hits@1 0.757 and test 0.744, with
it 0.714 and 0.717, so the n-gram classifier seemed to learn only what the category leaves
unexplained. Withholding it for half the facts did not help (0.713 and 0.691), nor for all of them once
stage 0 fits transferable facts only (below; validation 0.767 -> 0.757), so it stays off; the
blend on validation facts (:mod:`kgmm.training.blend`) sets how much the prior counts.

Only **transferable facts** are fitted: those whose value has another training fact. Why: a
value seen once is, with the prior counted leave-one-out, a value the category has never
shown, so every such fact teaches the prior's weights that the likeliest value is wrong (on
Flipkart a third of the attributes ended with a negative prior weight, and without text the
model ranked below the category rule), and the n-gram classifier can only memorise it. A
held-out fact, or a missing value ``kgmm complete`` fills in, is always a value the catalog
has shown elsewhere. Measured on Flipkart (seed 0, stage 0 and the blend): validation Hits@1
0.744 -> 0.767, test 0.744 -> 0.761, at 50% missing text 0.586 -> 0.673; stage 0 takes 40%
less time.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

from ..data.evidence import NAME
from ..data.tokens import CHUNK as TOKEN_CHUNK
from ..model.evidence import ProductEvidence, evidence_of, with_text
from ..modalities import ExtraInputs

FACTS_PER_STEP = 512
CELLS_PER_STEP = FACTS_PER_STEP * 1024
"""A step's facts times candidates: an attribute with over 1,024 values takes fewer facts a
step, so a step's 1-N table stays the same size however many values an attribute has (a
catalog of a million products may have 100k brands)."""
CACHE_BYTES = 1 << 29
"""Parameter-free features kept between passes, at most: the chunks beyond are recomputed on
every pass (the same numbers, more time). Why: they are [facts, candidates, features] floats,
4.0 GiB of the run for 10,000 synthetic products with 2,000 brands, so keeping them all is what made
stage 0's memory grow with the catalog."""
RAW = 5
"""The first features (prior, mentions) are what :func:`with_text` rebuilds the rest from."""


@dataclass
class EvidenceStage:
    """What stage 0 did."""

    steps: int = 0
    seconds: float = 0.0
    facts: int = 0  # fitted: a sample of the offered ones beyond ``train.evidence_facts``
    offered: int = 0  # transferable training facts
    chunks: int = 0  # steps a pass
    kept_chunks: int = 0  # prepared once and kept between passes (the rest recomputed each pass)
    first_loss: float = float("nan")
    last_loss: float = float("nan")


def product_evidence(model, data, rows: list[int] | None = None) -> ProductEvidence:
    """The evidence of ``rows`` (every product by default) as a batch would show it without
    damage (the view's category rule kept), without building the batch or running the model:
    stage 0 and ``kgmm complete``'s noise checks read nothing else."""
    rows = list(range(data.num_products)) if rows is None else list(rows)
    parts = SimpleNamespace(rows=rows, extra=ExtraInputs(), partners=torch.zeros(len(rows), 2, dtype=torch.long),
                            title_swapped=torch.zeros(len(rows), dtype=torch.bool), drop_text=torch.zeros(len(rows), dtype=torch.bool),
                            has_text=torch.tensor([bool(data.titles[p] or data.descriptions[p]) for p in rows], dtype=torch.bool))
    data.evidence.build(parts, data, None)
    view = getattr(data, "view", None)
    hidden = view is not None and (not view.knowledge or view.hide_category)
    category = torch.from_numpy(data.snapshot.product_category[rows].astype(np.int64))
    return evidence_of(parts.extra[NAME], category, read_text=True, read_knowledge=not hidden)


def fact_chunks(facts: torch.Tensor, candidates: list[torch.Tensor], size: int = FACTS_PER_STEP,
                cells: int = CELLS_PER_STEP) -> list[torch.Tensor]:
    """Facts [T, 3] in chunks of at most ``size``, attributes with similar value counts
    together, so a chunk's 1-N candidate matrix is not padded to the widest attribute; a chunk
    of wide attributes holds fewer facts, at most ``cells`` facts x candidates (never under one)."""
    width = torch.tensor([candidates[a].numel() for a in facts[:, 1].tolist()])
    order = torch.argsort(width * (facts[:, 1].max() + 1) + facts[:, 1], stable=True)  # by width, then attribute
    ordered = width[order].tolist()
    chunks, start = [], 0
    while start < len(ordered):
        take = min(size, len(ordered) - start)
        while take > 1 and ordered[start + take - 1] * take > cells:  # sorted: the last is the widest
            take -= 1
        chunks.append(facts[order[start : start + take]])
        start += take
    return chunks


def fact_sample(products: torch.Tensor, limit: int, block: int = TOKEN_CHUNK) -> torch.Tensor:
    """Positions of at most ``limit`` facts, given each fact's product ``products`` [T] (sorted,
    as training facts are); all of them when there are fewer. Beyond: the facts of every ``k``-th block of ``block`` products
    (deterministic, spread over the whole id-sorted catalog), then ``limit`` of those evenly
    spaced if still too many. Why: the evidence terms are a shallow model (a few thousand weights per
    attribute and an n-gram table) that a hundred thousand facts fit as well as ten million, so
    stage 0's time and memory must not grow with the catalog (issue 15); and why blocks: the
    token tables tokenise a chunk of products at a time (:mod:`kgmm.data.tokens`), so a sample
    strided over single facts made the first step tokenise the whole catalog (34 s at 1M)."""
    everything = torch.arange(products.numel())
    if limit <= 0 or products.numel() <= limit:
        return everything
    sample = everything[(products // block) % -(-products.numel() // limit) == 0]
    return sample[torch.arange(limit) * sample.numel() // limit] if sample.numel() > limit else sample  # evenly spaced


def transferable(values: torch.Tensor, train_value: torch.Tensor) -> torch.Tensor:
    """[T] bool: the facts of ``values`` [T] whose value has another training fact
    (``train_value``: every training fact's value, a superset), see the module docstring."""
    if values.numel() == 0:
        return torch.zeros(0, dtype=torch.bool)
    return torch.bincount(train_value)[values] >= 2


@dataclass
class _Prepared:
    """One chunk of facts as a step reads it: its products' evidence, each fact's candidates
    (the fact first), and the parameter-free features (no random draws: the same on every pass)."""

    rows: ProductEvidence
    attribute: torch.Tensor
    values: torch.Tensor
    valid: torch.Tensor
    features: torch.Tensor
    catalog_prior: torch.Tensor | None

    def nbytes(self) -> int:
        tensors = [*self.rows._tensors(), self.attribute, self.values, self.valid, self.features]
        return sum(t.numel() * t.element_size() for t in tensors + ([self.catalog_prior] if self.catalog_prior is not None else []))


@torch.no_grad()  # the prior and the mentions have no parameters
def _prepare(model, data, chunk: torch.Tensor, device: torch.device, category_dropout: bool) -> _Prepared:
    others, mask = data.all_values(chunk)
    values = torch.cat([chunk[:, 2:3], others], 1).to(device)  # [T, 1+W]: the fact, then every other value
    valid = torch.cat([torch.ones(chunk.shape[0], 1, dtype=torch.bool), mask], 1).to(device)
    rows = product_evidence(model, data, chunk[:, 0].tolist()).to(device)
    attribute, exclude = chunk[:, 1].to(device), chunk[:, 2].to(device)
    catalog_prior = (model.evidence.prior(torch.full_like(rows.category, -1), attribute, values, exclude)  # the category unknown
                     if category_dropout else None)  # only the knob reads it
    return _Prepared(rows, attribute, values, valid, model.evidence.features(rows, attribute, values, exclude=exclude), catalog_prior)


def run_evidence_stage(model, data, config, device: torch.device, log=None, on_step=None) -> EvidenceStage:
    """Fit ``model.evidence`` and ``model.value_bias`` on the training facts of ``data``: at most
    ``train.evidence_facts`` of them (:func:`fact_sample`), each chunk prepared when first
    visited and kept while the kept ones fit in :data:`CACHE_BYTES`, so the first step comes
    after one chunk's work, not the whole catalog's. ``on_step(step, steps, loss)``: after each
    step (progress, the start-up clock)."""
    epochs = config.train.evidence_epochs
    if model.evidence is None or data.evidence is None or epochs <= 0 or data.train_value.numel() == 0:
        return EvidenceStage()
    start = time.perf_counter()
    keep = transferable(data.train_value, data.train_value)  # masks and positions: no [T, 3] copy of every fact
    if data.lpm_eligible.numel():
        keep &= data.lpm_eligible
    offered = torch.nonzero(keep).view(-1)
    chosen = offered[fact_sample(data.train_product[offered], config.train.evidence_facts)]
    facts = torch.stack([data.train_product[chosen], data.train_attribute[chosen], data.train_value[chosen]], 1)
    if facts.shape[0] == 0:
        return EvidenceStage()
    chunks = fact_chunks(facts, data.candidates)
    kept: dict[int, _Prepared] = {}
    kept_bytes = 0
    parameters = [*model.evidence.parameters(), model.value_bias]
    optimizer = torch.optim.Adam(parameters, lr=config.train.lr * config.train.evidence_lr_scale)
    generator = torch.Generator().manual_seed(config.train.seed)
    drop, drop_category = config.modality.drop_text, config.train.evidence_category_dropout
    stage, losses = EvidenceStage(), []
    for _ in range(epochs):
        for index in torch.randperm(len(chunks), generator=generator).tolist():
            prepared = kept.get(index)
            if prepared is None:
                prepared = _prepare(model, data, chunks[index], device, drop_category > 0)
                if kept_bytes + prepared.nbytes() <= CACHE_BYTES:
                    kept[index] = prepared
                    kept_bytes += prepared.nbytes()
            rows, features, values = prepared.rows, prepared.features, prepared.values
            if drop > 0 or drop_category > 0:
                raw = features[..., :RAW]
                if drop_category > 0:  # the category withheld: the lexical terms must predict without it
                    hide = (torch.rand(values.shape[0], generator=generator) < drop_category).to(device)
                    raw = torch.cat([torch.where(hide.view(-1, 1), prepared.catalog_prior, raw[..., 0]).unsqueeze(-1), raw[..., 1:]], -1)
                if drop > 0:  # text dropout, as joint training drops it
                    keep = (torch.rand(values.shape[0], generator=generator) >= drop).to(device)
                    rows = dataclasses.replace(rows, text=rows.text & keep)
                features = with_text(raw, rows.text)
            scores = model.evidence.combine(features, rows, prepared.attribute, values) + model.value_bias[values.clamp(min=0)]
            loss = F.cross_entropy(scores.masked_fill(~prepared.valid, float("-inf")),
                                   torch.zeros(values.shape[0], dtype=torch.long, device=device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            stage.steps += 1
            if on_step is not None:
                on_step(stage.steps, epochs * len(chunks), losses[-1])
    stage.seconds = time.perf_counter() - start
    stage.facts, stage.offered, stage.kept_chunks, stage.chunks = facts.shape[0], offered.numel(), len(kept), len(chunks)
    stage.first_loss, stage.last_loss = losses[0], float(np.mean(losses[-len(chunks):]))
    if log is not None:
        log.write({"kind": "evidence", "steps": stage.steps, "facts": stage.facts, "loss_first": round(stage.first_loss, 5),
                   "loss_last": round(stage.last_loss, 5), "seconds": round(stage.seconds, 2)})
    return stage
