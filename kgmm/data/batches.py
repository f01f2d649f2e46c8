"""Product indices -> one multimodal :class:`~kgmm.data.batch.Batch`.

:class:`PretrainData` derives, once per run, every table a batch needs from the snapshot:
token ids of titles and descriptions, the photo store, the training facts per product,
the negative sampler and the subgraph sampler. :meth:`PretrainData.build` then makes a
batch in stages, drawing every random choice from the generator it is given:

1. ``robustness``: modality dropout (text, image, knowledge) and noise (title or photo
   swapped with another product's), never dropping the last modality a product has;
2. ``knowledge``: up to ``lpm_positives`` facts per product held out of the input for link
   prediction (pair tokens *and* subgraph), with same-attribute negatives that are never
   known facts; the remaining (attribute, value) pairs and the sampled subgraph;
3. ``text``: "[CLS] title [SEP] description [SEP]", title first when truncating;
4. ``image``: decoded and augmented photos;
5. ``extras``: the extra modalities (``model.extra_modalities``, :mod:`kgmm.modalities`):
   the table serialised from the visible pairs, video frames, audio spectrograms.

Text and image inputs are built by their modalities too (:mod:`kgmm.modalities.text`,
:mod:`kgmm.modalities.image`), at their own stages.

After each stage, the transforms of that stage run on the named fields built so far
(:class:`BatchTransform`): the objectives' masking (MLM after ``text``, MOM after
``image``), a modality view withholding knowledge, facts hidden by ``kgmm complete``. The
order of the stages is the order of the random draws, so it is part of reproducibility.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from types import SimpleNamespace
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from graph_store import Snapshot

from ..config import Config
from ..modalities import MODALITIES, ExtraInputs, input_builders
from ..modalities.photos import ImageStore
from ..objectives import build_objectives
from ..sampling import AttributeNegativeSampler
from ..schema import EdgeKind, pair_key
from ..text import SpecialIds
from .batch import Batch
from .evidence import DESCRIPTION_TOKENS, EvidenceInput
from .hetero import snapshot_to_heterodata
from .split import EdgeSplit, training_snapshot
from .tokens import TokenTable
from .subgraph import SubgraphSampler


ROBUSTNESS, KNOWLEDGE, TEXT, IMAGE, EXTRAS = "robustness", "knowledge", "text", "image", "extras"
STAGES = (ROBUSTNESS, KNOWLEDGE, TEXT, IMAGE, EXTRAS)
"""The stages of building a batch, in order (a transform names the one it follows)."""


class BatchTransform(Protocol):
    """Changes a batch's named fields in place after one stage of :meth:`PretrainData.build`."""

    stage: str | None

    def transform(self, parts: SimpleNamespace, data: PretrainData, generator: torch.Generator) -> None: ...


@dataclass
class LinkTargets:
    """Facts held out of a batch's input for link prediction (``lpm_*`` of :class:`Batch`)."""

    row: Tensor  # [T] batch row of the fact's product
    attribute: Tensor  # [T]
    value: Tensor  # [T]
    negatives: Tensor  # [T, k] same-attribute values (-1 where none)
    negative_mask: Tensor  # [T, k] bool


def encode(tokenizer, limit: int, texts: list[str]) -> list[list[int]]:
    """Token ids of ``texts`` without special tokens, each cut at ``limit`` (a module function, so
    a :class:`TokenTable` pickles into spawned DataLoader workers)."""
    return tokenizer(texts, add_special_tokens=False, truncation=True, max_length=limit)["input_ids"]


def batch_generator(seed: int, *keys: int) -> torch.Generator:
    """A generator seeded by ``(seed, *keys)``: a batch is a function of its position."""
    digest = hashlib.blake2b(repr((seed, *keys)).encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))


