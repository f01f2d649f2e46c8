"""Hiding a product's own facts from its input, to ask the model about them honestly.

To judge whether a catalog value is plausible the model must not see it: with the
(attribute, value) pair among its input tokens and the product-value edge in its
subgraph, any value looks plausible. :func:`hide_facts` removes chosen (row, value)
facts from a batch exactly where the training pipeline removes link-prediction
targets: from the pair tokens, and from the sampled subgraph in both directions
(value -> product and product -> value edges of that row's product node).
:class:`HiddenFacts` does it as a batch transform right after the ``knowledge`` stage,
so inputs built later from the pairs (the table modality) do not see them either.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import Tensor

from ..data.batch import Batch
from ..data.batches import KNOWLEDGE
from ..schema import EdgeKind, NodeKind, pair_key


class HiddenFacts:
    """Batch transform: ``hidden`` (batch row -> value ids [k]) withheld from the input."""

    stage = KNOWLEDGE

    def __init__(self, hidden: dict[int, Tensor], num_values: int) -> None:
        self.hidden, self.num_values = hidden, num_values

    def transform(self, parts, data, generator) -> None:
        hide_facts(parts, self.hidden, self.num_values)


def hide_facts(batch: Batch | SimpleNamespace, hidden: dict[int, Tensor], num_values: int) -> Batch:
    """Remove facts from ``batch`` in place and return it.

    Args:
        batch: a batch built with ``train=False``; nodes ``0..B-1`` are its products.
        hidden: batch row -> value ids [k] that row's product must not see.
        num_values: the snapshot's value count (for pair keys).
    """
    if not hidden:
        return batch
    keys = torch.cat([pair_key(row, values.view(-1), num_values) for row, values in hidden.items()])  # [H] (row, value) keys
    size = batch.kv_mask.shape[0]
    pair_keys = pair_key(torch.arange(size).view(-1, 1), batch.kv_value, num_values)  # [B, K]
    batch.kv_mask = batch.kv_mask & ~torch.isin(pair_keys, keys)

    src, dst = batch.edge_index
    kind = batch.edge_kind
    inward = kind == EdgeKind.VALUE_TO_PRODUCT
    product = torch.where(inward, dst, src)
    value = torch.where(inward, src, dst)
    fact_edge = (inward | (kind == EdgeKind.PRODUCT_TO_VALUE)) & (product < size)
    fact_edge &= batch.node_kind[value] == NodeKind.VALUE
    drop = fact_edge & torch.isin(pair_key(product, batch.node_key[value], num_values), keys)
    batch.edge_index = batch.edge_index[:, ~drop]
    batch.edge_kind = kind[~drop]
    batch.edge_attribute = batch.edge_attribute[~drop]
    return batch
