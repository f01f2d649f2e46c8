"""First-seen-order deduplication of newly sampled nodes.

PyG numbers the nodes of a sampled subgraph as: seeds first (in the order
given), then every node the first time it is reached, hop by hop.  GNN code
relies on this (``out[:batch_size]`` are the seeds, ``num_sampled_nodes``
slices hops), so both node sets below reproduce exactly that order.

* :class:`TableNodeSet` (the default, ``disjoint=False``) keeps two dense
  scratch tables per node type - global id -> local id, and global id ->
  first position in the current candidate list - so a hop costs a handful of
  O(candidates) gathers/scatters and no sort.  The tables are allocated once
  per thread and cleaned after every batch (only touched entries).
* :class:`KeyNodeSet` (``disjoint=True``) dedups ``batch * N + node`` keys,
  which do not fit a dense table, with one ``torch.unique`` per hop.
"""

from __future__ import annotations

import torch
from torch import Tensor

_EMPTY = torch.zeros(0, dtype=torch.long)
_INT64_MAX = torch.iinfo(torch.long).max


def merge_first_seen(existing: Tensor, candidates: Tensor) -> tuple[Tensor, Tensor]:
    """Map candidate keys to local indices, appending unseen keys.

    Sort-based and stateless (used for disjoint keys and as a reference).

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
        return _EMPTY, _EMPTY
    keys = torch.cat([existing, candidates])  # [n + m]
    uniq, inverse = torch.unique(keys, return_inverse=True)  # [U], [n + m]
    total = keys.numel()
    first = torch.full((uniq.numel(),), total, dtype=torch.long)  # [U]
    first.scatter_reduce_(0, inverse, torch.arange(total), reduce="amin")
    local_of_uniq = first.clone()  # old keys: their first position in `existing`
    new_ids = (first >= n).nonzero().view(-1)  # [u]
    order = new_ids.index_select(0, torch.argsort(first.index_select(0, new_ids)))  # [u]
    local_of_uniq.index_copy_(0, order, n + torch.arange(order.numel()))
    return uniq.index_select(0, order), local_of_uniq.index_select(0, inverse[n:])


class FirstSeenTable:
    """Dense scratch tables for one node type, reused across batches.

    ``local[v]`` is ``v``'s local index in the current batch or ``-1``;
    ``first[v]`` is ``INT64_MAX`` between merges.  16 bytes per node.
    """

    def __init__(self, num_nodes: int) -> None:
        self.local = torch.full((num_nodes,), -1, dtype=torch.long)  # [N]
        self.first = torch.full((num_nodes,), _INT64_MAX, dtype=torch.long)  # [N]

    def first_positions(self, nodes: Tensor) -> Tensor:
        """Position of the first occurrence of each entry's id in ``nodes``."""
        pos = torch.arange(nodes.numel())
        self.first.scatter_reduce_(0, nodes, pos, reduce="amin")
        out = self.first.index_select(0, nodes)  # [m]
        self.first.index_fill_(0, nodes, _INT64_MAX)
        return out


class TableNodeSet:
    """Nodes of one type in a (non-disjoint) sampled subgraph.

    Args:
        table: scratch tables; must be released with :meth:`release`.
    """

    def __init__(self, table: FirstSeenTable) -> None:
        self.table = table
        self.chunks: list[Tensor] = []
        self.size = 0

    def add_seeds(self, seeds: Tensor, batch: Tensor | None = None) -> None:
        """Seeds keep their positions; a repeated seed maps to its first copy."""
        self.table.local.index_copy_(0, seeds, self.table.first_positions(seeds))
        self.chunks.append(seeds)
        self.size = seeds.numel()

    def merge(
        self, nodes: Tensor, batch: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None, Tensor]:
        """Add unseen ``nodes`` ``[m]`` in first-seen order.

        Returns:
            ``(new_nodes [u], None, local [m])``.
        """
        local = self.table.local.index_select(0, nodes)  # [m]
        unseen = (local < 0).nonzero().view(-1)  # [q] positions in `nodes`
        if unseen.numel() == 0:
            return _EMPTY, None, local
        cand = nodes.index_select(0, unseen)  # [q]
        is_first = self.table.first_positions(cand) == torch.arange(cand.numel())  # [q]
        new_nodes = cand[is_first]  # [u], ascending position = first-seen order
        self.table.local.index_copy_(0, new_nodes, self.size + torch.arange(new_nodes.numel()))
        local.index_copy_(0, unseen, self.table.local.index_select(0, cand))
        self.chunks.append(new_nodes)
        self.size += new_nodes.numel()
        return new_nodes, None, local

    def nodes(self) -> Tensor:
        """``[size]`` global ids in local order."""
        return torch.cat(self.chunks) if self.chunks else _EMPTY

    def batch(self) -> Tensor | None:
        """Always ``None`` (not disjoint)."""
        return None

    def release(self) -> None:
        """Reset the touched table entries for the next batch."""
        for chunk in self.chunks:
            self.table.local.index_fill_(0, chunk, -1)
        self.chunks = []


class KeyNodeSet:
    """Nodes of one type in a *disjoint* subgraph, keyed by ``(batch, node)``.

    Args:
        num_nodes: number of nodes of this type (key radix).
    """

    def __init__(self, num_nodes: int) -> None:
        self.num_nodes = max(int(num_nodes), 1)
        self.keys = _EMPTY
        self.chunks: list[Tensor] = []
        self.batch_chunks: list[Tensor] = []
        self.size = 0

    def add_seeds(self, seeds: Tensor, batch: Tensor | None = None) -> None:
        """Seeds with their batch ids (distinct per seed)."""
        assert batch is not None
        self.keys = batch * self.num_nodes + seeds
        self.chunks.append(seeds)
        self.batch_chunks.append(batch)
        self.size = seeds.numel()

    def merge(
        self, nodes: Tensor, batch: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None, Tensor]:
        """Add unseen ``(batch, node)`` pairs in first-seen order.

        Returns:
            ``(new_nodes [u], new_batch [u], local [m])``.
        """
        assert batch is not None
        new_keys, local = merge_first_seen(self.keys, batch * self.num_nodes + nodes)
        self.keys = torch.cat([self.keys, new_keys])
        new_nodes = new_keys % self.num_nodes
        new_batch = torch.div(new_keys, self.num_nodes, rounding_mode="floor")
        self.chunks.append(new_nodes)
        self.batch_chunks.append(new_batch)
        self.size += new_nodes.numel()
        return new_nodes, new_batch, local

    def nodes(self) -> Tensor:
        """``[size]`` global ids in local order."""
        return torch.cat(self.chunks) if self.chunks else _EMPTY

    def batch(self) -> Tensor | None:
        """``[size]`` batch id (seed index) of every node."""
        return torch.cat(self.batch_chunks) if self.batch_chunks else _EMPTY

    def release(self) -> None:
        """Nothing to clean up."""
