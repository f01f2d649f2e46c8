"""What a model may read: modality views over the batch tables.

The protocol's single-modality and ablated models (``kgmm evaluate``) are the K3M
architecture trained and evaluated with some modalities withheld, so that they differ
from the full model in exactly one respect:

* text or image withheld: the snapshot given to :class:`PretrainData` has no titles and
  descriptions (or no photos), so that branch is the learned "absent" placeholder with
  zero importance, and no time is spent decoding photos the model may not read;
* knowledge withheld: every batch loses its (attribute, value) pair tokens and its
  subgraph (only the seed products remain, without their category), while the
  link-prediction targets stay, because predicting values is the task. The view is a
  batch transform after the ``knowledge`` stage, so nothing built later (the table
  modality) sees what it withholds.

``kgmm complete`` reads products through the full view (:data:`FULL`), with every fact of
the store visible.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
import dataclasses
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import torch

from graph_store import Snapshot

from ..schema import EdgeKind
from .batch import Batch
from .batches import KNOWLEDGE, PretrainData
from .split import EdgeSplit


@dataclass(frozen=True)
class ModalityView:
    """Which modalities a model reads; ``hide_category`` also hides each product's own
    category (the linear probe predicts it, so it must not be an input)."""

    text: bool = True
    image: bool = True
    knowledge: bool = True
    hide_category: bool = False

    def reads(self, modality: str) -> bool:
        return getattr(self, modality)

    def snapshot(self, snapshot: Snapshot) -> Snapshot:
        """The snapshot without the text or photos this view withholds."""
        changes = {}
        if not self.text:
            changes.update(titles=[""] * snapshot.num_products, descriptions=[""] * snapshot.num_products)
        if not self.image:
            changes.update(images=[None] * snapshot.num_products)
        return dataclasses.replace(snapshot, **changes) if changes else snapshot

    stage = KNOWLEDGE

    def transform(self, parts, data, generator) -> None:
        """Batch transform: withhold knowledge (and the own category) once it is built."""
        self.apply(parts)

    def apply(self, batch: Batch | SimpleNamespace) -> Batch | SimpleNamespace:
        """Withhold knowledge (and the own category) from a batch's fields."""
        if self.knowledge and not self.hide_category:
            return batch
        size = batch.kv_mask.shape[0]
        if not self.knowledge:
            batch.kv_mask = torch.zeros_like(batch.kv_mask)
            batch.node_kind = batch.node_kind[:size]
            batch.node_key = torch.full_like(batch.node_key[:size], -1)
            batch.node_attribute = batch.node_attribute[:size]
            batch.edge_index = batch.edge_index[:, :0]
            batch.edge_kind = batch.edge_kind[:0]
            batch.edge_attribute = batch.edge_attribute[:0]
            return batch
        batch.node_key = batch.node_key.clone()
        batch.node_key[:size] = -1  # seeds 0..B-1 are the batch's products
        src, dst = batch.edge_index
        to_product, to_category = batch.edge_kind == EdgeKind.CATEGORY_TO_PRODUCT, batch.edge_kind == EdgeKind.PRODUCT_TO_CATEGORY
        category_edge = to_product | to_category
        touches_seed = (to_product & (dst < size)) | (to_category & (src < size))
        keep = ~(category_edge & touches_seed)
        batch.edge_index = batch.edge_index[:, keep]
        batch.edge_kind = batch.edge_kind[keep]
        batch.edge_attribute = batch.edge_attribute[keep]
        return batch


FULL = ModalityView()


class ViewData(PretrainData):
    """:class:`PretrainData` whose batches follow a :class:`ModalityView`.

    Args:
        snapshot: the training graph (held-out triples already removed).
        tokenizer, config, num_patches: as for PretrainData.
        view: what the model may read.
    """

    def __init__(self, snapshot: Snapshot, tokenizer, config, num_patches: int, view: ModalityView = FULL) -> None:
        everything = EdgeSplit(np.ones(snapshot.num_edges, dtype=bool), np.zeros((0, 3), dtype=np.int64))
        super().__init__(view.snapshot(snapshot), everything, tokenizer, config, num_patches)
        self.view = view
        self.transforms = (view,)

    def with_view(self, view: ModalityView) -> ViewData:
        """The same tables read through another view (knowledge and category only)."""
        if (view.text, view.image) != (self.view.text, self.view.image):
            raise ValueError("with_view changes knowledge and category visibility only")
        other = copy.copy(self)
        other.view = view
        other.transforms = (view,)
        return other


def without_text(data: PretrainData) -> PretrainData:
    """A shallow copy of ``data`` in which no product has a title or a description (what a
    product without text looks like to every reader of the token tables)."""
    out = copy.copy(data)
    out.titles = out.descriptions = NoTexts(data.num_products)
    return out


class NoTexts(Sequence):
    """A token table in which every text is empty (``[]``), without a list per product."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [[] for _ in range(*index.indices(self.count))]
        if not -self.count <= index < self.count:
            raise IndexError(f"text {index} out of range ({self.count} products)")
        return []
