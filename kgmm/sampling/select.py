"""Vectorised per-hop neighbour selection on a :class:`~kgmm.sampling.csr.CSC`.

All frontier nodes of one hop and one edge type are handled by a fixed number
of tensor ops; there is no Python loop over nodes or edges.  Three regimes:

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


def sample_offsets(
    deg: Tensor, k: int, replace: bool, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """Pick neighbour offsets for every frontier node of one hop.

    Args:
        deg: ``[F]`` int64 in-degree of each frontier node.
        k: fan-out (``-1``: all neighbours; ``0``: none).
        replace: sample with replacement.
        generator: source of randomness.

    Returns:
        ``(seg, offset)``, both ``[M]`` int64: the frontier position each
        picked edge belongs to (non-decreasing) and its offset inside that
        node's in-edge list (``0 <= offset < deg[seg]``).
    """
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
    big_deg = deg.index_select(0, big)  # [B]
    moderate = big_deg <= _subset_threshold(k)  # [B]
    n_moderate = int(moderate.sum())
    if n_moderate == big.numel():
        chosen = permutation_subsets(big_deg, k, generator)  # [B, k]
    elif n_moderate == 0:
        chosen = floyd_subsets(big_deg, k, generator)
    else:
        chosen = torch.empty(big.numel(), k, dtype=torch.long)
        idx = moderate.nonzero().view(-1)
        chosen.index_copy_(0, idx, permutation_subsets(big_deg.index_select(0, idx), k, generator))
        idx = (~moderate).nonzero().view(-1)
        chosen.index_copy_(0, idx, floyd_subsets(big_deg.index_select(0, idx), k, generator))
    # Entries of "big" nodes appear in ascending frontier order, k each, so the
    # row-major flattening of `chosen` lines up with them.
    slots = big_mask.index_select(0, seg).nonzero().view(-1)  # [B * k]
    offset.index_copy_(0, slots, chosen.view(-1))
    return seg, offset


def sample_in_edges(
    colptr: Tensor,
    frontier: Tensor,
    k: int,
    replace: bool,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor]:
    """Sample up to ``k`` in-edges of every node in ``frontier`` at once.

    Args:
        colptr: ``[N + 1]`` CSC offsets.
        frontier: ``[F]`` int64 destination node ids.
        k: fan-out (``-1``: all).
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
