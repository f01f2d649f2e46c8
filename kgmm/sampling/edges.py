"""Small pieces of the neighbour sampler: thread control, and sampled edges split per edge type."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor
from torch_geometric.typing import EdgeType

from .relations import stable_argsort

EMPTY = torch.zeros(0, dtype=torch.long)

EdgeChunk = tuple[Tensor, Tensor, Tensor, Tensor]
"""One source type's edges of one hop: (edge-type index, row, col, edge id), all [M]."""


def cat(tensors: list[Tensor]) -> Tensor:
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors)


@contextmanager
def intra_op_threads(num_threads: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (``None``: leave it).

    Sampling runs many small ops; on a busy 2-core machine OpenMP's
    fork/join for them made a batch ~50x slower than single-threaded.  With
    torch's OpenMP backend the setting is per calling thread, so restoring
    it afterwards does not disturb other threads.
    """
    previous = torch.get_num_threads()
    if num_threads is None or num_threads == previous:
        yield
        return
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def split_by_edge_type(hops: list[list[EdgeChunk]], edge_types: list[EdgeType]) -> tuple[
    dict[EdgeType, Tensor],
    dict[EdgeType, Tensor],
    dict[EdgeType, Tensor],
    dict[EdgeType, list[int]],
]:
    """Per-edge-type ``row``/``col``/``edge`` and ``num_sampled_edges``.

    One stable sort of all sampled edges by edge type (hop order and the
    order inside a hop are kept), one bincount per hop and one split per
    field, instead of tensor work per edge type.
    """
    num_types = len(edge_types)
    per_hop = [cat([c[0] for c in chunks]) if chunks else EMPTY for chunks in hops]
    counts = torch.zeros(len(hops), num_types, dtype=torch.long)  # [H, T]
    for hop, type_index in enumerate(per_hop):
        counts[hop] = torch.bincount(type_index, minlength=num_types)
    num_sampled_edges = dict(zip(edge_types, counts.t().tolist()))
    flat = [c for chunks in hops for c in chunks]
    if not flat:
        empty = {et: EMPTY for et in edge_types}
        return empty, dict(empty), dict(empty), num_sampled_edges
    type_index, row, col, edge = (cat([c[i] for c in flat]) for i in range(4))  # [M] each
    if num_types > 1:
        order = stable_argsort(type_index, num_types)  # [M]
        row, col, edge = (t.index_select(0, order) for t in (row, col, edge))
    sizes = counts.sum(0).tolist()
    # Only sampled edge types get views (building ~1,000 views per field
    # is most of this step); the others share the empty tensor.
    hit = [i for i, n in enumerate(sizes) if n]
    hit_types = [edge_types[i] for i in hit]
    hit_sizes = [sizes[i] for i in hit]
    fields = []
    for t in (row, col, edge):
        by_type = dict.fromkeys(edge_types, EMPTY)
        by_type.update(zip(hit_types, t.split(hit_sizes)))
        fields.append(by_type)
    return fields[0], fields[1], fields[2], num_sampled_edges
