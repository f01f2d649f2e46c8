"""Seed construction for link-level batches (``sample_from_edges``).

Mirrors PyG's ``torch_geometric.sampler.neighbor_sampler.edge_sample`` so that
``LinkLoader.filter_fn`` can consume our output unchanged: the same seed
layout (``unique`` seeds unless disjoint), the same negative-sampling layout
(binary: negatives appended, label 0; triplet: ``amount`` negative
destinations per positive), and the same ``metadata`` tuple.  Differences:
negatives come from the sampler's own ``torch.Generator`` (so batches are
reproducible under a seed) and temporal inputs are rejected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch_geometric.sampler import EdgeSamplerInput, NegativeSampling


@dataclass
class LinkSeeds:
    """Seeds to expand plus the bookkeeping PyG's ``LinkLoader`` expects.

    Attributes:
        seeds: node type -> ``[S]`` int64 seed ids, in batch-id order.
        metadata: tuple stored as ``SamplerOutput.metadata``.
        num_pos: number of positive links (disjoint batch ids are taken modulo
            it, as PyG does).
    """

    seeds: dict[Any, Tensor]
    metadata: tuple
    num_pos: int


def draw_negatives(
    neg_sampling: NegativeSampling,
    num: int,
    endpoint: str,
    num_nodes: int,
    generator: torch.Generator | None,
) -> Tensor:
    """``NegativeSampling.sample`` with an explicit generator.

    Uniform over ``[0, num_nodes)`` or, when ``src_weight``/``dst_weight`` is
    set, multinomial with replacement over those weights.
    """
    weight = neg_sampling.src_weight if endpoint == "src" else neg_sampling.dst_weight
    if weight is None:
        return torch.randint(num_nodes, (num,), generator=generator)
    if weight.numel() != num_nodes:
        raise ValueError(
            f"{endpoint}_weight has {weight.numel()} entries but there are {num_nodes} nodes"
        )
    return torch.multinomial(weight.cpu().float(), num, replacement=True, generator=generator)


def link_seeds(
    inputs: EdgeSamplerInput,
    neg_sampling: NegativeSampling | None,
    src_type: Any,
    dst_type: Any,
    num_src: int,
    num_dst: int,
    disjoint: bool,
    generator: torch.Generator | None,
) -> LinkSeeds:
    """Turn a batch of seed links into seed nodes and loader metadata.

    Args:
        inputs: the batch (``row``/``col`` are the link endpoints).
        neg_sampling: PyG negative sampling config, or ``None``.
        src_type: node type of the sources (internal key for homogeneous).
        dst_type: node type of the destinations.
        num_src: number of source nodes (range of binary negatives).
        num_dst: number of destination nodes.
        disjoint: every link endpoint gets its own subtree.
        generator: randomness for the negatives.
    """
    if inputs.time is not None:
        raise NotImplementedError("temporal link sampling is not supported by kgmm.sampling.TypedNeighborSampler")
    input_id = inputs.input_id
    src = inputs.row.to(torch.long)  # [P]
    dst = inputs.col.to(torch.long)  # [P]
    label = inputs.label
    num_pos = src.numel()
    num_neg = 0
    triplet = neg_sampling is not None and neg_sampling.is_triplet()

    if neg_sampling is not None:
        num_neg = math.ceil(num_pos * neg_sampling.amount)
        if neg_sampling.is_binary():
            src = torch.cat([src, draw_negatives(neg_sampling, num_neg, "src", num_src, generator)])
            dst = torch.cat([dst, draw_negatives(neg_sampling, num_neg, "dst", num_dst, generator)])
            if label is None:
                label = torch.ones(num_pos)
            label = torch.cat([label, label.new_zeros((num_neg,) + tuple(label.shape[1:]))])
        else:
            if label is not None:
                raise ValueError("edge labels must be undefined for triplet negative sampling")
            dst = torch.cat([dst, draw_negatives(neg_sampling, num_neg, "dst", num_dst, generator)])

    two_types = src_type != dst_type
    if two_types:
        if not disjoint:
            src, inv_src = torch.unique(src, return_inverse=True)
            dst, inv_dst = torch.unique(dst, return_inverse=True)
        seeds = {src_type: src, dst_type: dst}
    else:
        seed = torch.cat([src, dst])
        if not disjoint:
            seed, inv = torch.unique(seed, return_inverse=True)
        seeds = {src_type: seed}

    if not triplet:
        n = num_pos + num_neg
        if disjoint:
            if two_types:
                edge_label_index = torch.arange(n).repeat(2).view(2, -1)
            else:
                edge_label_index = torch.arange(2 * n).view(2, -1)
        elif two_types:
            edge_label_index = torch.stack([inv_src, inv_dst])
        else:
            edge_label_index = inv.view(2, -1)
        metadata: tuple = (input_id, edge_label_index, label, None)
    else:
        if disjoint:
            src_index = torch.arange(num_pos)
            first_dst = 0 if two_types else num_pos
            num_dst_seeds = seeds[dst_type].numel()
            dst_pos_index = torch.arange(first_dst, first_dst + num_pos)
            dst_neg_index = torch.arange(first_dst + num_pos, num_dst_seeds).view(-1, num_pos).t()
        elif two_types:
            src_index = inv_src
            dst_pos_index, dst_neg_index = inv_dst[:num_pos], inv_dst[num_pos:]
        else:
            src_index = inv[:num_pos]
            dst_pos_index, dst_neg_index = inv[num_pos : 2 * num_pos], inv[2 * num_pos :]
        dst_neg_index = dst_neg_index.reshape(num_pos, -1).squeeze(-1)
        metadata = (input_id, src_index, dst_pos_index, dst_neg_index, None)
    return LinkSeeds(seeds=seeds, metadata=metadata, num_pos=num_pos)


def wrap_batch_modulo(batch: dict[Any, Tensor] | None, num_pos: int) -> None:
    """In place: disjoint batch ids -> index of the positive link (PyG rule)."""
    if batch is None or num_pos == 0:
        return
    for key, value in batch.items():
        batch[key] = value % num_pos
