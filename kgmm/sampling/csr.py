"""Compressed adjacency layouts used by the neighbour sampler.

The sampler asks one question per hop: "which edges point *into* these
frontier nodes?".  A CSC layout (edges grouped by destination, plus a
``colptr`` offset array) answers it with two gathers per frontier node, so it
is built once per edge type and then shared, read-only, by every batch.

Edges keep their original id (their column in ``edge_index``) in
:attr:`CSC.edge_id`, so sampled edges can be reported as *global* edge ids and
PyG's loaders can slice edge features without an extra permutation.

The two per-edge arrays are held as int32 whenever their ids fit (any graph
under 2**31 nodes and edges): they are most of the sampler's memory (at 1M
products, 11M edges in each direction), and a hop reads only the few it
samples, widened to int64 there (:meth:`CSC.gather`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class CSC:
    """Incoming-edge adjacency of one (bipartite) edge type.

    Attributes:
        colptr: ``[num_dst + 1]`` int64; the in-edges of destination ``v`` are
            the positions ``colptr[v]:colptr[v + 1]`` of :attr:`row`.
        row: ``[E]`` source node of each edge, grouped by destination
            (stable: original order inside each group); int32 when it fits
            (:func:`compact`), else int64.
        edge_id: ``[E]`` original edge id (column of ``edge_index``), int32
            when it fits, else int64.
        num_src: number of source nodes (bounds :attr:`row`).
    """

    colptr: Tensor
    row: Tensor
    edge_id: Tensor
    num_src: int

    @property
    def num_dst(self) -> int:
        """Number of destination nodes."""
        return int(self.colptr.numel()) - 1

    @property
    def num_edges(self) -> int:
        """Number of edges."""
        return int(self.row.numel())

    def in_degree(self, nodes: Tensor | None = None) -> Tensor:
        """In-degree of ``nodes`` (all destinations when ``None``), int64."""
        if nodes is None:
            return self.colptr[1:] - self.colptr[:-1]
        return self.colptr[nodes + 1] - self.colptr[nodes]

    def gather(self, pos: Tensor) -> tuple[Tensor, Tensor]:
        """Sources and edge ids of the edges at positions ``pos``, as int64."""
        return self.row.index_select(0, pos).long(), self.edge_id.index_select(0, pos).long()

    def nbytes(self) -> int:
        """Bytes held by the three index tensors (for memory reports)."""
        return sum(t.numel() * t.element_size() for t in (self.colptr, self.row, self.edge_id))


def _plain(t: Tensor) -> Tensor:
    # `Data.edge_index` may be a tensor subclass (PyG's `EdgeIndex`); its
    # overloaded ops are slower and carry metadata we do not want to keep.
    return t.as_subclass(Tensor) if type(t) is not Tensor else t


def checked_edge_index(edge_index: Tensor, num_src: int, num_dst: int) -> Tensor:
    """``edge_index`` as a plain CPU int64 ``[2, E]`` tensor, validated.

    Raises:
        ValueError: on a malformed ``edge_index`` or out-of-range node ids; a
            bad id would otherwise surface much later as a wrong sample.
    """
    edge_index = _plain(edge_index)
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must have shape [2, E], got {tuple(edge_index.shape)}")
    if edge_index.is_floating_point() or edge_index.dtype == torch.bool:
        raise ValueError(f"edge_index must hold integers, got {edge_index.dtype}")
    edge_index = edge_index.to(device="cpu", dtype=torch.long)
    src, dst = edge_index[0], edge_index[1]  # [E], [E]
    if src.numel() > 0:
        if int(src.min()) < 0 or int(src.max()) >= num_src:
            raise ValueError(f"source ids must lie in [0, {num_src})")
        if int(dst.min()) < 0 or int(dst.max()) >= num_dst:
            raise ValueError(f"destination ids must lie in [0, {num_dst})")
    return edge_index


INT32_LIMIT = torch.iinfo(torch.int32).max


def compact_dtype(bound: int) -> torch.dtype:
    """int32 for ids all ``< bound`` when ``bound`` fits one, else int64."""
    return torch.int32 if bound <= INT32_LIMIT else torch.long


def compact(ids: Tensor, bound: int) -> Tensor:
    """``ids`` (all ``< bound``) in :func:`compact_dtype`: half the bytes for the per-edge arrays
    that a sampler keeps for its whole life."""
    return ids.to(compact_dtype(bound))


def colptr_from_counts(counts: Tensor) -> Tensor:
    """``[n + 1]`` exclusive prefix sum ``[0, c0, c0 + c1, ...]`` of ``counts`` ``[n]``."""
    ptr = torch.zeros(counts.numel() + 1, dtype=torch.long)
    torch.cumsum(counts, dim=0, out=ptr[1:])
    return ptr


def build_csc(edge_index: Tensor, num_src: int, num_dst: int) -> CSC:
    """Build the CSC layout of ``edge_index`` (``[2, E]``, row 0 = source).

    One stable sort by destination plus a bincount/cumsum, all on int64
    tensors; O(E log E) once, after which every hop is O(sampled edges).

    Args:
        edge_index: ``[2, E]`` integer tensor of (source, destination) pairs.
        num_src: number of source nodes.
        num_dst: number of destination nodes.

    Raises:
        ValueError: see :func:`checked_edge_index`.
    """
    edge_index = checked_edge_index(edge_index, num_src, num_dst)
    src, dst = edge_index[0], edge_index[1]  # [E], [E]
    dst_sorted, perm = torch.sort(dst, stable=True)  # [E], [E]
    colptr = colptr_from_counts(torch.bincount(dst_sorted, minlength=num_dst))  # [num_dst + 1]
    return CSC(colptr=colptr, row=compact(src[perm], num_src), edge_id=compact(perm, perm.numel()), num_src=num_src)
