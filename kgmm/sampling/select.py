"""Vectorised per-hop neighbour selection on a :class:`~kgmm.sampling.csr.CSC`.

All frontier segments of one hop (the nodes of one edge type, or the (node,
relation) pairs of a relation group, each with its own fan-out) are handled
by a fixed number of tensor ops; there is no Python loop over nodes, edges or
relations.  Three regimes:

* ``k < 0`` or ``deg <= k`` (without replacement): every in-edge is taken.
* with replacement: ``k`` offsets ``floor(u * deg)`` per node with ``deg > 0``
  (PyG/pyg-lib semantics: even when ``deg < k``).
* without replacement and ``deg > k``: a uniform k-subset of ``[0, deg)``.
  Moderate degrees use "random permutation, then stable sort by segment" and
  keep the first ``k`` of each segment (O(deg) per node).  Large degrees use
  Robert Floyd's algorithm vectorised across nodes: ``k`` steps (a loop over
  *fan-out slots*, not nodes), O(k^2) per node independent of ``deg``, so a
  hub with 100k neighbours costs the same as one with 100.
"""

from __future__ import annotations

import torch
from torch import Tensor


def segment_arange(counts: Tensor, total: int | None = None, seg: Tensor | None = None) -> Tensor:
    """``[0..c0-1, 0..c1-1, ...]`` for ``counts = [c0, c1, ...]`` (int64).

    Args:
        counts: ``[S]`` non-negative int64 segment lengths.
        total: ``counts.sum()`` if already known (saves a reduction).
        seg: ``repeat_interleave(arange(S), counts)`` if already known (saves
            a second ``repeat_interleave``).
    """
    if total is None:
        total = int(counts.sum())
    if total == 0:
        return torch.zeros(0, dtype=torch.long)
    starts = torch.cumsum(counts, 0) - counts  # [S] exclusive prefix sum
    if seg is None:
        seg = torch.repeat_interleave(torch.arange(counts.numel()), counts, output_size=total)
    return torch.arange(total, dtype=torch.long) - starts.index_select(0, seg)