class PretrainData:
    """Tables for building batches from one snapshot.

    Args:
        snapshot: the whole graph (ids, modalities, every fact).
        split: which facts train and which are held out for validation.
        tokenizer: a BERT-family fast tokenizer.
        config: the run's config.
        num_patches: patches per image (from the model's image encoder).
    """

    transforms: tuple[BatchTransform, ...] = ()
    """Transforms this builder applies to every batch, training or not (e.g. a modality view)."""

    def __init__(self, snapshot: Snapshot, split: EdgeSplit, tokenizer, config: Config, num_patches: int) -> None:
        self.snapshot, self.split, self.config = snapshot, split, config
        self.objective_transforms = tuple(o for o in build_objectives(config) if o.stage is not None)  # training only
        self.num_products = snapshot.num_products
        self.num_patches = num_patches
        self.special = SpecialIds.of(tokenizer)
        self.special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
        limit = config.text.max_length
        # the evidence terms read more of the description than the transformer (which truncates to text.max_length)
        described = max(limit, DESCRIPTION_TOKENS) if config.model.evidence else limit
        # tokenised a chunk at a time when a batch first reads it: no start-up pass over the catalog
        self.titles: TokenTable = TokenTable(snapshot.titles, functools.partial(encode, tokenizer, limit))
        self.descriptions: TokenTable = TokenTable(snapshot.descriptions, functools.partial(encode, tokenizer, described))
        self.evidence = EvidenceInput(tokenizer) if config.model.evidence else None
        self.images = ImageStore(snapshot.images, config.image.size)
        # swap partners: products whose title has a token (a title of only spaces has none), read without tokenising
        self.with_title = torch.from_numpy(np.flatnonzero(np.fromiter((bool(t and not t.isspace()) for t in snapshot.titles),
                                                                      dtype=bool, count=snapshot.num_products)))
        self.with_image = torch.from_numpy(np.flatnonzero(snapshot.has_image()))

        train = training_snapshot(snapshot, split.train_mask)
        self.train_product = torch.from_numpy(train.edge_product)
        self.train_attribute = torch.from_numpy(train.edge_attribute)
        self.train_value = torch.from_numpy(train.edge_value)
        self.train_ptr = torch.from_numpy(train.edge_ptr)  # [P + 1]
        value_attribute = torch.from_numpy(snapshot.value_attribute.astype(np.int64))
        self.value_attribute = value_attribute
        self.candidates = [torch.from_numpy(np.flatnonzero(snapshot.value_attribute == a)) for a in range(len(snapshot.attributes))]
        # every fact, validation included (never a negative): the snapshot's own columns, not an [E, 3] copy
        self.known_attribute = torch.from_numpy(np.asarray(snapshot.edge_attribute, dtype=np.int64))  # [E]
        self.known_value = torch.from_numpy(np.asarray(snapshot.edge_value, dtype=np.int64))  # [E]
        self.known_ptr = torch.from_numpy(snapshot.edge_ptr)  # [P + 1]
        known = (torch.from_numpy(np.asarray(snapshot.edge_product, dtype=np.int64)), self.known_attribute, self.known_value)
        self.negatives = AttributeNegativeSampler(self.candidates, known) if snapshot.num_edges else None
        self.lpm_eligible = torch.zeros(0, dtype=torch.bool)
        if self.negatives is not None and self.train_product.numel():  # a million facts at a time: no [E, 3] copy of every fact
            step = 1 << 20
            self.lpm_eligible = torch.cat([
                self.negatives.has_valid(torch.stack([self.train_product[i : i + step], self.train_attribute[i : i + step],
                                                      self.train_value[i : i + step]], 1))
                for i in range(0, self.train_product.numel(), step)])
        self.inputs = input_builders(snapshot, tokenizer, config)  # text, image and model.extra_modalities
        self.modalities = {name: MODALITIES.get(name) for name in self.inputs}
        self.subgraphs = SubgraphSampler(
            snapshot_to_heterodata(train, with_hash=False), config.knowledge.fanout, value_attribute, torch.from_numpy(snapshot.product_category.astype(np.int64)),
            behaviour_edge_kind=EdgeKind.BEHAVIOUR if config.knowledge.behaviour else None,
        )

    # -- building ------------------------------------------------------------------------

    def build(self, indices: list[int] | Tensor, generator: torch.Generator, train: bool = True,
              transforms: Sequence[BatchTransform] = ()) -> Batch:
        """The batch of products ``indices``; ``train=False``: no masking, dropout, noise or hold-out.

        The batch is built in stages (:data:`STAGES`); after each stage the transforms of that
        stage run on the named fields built so far: the active objectives' (masking, while
        training), this builder's own (:attr:`transforms`, e.g. a modality view) and the
        call's ``transforms`` (e.g. facts hidden to ask the model about them).
        """
        products = torch.as_tensor(indices, dtype=torch.long).view(-1)
        parts = SimpleNamespace(products=products, rows=products.tolist(), train=train)
        steps = [*(self.objective_transforms if train else ()), *self.transforms, *transforms]
        for stage, make in ((ROBUSTNESS, self._robustness), (KNOWLEDGE, self._knowledge), (TEXT, self._modality_stage(TEXT)),
                            (IMAGE, self._modality_stage(IMAGE)), (EXTRAS, self._modality_stage(EXTRAS))):
            make(parts, generator)
            for step in steps:
                if step.stage == stage:
                    step.transform(parts, self, generator)
        return Batch(**{f.name: getattr(parts, f.name) for f in fields(Batch)})

    def _robustness(self, parts: SimpleNamespace, generator: torch.Generator) -> None:
        """Per-row dropout and swap decisions (``drop_*``, ``title_swapped``, ``image_swapped``)
        and swap partners (``partners`` [B, 2]: title, image)."""
        rows, size = parts.rows, len(parts.rows)
        parts.has_text = torch.tensor([bool(self.titles[p] or self.descriptions[p]) for p in rows], dtype=torch.bool)
        parts.has_image = torch.tensor([self.images.has_image(p) for p in rows], dtype=torch.bool)
        has_text, has_image = parts.has_text, parts.has_image
        has_facts = (self.train_ptr[parts.products + 1] > self.train_ptr[parts.products]) if size else has_text
        none = torch.zeros(size, dtype=torch.bool)
        parts.partners = torch.zeros(size, 2, dtype=torch.long)
        parts.drop_text = parts.drop_image = parts.drop_facts = parts.title_swapped = parts.image_swapped = none
        if not parts.train or size == 0:
            return
        m = self.config.modality
        u = torch.rand(size, 6, generator=generator)
        drop_text = (u[:, 0] < m.drop_text) & has_text
        drop_image = (u[:, 1] < m.drop_image) & has_image
        drop_facts = (u[:, 2] < m.drop_knowledge) & has_facts
        lost_all = (has_text | has_image | has_facts) & ~((has_text & ~drop_text) | (has_image & ~drop_image) | (has_facts & ~drop_facts))
        # never leave a product with nothing: give back the first modality it had
        drop_text &= ~(lost_all & has_text)
        drop_image &= ~(lost_all & ~has_text & has_image)
        drop_facts &= ~(lost_all & ~has_text & ~has_image)
        parts.drop_text, parts.drop_image, parts.drop_facts = drop_text, drop_image, drop_facts
        parts.title_swapped = (u[:, 3] < m.swap_title) & has_text & ~drop_text & (self.with_title.numel() > 1)
        parts.image_swapped = (u[:, 4] < m.swap_image) & has_image & ~drop_image & (self.with_image.numel() > 1)
        for column, pool in ((0, self.with_title), (1, self.with_image)):
            if pool.numel() > 1:
                pick = torch.randint(pool.numel(), (size,), generator=generator)
                chosen = pool[pick]
                same = chosen == torch.as_tensor(rows)
                chosen[same] = pool[(pick[same] + 1) % pool.numel()]  # another product's, never its own
                parts.partners[:, column] = chosen

    def _knowledge(self, parts: SimpleNamespace, generator: torch.Generator) -> None:
        """Link-prediction facts held out of the input (``lpm_*``), the remaining pairs
        (``kv_*``) and the sampled subgraph without any held-out or dropped fact."""
        k = self.config.objectives.lpm_negatives
        held_out, lpm = self._hold_out(parts.rows, generator) if parts.train and self.config.objectives.lpm > 0 else ({}, None)
        empty = torch.zeros(0, dtype=torch.long)
        parts.lpm_row = lpm.row if lpm else empty
        parts.lpm_attribute = lpm.attribute if lpm else empty
        parts.lpm_value = lpm.value if lpm else empty
        parts.lpm_negatives = lpm.negatives if lpm else torch.zeros(0, k, dtype=torch.long)
        parts.lpm_negative_mask = lpm.negative_mask if lpm else torch.zeros(0, k, dtype=torch.bool)
        hidden = self._pairs(parts, held_out, generator)
        subgraph = self.subgraphs.sample(parts.products, hidden, generator)
        for name in ("node_kind", "node_key", "node_attribute", "edge_index", "edge_kind", "edge_attribute"):
            setattr(parts, name, getattr(subgraph, name))

    def _hold_out(self, rows: list[int], generator: torch.Generator) -> tuple[dict[int, Tensor], LinkTargets | None]:
        """Choose LPM facts per row: ({row: training-edge positions}, their targets or None)."""
        if self.negatives is None:
            return {}, None
        held: dict[int, Tensor] = {}
        for i, p in enumerate(rows):
            start, end = int(self.train_ptr[p]), int(self.train_ptr[p + 1])
            eligible = torch.arange(start, end)[self.lpm_eligible[start:end]]
            if eligible.numel():
                pick = torch.randperm(eligible.numel(), generator=generator)[: self.config.objectives.lpm_positives]
                held[i] = eligible[pick.sort().values]
        if not held:
            return held, None
        lpm_row = torch.cat([torch.full((e.numel(),), i, dtype=torch.long) for i, e in held.items()])
        edges = torch.cat(list(held.values()))
        positives = torch.stack([self.train_product[edges], self.train_attribute[edges], self.train_value[edges]], 1)  # [T, 3]
        if self.config.objectives.lpm_all_values:
            values, mask = self.all_values(positives)
            return held, LinkTargets(lpm_row, positives[:, 1], positives[:, 2], values, mask)
        negatives = self.negatives.sample(positives, self.config.objectives.lpm_negatives, generator=generator)
        return held, LinkTargets(lpm_row, positives[:, 1], positives[:, 2], negatives.value, negatives.mask)

    def all_values(self, positives: Tensor) -> tuple[Tensor, Tensor]:
        """1-N candidates (``objectives.lpm_all_values``): for each fact [T, 3], every value of
        its attribute except the product's known-true ones (the fact itself, its other training,
        validation and test values), as ``(values [T, W] (-1 pads), mask [T, W])``.

        Why: 16 sampled negatives rarely include the value that competes with the truth
        (another colour of the same category); the full softmax over the attribute's values is
        what ranking evaluates, so training on it matches the task. No random draws.
        """
        ptr = self.known_ptr  # a product's known facts are one slice (snapshot edges sort by product)
        rows = []
        for p, a, v in positives.tolist():
            values = self.candidates[a]
            start, end = int(ptr[p]), int(ptr[p + 1])
            taken = self.known_value[start:end][self.known_attribute[start:end] == a]
            rows.append(values[~torch.isin(values, torch.cat([taken, torch.tensor([v])]))])
        width = max([1] + [r.numel() for r in rows])
        out = torch.full((len(rows), width), -1, dtype=torch.long)
        for t, r in enumerate(rows):
            out[t, : r.numel()] = r
        return out, out >= 0

    def _pairs(self, parts: SimpleNamespace, held_out: dict[int, Tensor], generator: torch.Generator) -> Tensor:
        """Pair tokens ``kv_*`` [B, K]; returns the hidden (product, value) keys for the subgraph."""
        limit = self.config.knowledge.max_pairs
        chosen, hidden = [], []
        for i, p in enumerate(parts.rows):
            edges = torch.arange(int(self.train_ptr[p]), int(self.train_ptr[p + 1]))
            if bool(parts.drop_facts[i]):
                hidden.append(edges)
                edges = edges[:0]
            elif i in held_out:
                hidden.append(held_out[i])
                edges = edges[~torch.isin(edges, held_out[i])]
            if edges.numel() > limit:
                keep = torch.randperm(edges.numel(), generator=generator)[:limit] if parts.train else torch.arange(limit)
                edges = edges[keep.sort().values]
            chosen.append(edges)
        width = max([1] + [e.numel() for e in chosen])
        parts.kv_attribute = torch.zeros(len(parts.rows), width, dtype=torch.long)
        parts.kv_value = torch.zeros(len(parts.rows), width, dtype=torch.long)
        parts.kv_mask = torch.zeros(len(parts.rows), width, dtype=torch.bool)
        for i, edges in enumerate(chosen):
            n = edges.numel()
            parts.kv_attribute[i, :n] = self.train_attribute[edges]
            parts.kv_value[i, :n] = self.train_value[edges]
            parts.kv_mask[i, :n] = True
        hidden_edges = torch.cat(hidden) if hidden else torch.zeros(0, dtype=torch.long)
        return pair_key(self.train_product[hidden_edges], self.train_value[hidden_edges], self.subgraphs.num_values)

    def _modality_stage(self, stage: str):
        """The step of ``stage``: every configured modality whose input belongs to it builds it."""
        names = [name for name, modality in self.modalities.items() if modality.stage == stage]

        def build(parts: SimpleNamespace, generator: torch.Generator) -> None:
            if stage == EXTRAS:
                parts.extra = ExtraInputs()
            for name in names:
                self.inputs[name].build(parts, self, generator)
            if stage == EXTRAS and self.evidence is not None:  # no random draws: the other inputs' are unchanged
                self.evidence.build(parts, self, generator)

        return build
