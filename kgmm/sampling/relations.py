"""Relation groups: all edge types between two node types in one adjacency.

Product graphs have one edge type per attribute (the Flipkart catalog: ~1,200
edge types, most with a handful of edges).  Sampling each edge type with its
own tensor ops costs ~10 small ops per edge type and hop, i.e. tens of
milliseconds of pure overhead per batch.  A :class:`RelationGroup` instead
holds every edge type ``(src, rel_r, dst)`` sharing ``(src, dst)`` in one
CSC whose *segments* are the non-empty ``(dst node, relation)`` pairs, ordered
by ``dst * R + r``.  One hop then samples all relations of the frontier with
one vectorised :func:`~kgmm.sampling.select.sample_in_edges` call (fan-outs
looked up per segment), whatever the number of relations.

Only non-empty segments are stored, so memory is O(E + num_dst) per group
instead of O(R * num_dst) for R per-type ``colptr`` arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch_geometric.typing import EdgeType

from .csr import CSC, build_csc, checked_edge_index, colptr_from_counts, compact_dtype
from .select import sample_in_edges, segment_arange

_RADIX_LIMIT = 1 << 16  # numpy radix-sorts keys of <= 16 bits


def stable_argsort(keys: Tensor, bound: int) -> Tensor:
    """Stable ``argsort`` of small non-negative int64 ``keys`` (all ``< bound``).

    Keys below 2**16 go through numpy's radix sort (``kind="stable"`` on
    ``uint16``): O(n) and ~15x faster than ``torch.sort(stable=True)`` on the
    few-ten-thousand relation/edge-type ids of a hop.
    """
    if bound <= _RADIX_LIMIT:
        small = keys.numpy().astype(np.uint16)
        return torch.from_numpy(np.argsort(small, kind="stable"))
    return torch.sort(keys, stable=True).indices


@dataclass(frozen=True)
class RelationGroup:
    """In-edges of every edge type from one node type into another.

    Attributes:
        edge_types: the group's R edge types (relation ``r`` = position), in
            the sampler's edge-type order.
        type_index: ``[R]`` int64 position of each in the sampler's list of
            edge types (the order that output and first-seen numbering follow).
        csc: CSC over *segments*: ``csc.colptr`` ``[S + 1]``, ``csc.row``
            ``[E]`` source nodes, ``csc.edge_id`` ``[E]`` edge id within the
            edge's own edge type (stable: original order inside a segment);
            both int32 when they fit (:func:`~kgmm.sampling.csr.compact`).
        dst_ptr: ``[num_dst + 1]`` int64; the segments of destination ``v``
            are ``dst_ptr[v]:dst_ptr[v + 1]``, in relation order.  ``None``
            when ``R == 1``: segment ``v`` is then destination ``v`` itself
            and ``csc`` is the plain per-type CSC.
        seg_rel: ``[S]`` int64 relation of each segment (``None`` if R == 1).
    """

    edge_types: list[EdgeType]
    type_index: Tensor
    csc: CSC
    dst_ptr: Tensor | None
    seg_rel: Tensor | None

    @property
    def src_type(self) -> str:
        return self.edge_types[0][0]

    @property
    def dst_type(self) -> str:
        return self.edge_types[0][-1]

    @property
    def num_relations(self) -> int:
        return len(self.edge_types)

    def nbytes(self) -> int:
        """Bytes held by the group's index tensors (for memory reports)."""
        extra = [t for t in (self.dst_ptr, self.seg_rel, self.type_index) if t is not None]
        return self.csc.nbytes() + sum(t.numel() * t.element_size() for t in extra)

    def max_in_degree(self) -> int:
        """Largest in-degree of any destination node within one edge type."""
        return int(self.csc.in_degree().max()) if self.csc.num_dst else 0

    def edge_type_csc(self, r: int) -> CSC:
        """The plain CSC of relation ``r`` alone (built on demand, O(E_r)).

        Picking relation ``r``'s segments in order yields destinations in
        ascending order with the original edge order inside each, i.e. exactly
        what :func:`~kgmm.sampling.csr.build_csc` would build.
        """
        if self.dst_ptr is None:
            return self.csc
        assert self.seg_rel is not None
        num_dst = self.dst_ptr.numel() - 1
        seg_dst = torch.repeat_interleave(torch.arange(num_dst), self.dst_ptr.diff())  # [S]
        segs = (self.seg_rel == r).nonzero().view(-1)  # [S_r]
        deg = self.csc.in_degree(segs)  # [S_r]
        pos = self.csc.colptr.index_select(0, segs).repeat_interleave(deg)  # [E_r]
        pos += segment_arange(deg)
        counts = torch.zeros(num_dst, dtype=torch.long)
        counts.index_copy_(0, seg_dst.index_select(0, segs), deg)
        return CSC(
            colptr=colptr_from_counts(counts),
            row=self.csc.row.index_select(0, pos),
            edge_id=self.csc.edge_id.index_select(0, pos),
            num_src=self.csc.num_src,
        )