def floyd_subsets(deg: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
    """Uniform k-subsets of ``[0, deg_i)`` for every row, via Floyd's algorithm.

    Step ``i`` draws ``t`` uniformly from ``[0, j]`` with ``j = deg - k + i``
    and keeps ``t`` unless it was already chosen, in which case it keeps ``j``
    (never chosen before because earlier picks are ``< j``).  This yields each
    k-subset with equal probability while touching only ``k`` values per row.

    Args:
        deg: ``[m]`` int64 population sizes, all ``>= k``.
        k: subset size (``>= 1``).
        generator: source of randomness.

    Returns:
        ``[m, k]`` int64 distinct offsets per row (order is not meaningful).
    """
    m = deg.numel()
    steps = torch.arange(k)  # [k]
    upper = (deg - k).unsqueeze(1) + steps  # [m, k] j of every step
    u = torch.rand(m, k, dtype=torch.float64, generator=generator)  # [m, k]
    draws = torch.minimum((u * (upper + 1)).long(), upper)  # [m, k] t_i uniform in [0, j_i]
    out = torch.empty(m, k, dtype=torch.long)  # [m, k]
    out[:, 0] = draws[:, 0]
    for i in range(1, k):  # loop over fan-out slots; vectorised over nodes
        t = draws[:, i : i + 1]  # [m, 1]
        seen = (out[:, :i] == t).any(dim=1, keepdim=True)  # [m, 1]
        out[:, i : i + 1] = torch.where(seen, upper[:, i : i + 1], t)
    return out


def permutation_subsets(deg: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
    """Uniform k-subsets of ``[0, deg_i)`` by shuffling each segment.

    A single ``randperm`` over all candidate slots followed by a *stable* sort
    by segment id leaves every segment in uniformly random order; its first
    ``k`` entries are a uniform k-subset.  Cost is O(sum(deg)), so callers use
    it only for moderate degrees.

    Args:
        deg: ``[m]`` int64 population sizes, all ``>= k``.
        k: subset size (``>= 1``).
        generator: source of randomness.

    Returns:
        ``[m, k]`` int64 distinct offsets per row.
    """
    m = deg.numel()
    total = int(deg.sum())
    seg = torch.repeat_interleave(torch.arange(m), deg, output_size=total)  # [T]
    offset = segment_arange(deg, total, seg)  # [T]
    perm = torch.randperm(total, generator=generator)  # [T]
    order = torch.sort(seg.index_select(0, perm), stable=True).indices  # [T]
    perm = perm.index_select(0, order)  # grouped by segment, shuffled inside
    starts = torch.cumsum(deg, 0) - deg  # [m]
    take = (starts.unsqueeze(1) + torch.arange(k)).view(-1)  # [m * k] first k per segment
    return offset.index_select(0, perm.index_select(0, take)).view(m, k)


def _subset_threshold(k: int) -> int:
    # Shuffling costs ~deg per node, Floyd ~k^2/2 (+ k kernel launches);
    # switch where the two are roughly equal, never below 4k.
    return max(4 * k, (k * k) // 8)


def _subsets(deg: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
    """``[B, k]`` uniform k-subsets of ``[0, deg_i)`` (all ``deg > k``).

    Moderate degrees are shuffled, large ones go through Floyd (see module doc).
    """
    moderate = deg <= _subset_threshold(k)  # [B]
    n_moderate = int(moderate.sum())
    if n_moderate == deg.numel():
        return permutation_subsets(deg, k, generator)
    if n_moderate == 0:
        return floyd_subsets(deg, k, generator)
    chosen = torch.empty(deg.numel(), k, dtype=torch.long)  # [B, k]
    idx = moderate.nonzero().view(-1)
    chosen.index_copy_(0, idx, permutation_subsets(deg.index_select(0, idx), k, generator))
    idx = (~moderate).nonzero().view(-1)
    chosen.index_copy_(0, idx, floyd_subsets(deg.index_select(0, idx), k, generator))
    return chosen


def sample_offsets(
    deg: Tensor, k: int | Tensor, replace: bool, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """Pick neighbour offsets for every frontier segment of one hop.

    Args:
        deg: ``[F]`` int64 in-degree of each frontier segment (a node, or a
            (node, relation) pair of a relation group).
        k: fan-out (``-1``: all neighbours; ``0``: none), either one ``int``
            for all segments or an ``[F]`` int64 tensor with one per segment
            (relation groups whose edge types have different fan-outs).
        replace: sample with replacement.
        generator: source of randomness.

    Returns:
        ``(seg, offset)``, both ``[M]`` int64: the frontier position each
        picked edge belongs to (non-decreasing) and its offset inside that
        node's in-edge list (``0 <= offset < deg[seg]``).
    """
    if isinstance(k, Tensor):
        return _sample_offsets_per_segment(deg, k, replace, generator)
    if k == 0 or deg.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty
    if k < 0:
        count = deg
    elif replace:
        count = (deg > 0).long() * k
    else:
        count = deg.clamp(max=k)
    total = int(count.sum())
    seg = torch.repeat_interleave(torch.arange(deg.numel()), count, output_size=total)  # [M]
    if k < 0:
        return seg, segment_arange(count, total, seg)
    if replace:
        d = deg.index_select(0, seg)  # [M]
        u = torch.rand(total, dtype=torch.float64, generator=generator)
        return seg, torch.minimum((u * d).long(), d - 1)
    big_mask = deg > k  # [F] nodes needing a proper subset
    big = big_mask.nonzero().view(-1)  # [B]
    if big.numel() == 0:
        return seg, segment_arange(count, total, seg)  # every in-edge of every node
    offset = segment_arange(count, total, seg)  # [M] slot index; final for deg <= k
    chosen = _subsets(deg.index_select(0, big), k, generator)  # [B, k]
    # Entries of "big" nodes appear in ascending frontier order, k each, so the
    # row-major flattening of `chosen` lines up with them.
    slots = big_mask.index_select(0, seg).nonzero().view(-1)  # [B * k]
    offset.index_copy_(0, slots, chosen.view(-1))
    return seg, offset


def _sample_offsets_per_segment(
    deg: Tensor, k: Tensor, replace: bool, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """:func:`sample_offsets` with one fan-out per segment (``k``: ``[F]``).

    Same per-segment semantics as the scalar version; the subset step loops
    over the *distinct* fan-outs that need one (usually one or two values),
    never over segments or relations.
    """
    if deg.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty
    take_all = k < 0  # [F]
    if replace:
        count = torch.where(take_all, deg, torch.where(deg > 0, k, 0))  # [F]
    else:
        count = torch.where(take_all, deg, torch.minimum(deg, k))  # [F]
    total = int(count.sum())
    seg = torch.repeat_interleave(torch.arange(deg.numel()), count, output_size=total)  # [M]
    offset = segment_arange(count, total, seg)  # [M] final for "take all" segments
    if total == 0:
        return seg, offset
    if replace:
        drawn = (~take_all).index_select(0, seg).nonzero().view(-1)  # [D] entries to draw
        d = deg.index_select(0, seg.index_select(0, drawn))  # [D]
        u = torch.rand(drawn.numel(), dtype=torch.float64, generator=generator)
        offset.index_copy_(0, drawn, torch.minimum((u * d).long(), d - 1))
        return seg, offset
    big_mask = (k > 0) & (deg > k)  # [F] segments needing a proper subset
    if not bool(big_mask.any()):
        return seg, offset
    for kv in torch.unique(k[big_mask]).tolist():  # distinct fan-outs, not segments
        mask = big_mask & (k == kv)  # [F]
        chosen = _subsets(deg[mask], kv, generator)  # [B, kv], segments in frontier order
        slots = mask.index_select(0, seg).nonzero().view(-1)  # [B * kv], same order
        offset.index_copy_(0, slots, chosen.view(-1))
    return seg, offset


def sample_in_edges(
    colptr: Tensor,
    frontier: Tensor,
    k: int | Tensor,
    replace: bool,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor]:
    """Sample up to ``k`` in-edges of every node in ``frontier`` at once.

    Args:
        colptr: ``[N + 1]`` CSC offsets.
        frontier: ``[F]`` int64 destination node ids.
        k: fan-out (``-1``: all), one ``int`` or an ``[F]`` tensor (one per
            frontier entry; see :func:`sample_offsets`).
        replace: sample with replacement.
        generator: source of randomness.

    Returns:
        ``(seg, pos)``, both ``[M]`` int64: frontier position of each sampled
        edge and its position in the CSC arrays (index ``row``/``edge_id``).
    """
    start = colptr.index_select(0, frontier)  # [F]
    deg = colptr.index_select(0, frontier + 1) - start  # [F]
    seg, offset = sample_offsets(deg, k, replace, generator)
    return seg, start.index_select(0, seg) + offset
