"""First-seen-order deduplication of newly sampled nodes.

PyG numbers the nodes of a sampled subgraph as: seeds first (in the order
given), then every node the first time it is reached, hop by hop.  GNN code
relies on this (``out[:batch_size]`` are the seeds, ``num_sampled_nodes``
slices hops), so the vectorised merge below reproduces exactly that order
with one ``torch.unique`` and one small ``argsort`` per hop and node type.
"""

from __future__ import annotations

import torch
from torch import Tensor


def merge_first_seen(existing: Tensor, candidates: Tensor) -> tuple[Tensor, Tensor]:
    """Map candidate keys to local indices, appending unseen keys.

    Args:
        existing: ``[n]`` int64 keys already in the subgraph, in local order.
            May hold duplicates (repeated seeds); a key then maps to its first
            position.
        candidates: ``[m]`` int64 keys reached in this hop, in discovery
            order.

    Returns:
        ``(new_keys, local)``: ``new_keys`` ``[u]`` are the candidate keys not
        in ``existing``, deduplicated, in order of first appearance; ``local``
        ``[m]`` is each candidate's index in ``cat([existing, new_keys])``.
    """
    n = existing.numel()
    if candidates.numel() == 0:
        return candidates.new_zeros(0), candidates.new_zeros(0)
    keys = torch.cat([existing, candidates])  # [n + m]
    uniq, inverse = torch.unique(keys, return_inverse=True)  # [U], [n + m]
    total = keys.numel()
    first = torch.full((uniq.numel(),), total, dtype=torch.long)  # [U]
    first.scatter_reduce_(0, inverse, torch.arange(total), reduce="amin")
    is_new = first >= n  # [U]
    local_of_uniq = first.clone()  # old keys: their first position in `existing`
    new_ids = is_new.nonzero().view(-1)  # [u]
    order = new_ids[torch.argsort(first[new_ids])]  # [u] first-seen order
    local_of_uniq[order] = n + torch.arange(order.numel())
    return uniq[order], local_of_uniq[inverse[n:]]