def build_relation_group(
    edge_types: list[EdgeType],
    edge_indices: list[Tensor],
    type_index: list[int],
    num_src: int,
    num_dst: int,
) -> RelationGroup:
    """Build the group of ``edge_types`` (same source and destination type).

    Args:
        edge_types: R edge types, in the sampler's order.
        edge_indices: their ``[2, E_r]`` edge indices.
        type_index: their positions in the sampler's edge-type list.
        num_src: number of source nodes.
        num_dst: number of destination nodes.

    One stable sort by ``dst * R + r`` (original order kept inside a segment).
    """
    index = torch.tensor(type_index, dtype=torch.long)  # [R]
    if len(edge_types) == 1:
        csc = build_csc(edge_indices[0], num_src, num_dst)
        return RelationGroup(list(edge_types), index, csc, None, None)
    checked = [checked_edge_index(ei, num_src, num_dst) for ei in edge_indices]
    sizes = torch.tensor([ei.size(1) for ei in checked], dtype=torch.long)  # [R]
    num_rel = len(checked)
    # each [E] temporary is released as soon as it is read: with 11M edges each is 88 MB, and
    # holding them all at once set the peak memory of a pretraining start-up at 1M products
    key = torch.cat([ei[1] for ei in checked]) * num_rel + torch.repeat_interleave(torch.arange(num_rel), sizes)  # [E] dst * R + rel
    key_sorted, perm = torch.sort(key, stable=True)  # [E], [E]
    del key
    seg_key, seg_size = torch.unique_consecutive(key_sorted, return_counts=True)  # [S], [S]
    del key_sorted
    seg_dst = torch.div(seg_key, num_rel, rounding_mode="floor")  # [S]
    row, edge_id = _sources_and_ids(torch.cat([ei[0] for ei in checked]), perm, sizes, num_src)
    del perm
    csc = CSC(colptr=colptr_from_counts(seg_size), row=row, edge_id=edge_id, num_src=num_src)
    dst_ptr = colptr_from_counts(torch.bincount(seg_dst, minlength=num_dst))  # [num_dst + 1]
    return RelationGroup(list(edge_types), index, csc, dst_ptr, seg_key - seg_dst * num_rel)


_GATHER_CHUNK = 1 << 20


