"""Hiding a product's own facts from its input, to ask the model about them honestly.

To judge whether a catalog value is plausible the model must not see it: with the
(attribute, value) pair among its input tokens and the product-value edge in its
subgraph, any value looks plausible. :func:`hide_facts` removes chosen (row, value)
facts from a built batch exactly where the training pipeline removes link-prediction
targets: from the pair tokens, and from the sampled subgraph in both directions
(value -> product and product -> value edges of that row's product node).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..data.batch import Batch
from ..model.knowledge import NODE_VALUE

VALUE_TO_PRODUCT, PRODUCT_TO_VALUE = 0, 1  # edge kinds of kgmm.data.subgraph


def hide_facts(batch: Batch, hidden: dict[int, Tensor], num_values: int) -> Batch:
    """Remove facts from ``batch`` in place and return it.

    Args:
        batch: a batch built with ``train=False``; nodes ``0..B-1`` are its products.
        hidden: batch row -> value ids [k] that row's product must not see.
        num_values: the snapshot's value count (for pair keys).
    """
    if not hidden:
        return batch
    keys = torch.cat([row * num_values + values.view(-1) for row, values in hidden.items()])  # [H] row * V + value
    pair_keys = torch.arange(batch.size).view(-1, 1) * num_values + batch.kv_value  # [B, K]
    batch.kv_mask = batch.kv_mask & ~torch.isin(pair_keys, keys)

    src, dst = batch.edge_index
    kind = batch.edge_kind
    product = torch.where(kind == VALUE_TO_PRODUCT, dst, src)
    value = torch.where(kind == VALUE_TO_PRODUCT, src, dst)
    fact_edge = ((kind == VALUE_TO_PRODUCT) | (kind == PRODUCT_TO_VALUE)) & (product < batch.size)
    fact_edge &= batch.node_kind[value] == NODE_VALUE
    drop = fact_edge & torch.isin(product * num_values + batch.node_key[value], keys)
    batch.edge_index = batch.edge_index[:, ~drop]
    batch.edge_kind = kind[~drop]
    batch.edge_attribute = batch.edge_attribute[~drop]
    return batch
