"""Product indices -> one multimodal :class:`~kgmm.data.batch.Batch`.

:class:`PretrainData` derives, once per run, every table a batch needs from the snapshot:
token ids of titles and descriptions, the photo store, the training facts per product,
the negative sampler and the subgraph sampler. :meth:`PretrainData.build` then makes a
batch, drawing every random choice from the generator it is given:

1. modality dropout (text, image, knowledge) and noise (title or photo swapped with
   another product's), never dropping the last modality a product has;
2. text: "[CLS] title [SEP] description [SEP]", title first when truncating, MLM masking;
3. image: decoded, augmented, MOM patches chosen;
4. link prediction: up to ``lpm_positives`` facts per product held out of the input
   (pair tokens *and* subgraph), with same-attribute negatives that are never known facts;
5. knowledge: the remaining (attribute, value) pairs and the sampled subgraph;
6. extra modalities (``model.extra_modalities``, :mod:`kgmm.data.modal_inputs`): the table
   serialised from those remaining pairs, video frames, audio spectrograms.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import Tensor

from graph_store import Snapshot

from ..config import Config
from ..model.knowledge import BEHAVIOUR_EDGE_KIND
from ..objectives import IGNORE, mask_patches, mask_tokens
from ..sampling import AttributeNegativeSampler
from ..text import SpecialIds
from .batch import Batch, ExtraInputs
from .hetero import snapshot_to_heterodata
from .images import ImageStore
from .modal_inputs import input_builders
from .split import EdgeSplit, training_snapshot
from .subgraph import SubgraphSampler


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

    def __init__(self, snapshot: Snapshot, split: EdgeSplit, tokenizer, config: Config, num_patches: int) -> None:
        self.snapshot, self.split, self.config = snapshot, split, config
        self.num_products = snapshot.num_products
        self.num_patches = num_patches
        self.special = SpecialIds.of(tokenizer)
        self.special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
        limit = config.text.max_length
        encode = lambda texts: tokenizer(texts, add_special_tokens=False, truncation=True, max_length=limit)["input_ids"]  # noqa: E731
        self.titles: list[list[int]] = encode(snapshot.titles) if snapshot.num_products else []
        self.descriptions: list[list[int]] = encode(snapshot.descriptions) if snapshot.num_products else []
        self.images = ImageStore(snapshot.images, config.image.size)
        self.with_title = torch.tensor([i for i, t in enumerate(self.titles) if t], dtype=torch.long)
        self.with_image = torch.from_numpy(np.flatnonzero(snapshot.has_image()))

        train = training_snapshot(snapshot, split.train_mask)
        self.train_product = torch.from_numpy(train.edge_product)
        self.train_attribute = torch.from_numpy(train.edge_attribute)
        self.train_value = torch.from_numpy(train.edge_value)
        self.train_ptr = torch.from_numpy(np.searchsorted(train.edge_product, np.arange(self.num_products + 1)))  # [P + 1]
        value_attribute = torch.from_numpy(snapshot.value_attribute.astype(np.int64))
        self.value_attribute = value_attribute
        self.candidates = [torch.from_numpy(np.flatnonzero(snapshot.value_attribute == a)) for a in range(len(snapshot.attributes))]
        known = torch.from_numpy(np.stack([snapshot.edge_product, snapshot.edge_attribute, snapshot.edge_value], 1).astype(np.int64))
        self.known = known  # [E, 3] every fact, validation included: never a negative
        self.negatives = AttributeNegativeSampler(self.candidates, known) if snapshot.num_edges else None
        triples = torch.stack([self.train_product, self.train_attribute, self.train_value], 1)
        self.lpm_eligible = (
            self.negatives.num_valid(triples) > 0 if self.negatives is not None and triples.numel() else torch.zeros(0, dtype=torch.bool)
        )
        self.extra_inputs = input_builders(snapshot, tokenizer, config)  # model.extra_modalities, usually none
        self.subgraphs = SubgraphSampler(
            snapshot_to_heterodata(train), config.knowledge.fanout, value_attribute, torch.from_numpy(snapshot.product_category.astype(np.int64)),
            behaviour_edge_kind=BEHAVIOUR_EDGE_KIND if config.knowledge.behaviour else None,
        )

    # -- building ------------------------------------------------------------------------

    def build(self, indices: list[int] | Tensor, generator: torch.Generator, train: bool = True) -> Batch:
        """The batch of products ``indices``; ``train=False``: no masking, dropout, noise or hold-out."""
        products = torch.as_tensor(indices, dtype=torch.long).view(-1)
        rows = products.tolist()
        size = len(rows)
        cfg = self.config
        has_text = torch.tensor([bool(self.titles[p] or self.descriptions[p]) for p in rows], dtype=torch.bool)
        has_image = torch.tensor([self.images.has_image(p) for p in rows], dtype=torch.bool)
        has_facts = (self.train_ptr[products + 1] > self.train_ptr[products]) if size else has_text
        drop_text, drop_image, drop_facts, swap_title, swap_image, partners = self._robustness(
            rows, has_text, has_image, has_facts, generator, train
        )

        # Link prediction: facts held out of the input.
        held_out, lpm = self._hold_out(rows, generator) if train and cfg.objectives.lpm > 0 else ({}, None)
        # Knowledge: the remaining pairs, capped.
        kv_attribute, kv_value, kv_mask, hidden = self._pairs(rows, held_out, drop_facts, generator, train)
        subgraph = self.subgraphs.sample(products, hidden, generator)

        text = self._text(rows, has_text & ~drop_text, swap_title, partners[:, 0], generator, train)
        sources = [
            None if not present or dropped else (int(partners[i, 1]) if swapped else rows[i])
            for i, (present, dropped, swapped) in enumerate(zip(has_image.tolist(), drop_image.tolist(), swap_image.tolist()))
        ]
        pixels, image_present = self._pixels(sources, generator, train and cfg.image.augment)
        if train and cfg.objectives.mom > 0:
            patch_mask = mask_patches(image_present, self.num_patches, cfg.objectives.mom_probability, generator)
        else:
            patch_mask = torch.zeros(size, self.num_patches, dtype=torch.bool)

        empty = torch.zeros(0, dtype=torch.long)
        k = cfg.objectives.lpm_negatives
        return Batch(
            products=products,
            **text,
            pixels=pixels,
            image_present=image_present,
            patch_mask=patch_mask,
            kv_attribute=kv_attribute,
            kv_value=kv_value,
            kv_mask=kv_mask,
            node_kind=subgraph.node_kind,
            node_key=subgraph.node_key,
            node_attribute=subgraph.node_attribute,
            edge_index=subgraph.edge_index,
            edge_kind=subgraph.edge_kind,
            edge_attribute=subgraph.edge_attribute,
            lpm_row=lpm[0] if lpm else empty,
            lpm_attribute=lpm[1] if lpm else empty,
            lpm_value=lpm[2] if lpm else empty,
            lpm_negatives=lpm[3] if lpm else torch.zeros(0, k, dtype=torch.long),
            lpm_negative_mask=lpm[4] if lpm else torch.zeros(0, k, dtype=torch.bool),
            title_swapped=swap_title,
            image_swapped=swap_image & (image_present),
            extra=ExtraInputs({name: builder.build(rows, kv_value, kv_mask) for name, builder in self.extra_inputs.items()}),
        )

    def _robustness(self, rows, has_text, has_image, has_facts, generator, train):
        """Per-row dropout and swap decisions, and swap partners [B, 2] (title, image)."""
        size = len(rows)
        none = torch.zeros(size, dtype=torch.bool)
        partners = torch.zeros(size, 2, dtype=torch.long)
        if not train or size == 0:
            return none, none, none, none, none, partners
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
        swap_title = (u[:, 3] < m.swap_title) & has_text & ~drop_text & (self.with_title.numel() > 1)
        swap_image = (u[:, 4] < m.swap_image) & has_image & ~drop_image & (self.with_image.numel() > 1)
        for column, pool in ((0, self.with_title), (1, self.with_image)):
            if pool.numel() > 1:
                pick = torch.randint(pool.numel(), (size,), generator=generator)
                chosen = pool[pick]
                same = chosen == torch.as_tensor(rows)
                chosen[same] = pool[(pick[same] + 1) % pool.numel()]  # another product's, never its own
                partners[:, column] = chosen
        return drop_text, drop_image, drop_facts, swap_title, swap_image, partners

    def _hold_out(self, rows: list[int], generator: torch.Generator):
        """Choose LPM facts per row; returns ({row: edge positions}, LPM tensors or None)."""
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
        negatives = self.negatives.sample(positives, self.config.objectives.lpm_negatives, generator=generator)
        return held, (lpm_row, positives[:, 1], positives[:, 2], negatives.value, negatives.mask)

    def _pairs(self, rows, held_out, drop_facts, generator, train):
        """Pair tokens [B, K] (+ mask) and the hidden (product, value) keys for the subgraph."""
        limit = self.config.knowledge.max_pairs
        chosen, hidden = [], []
        for i, p in enumerate(rows):
            edges = torch.arange(int(self.train_ptr[p]), int(self.train_ptr[p + 1]))
            if bool(drop_facts[i]):
                hidden.append(edges)
                edges = edges[:0]
            elif i in held_out:
                hidden.append(held_out[i])
                edges = edges[~torch.isin(edges, held_out[i])]
            if edges.numel() > limit:
                keep = torch.randperm(edges.numel(), generator=generator)[:limit] if train else torch.arange(limit)
                edges = edges[keep.sort().values]
            chosen.append(edges)
        width = max([1] + [e.numel() for e in chosen])
        kv_attribute = torch.zeros(len(rows), width, dtype=torch.long)
        kv_value = torch.zeros(len(rows), width, dtype=torch.long)
        kv_mask = torch.zeros(len(rows), width, dtype=torch.bool)
        for i, edges in enumerate(chosen):
            n = edges.numel()
            kv_attribute[i, :n] = self.train_attribute[edges]
            kv_value[i, :n] = self.train_value[edges]
            kv_mask[i, :n] = True
        hidden_edges = torch.cat(hidden) if hidden else torch.zeros(0, dtype=torch.long)
        hidden_keys = self.train_product[hidden_edges] * self.subgraphs.num_values + self.train_value[hidden_edges]
        return kv_attribute, kv_value, kv_mask, hidden_keys

    def _text(self, rows, present, swap_title, partners, generator, train) -> dict[str, Tensor]:
        """Token tensors of "[CLS] title [SEP] description [SEP]" with MLM masking."""
        s, cfg = self.special, self.config
        budget = cfg.text.max_length - 3
        sequences, types = [], []
        for i, p in enumerate(rows):
            if not bool(present[i]):
                sequences.append([s.cls, s.sep])
                types.append([0, 0])
                continue
            title = self.titles[int(partners[i])] if bool(swap_title[i]) else self.titles[p]
            title = title[:budget]
            description = self.descriptions[p][: budget - len(title)]
            sequences.append([s.cls, *title, s.sep, *description, s.sep])
            types.append([0] * (len(title) + 2) + [1] * (len(description) + 1))
        length = max(len(q) for q in sequences) if sequences else 2
        input_ids = torch.full((len(rows), length), s.pad, dtype=torch.long)
        token_type_ids = torch.zeros(len(rows), length, dtype=torch.long)
        attention_mask = torch.zeros(len(rows), length, dtype=torch.long)
        for i, (q, t) in enumerate(zip(sequences, types)):
            input_ids[i, : len(q)] = torch.tensor(q)
            token_type_ids[i, : len(t)] = torch.tensor(t)
            attention_mask[i, : len(q)] = 1
        labels = torch.full_like(input_ids, IGNORE)
        if train and cfg.objectives.mlm > 0:
            maskable = attention_mask.bool() & ~torch.isin(input_ids, self.special_ids) & present.unsqueeze(1)
            input_ids, labels = mask_tokens(
                input_ids, maskable, cfg.objectives.mlm_probability, s.mask, s.vocab_size, self.special_ids, generator
            )
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
            "text_present": present.clone(),
            "mlm_labels": labels,
        }

    def _pixels(self, sources: list[int | None], generator: torch.Generator, augment: bool) -> tuple[Tensor, Tensor]:
        return self.images.batch(sources, generator, augment)