def _sources_and_ids(src: Tensor, perm: Tensor, sizes: Tensor, num_src: int) -> tuple[Tensor, Tensor]:
    """The group's per-edge arrays in segment order: ``src[perm]`` and each edge's id within its
    own edge type (``perm`` minus the first position of its type in the concatenation), both in
    their compact dtype (:func:`~kgmm.sampling.csr.compact`).

    Filled a million edges at a time, so no further ``[E]`` int64 array exists beside ``src`` and
    ``perm``: at 1M products (11M edges a direction) the whole-array form held four more (336 MiB in memray's count)
    at the start-up's peak of memory.
    """
    ends = torch.cumsum(sizes, 0)  # [R] one past the last position of each edge type
    starts = ends - sizes  # [R]
    row = torch.empty(perm.numel(), dtype=compact_dtype(num_src))
    edge_id = torch.empty(perm.numel(), dtype=compact_dtype(int(sizes.max())))
    for first in range(0, perm.numel(), _GATHER_CHUNK):
        part = perm[first : first + _GATHER_CHUNK]
        row[first : first + part.numel()] = src.index_select(0, part)
        edge_id[first : first + part.numel()] = part - starts.index_select(0, torch.bucketize(part, ends, right=True))
    return row, edge_id


@dataclass(frozen=True)
class GroupFanout:
    """Fan-out of one group in one hop.

    Attributes:
        k: one ``int`` when every relation has the same fan-out, else an
            ``[R]`` int64 tensor indexed by relation.
        active: whether any relation samples at all (``k != 0``).
    """

    k: int | Tensor
    active: bool

    @staticmethod
    def of(per_relation: list[int]) -> GroupFanout:
        active = any(k != 0 for k in per_relation)
        if len(set(per_relation)) == 1:
            return GroupFanout(per_relation[0], active)
        return GroupFanout(torch.tensor(per_relation, dtype=torch.long), active)


@dataclass(frozen=True)
class GroupSample:
    """Edges sampled in one group and hop, in (edge type, frontier, draw) order.

    All ``[M]`` int64: ``type_index`` (sampler edge-type position),
    ``front_pos`` (position of the destination in the frontier), ``src``
    (global source id) and ``edge_id`` (id within its edge type).
    """

    type_index: Tensor
    front_pos: Tensor
    src: Tensor
    edge_id: Tensor


def sample_group(
    group: RelationGroup,
    frontier: Tensor,
    fanout: GroupFanout,
    replace: bool,
    generator: torch.Generator | None,
) -> GroupSample:
    """Sample the in-edges of all relations of ``frontier`` (``[F]`` dst ids).

    The frontier's segments are enumerated, stably sorted by relation (so the
    result comes out edge type by edge type, each in frontier order, as
    pyg-lib's per-edge-type loop would produce), and sampled in one call.
    """
    csc = group.csc
    if group.dst_ptr is None:  # one relation: segments are the frontier nodes
        pick, pos = sample_in_edges(csc.colptr, frontier, fanout.k, replace, generator)  # [M]
        src, edge_id = csc.gather(pos)
        return GroupSample(type_index=torch.full_like(pick, int(group.type_index[0])), front_pos=pick, src=src, edge_id=edge_id)
    assert group.seg_rel is not None
    start = group.dst_ptr.index_select(0, frontier)  # [F]
    num_seg = group.dst_ptr.index_select(0, frontier + 1) - start  # [F]
    total = int(num_seg.sum())
    seg_front = torch.repeat_interleave(
        torch.arange(frontier.numel()), num_seg, output_size=total
    )  # [G] frontier position of each segment
    segs = start.index_select(0, seg_front) + segment_arange(num_seg, total, seg_front)  # [G]
    rel = group.seg_rel.index_select(0, segs)  # [G]
    order = stable_argsort(rel, group.num_relations)  # [G] relation-major, frontier order kept
    segs, seg_front, rel = (t.index_select(0, order) for t in (segs, seg_front, rel))
    k = fanout.k if isinstance(fanout.k, int) else fanout.k.index_select(0, rel)  # int | [G]
    pick, pos = sample_in_edges(csc.colptr, segs, k, replace, generator)  # [M], [M]
    src, edge_id = csc.gather(pos)
    return GroupSample(type_index=group.type_index.index_select(0, rel.index_select(0, pick)),
                       front_pos=seg_front.index_select(0, pick), src=src, edge_id=edge_id)
