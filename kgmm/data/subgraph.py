"""The sampled neighbourhood of a batch's products, as one edge list for the GNN.

:class:`kgmm.sampling.TypedNeighborSampler` walks the training graph's typed edges (one edge
type per attribute) into the seed products; :class:`SubgraphSampler` turns its output
into the homogeneous ``(node kind, node key, edge_index, edge kind, edge attribute)``
layout of :meth:`kgmm.model.knowledge.KnowledgeEncoder.graph_tokens`, and drops every
sampled edge between a product and a value that the batch holds out (link-prediction
targets, and the facts of products whose knowledge is dropped), in both directions.

Behaviour edges (``(product, <kind>, product)``) are left out of the sampled graph unless
``behaviour_edge_kind`` names the edge kind to flatten them as: the model's edge-kind table
has no row for them yet, and leaving them out keeps K3M's subgraphs exactly as they were
on a graph that also holds behaviour data.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.data import HeteroData
from torch_geometric.sampler import NodeSamplerInput

from ..schema import FACT_EDGE_KINDS, KNOWLEDGE_EDGE_KINDS, EdgeKind, NodeKind, pair_key
from ..sampling import TypedNeighborSampler
from .hetero import CATEGORY, CHILD_OF, IN_CATEGORY, PRODUCT, VALUE

_NODE_KIND = {PRODUCT: NodeKind.PRODUCT, VALUE: NodeKind.VALUE, CATEGORY: NodeKind.CATEGORY}


class BatchSeededSampler(TypedNeighborSampler):
    """A TypedNeighborSampler that draws from the generator of the batch being built.

    TypedNeighborSampler reseeds itself per DataLoader worker; a batch built in a worker
    would then depend on which worker built it. Here the batch builder sets
    :attr:`batch_generator` before sampling, so the subgraph depends only on the run's
    seed and the batch's position, in any process.
    """

    batch_generator: torch.Generator | None = None

    @property
    def generator(self) -> torch.Generator:  # type: ignore[override]
        if self.batch_generator is not None:
            return self.batch_generator
        return super().generator


@dataclass
class Subgraph:
    """See :class:`kgmm.data.batch.Batch` for the fields."""

    node_kind: Tensor
    node_key: Tensor
    node_attribute: Tensor
    edge_index: Tensor
    edge_kind: Tensor
    edge_attribute: Tensor


class SubgraphSampler:
    """Samples and flattens subgraphs of one training graph.

    Args:
        data: the training graph (:func:`kgmm.data.snapshot_to_heterodata`).
        fanout: neighbours per hop (per edge type).
        value_attribute: [V] attribute of each value.
        product_category: [P] leaf category of each product (-1: none).
        behaviour_edge_kind: the edge kind behaviour edges are flattened as (any kind the
            model knows after the six below); None leaves behaviour edges unsampled.
    """

    def __init__(
        self,
        data: HeteroData,
        fanout: list[int],
        value_attribute: Tensor,
        product_category: Tensor,
        behaviour_edge_kind: int | None = None,
    ) -> None:
        behaviour = [t for t in data.edge_types if t[0] == PRODUCT and t[2] == PRODUCT]
        if behaviour_edge_kind is not None and behaviour_edge_kind < KNOWLEDGE_EDGE_KINDS:
            raise ValueError(f"behaviour_edge_kind {behaviour_edge_kind}: kinds below {KNOWLEDGE_EDGE_KINDS} are the knowledge graph's")
        if behaviour and behaviour_edge_kind is None:
            data = copy.copy(data)  # a shallow copy: the caller's graph keeps its behaviour types
            for edge_type in behaviour:
                del data[edge_type]
        self.sampler = BatchSeededSampler(data, list(fanout), seed=0)
        self.value_attribute = value_attribute
        self.product_category = product_category
        self.num_values = int(data[VALUE].num_nodes)
        relations = list(data.relations)
        self.kinds: dict[tuple, tuple[int, int]] = {}  # edge type -> (edge kind, attribute or -1)
        for attribute, relation in enumerate(relations):
            self.kinds[(VALUE, f"rev_{relation}", PRODUCT)] = (EdgeKind.VALUE_TO_PRODUCT, attribute)
            self.kinds[(PRODUCT, relation, VALUE)] = (EdgeKind.PRODUCT_TO_VALUE, attribute)
        self.kinds[(CATEGORY, f"rev_{IN_CATEGORY}", PRODUCT)] = (EdgeKind.CATEGORY_TO_PRODUCT, -1)
        self.kinds[(PRODUCT, IN_CATEGORY, CATEGORY)] = (EdgeKind.PRODUCT_TO_CATEGORY, -1)
        self.kinds[(CATEGORY, CHILD_OF, CATEGORY)] = (EdgeKind.CHILD_TO_PARENT, -1)
        self.kinds[(CATEGORY, f"rev_{CHILD_OF}", CATEGORY)] = (EdgeKind.PARENT_TO_CHILD, -1)
        if behaviour_edge_kind is not None:
            self.kinds.update({edge_type: (behaviour_edge_kind, -1) for edge_type in behaviour})

    def sample(self, products: Tensor, hidden_pairs: Tensor, generator: torch.Generator) -> Subgraph:
        """Subgraph around ``products`` [B] without the ``hidden_pairs`` [H] (keys ``p * V + v``)."""
        self.sampler.batch_generator = generator
        try:
            out = self.sampler.sample_from_nodes(NodeSamplerInput(input_id=None, node=products, input_type=PRODUCT))
        finally:
            self.sampler.batch_generator = None
        nodes = {t: out.node.get(t, torch.zeros(0, dtype=torch.long)) for t in (PRODUCT, VALUE, CATEGORY)}
        offset, start = {}, 0
        for node_type in (PRODUCT, VALUE, CATEGORY):
            offset[node_type] = start
            start += nodes[node_type].numel()

        sources, targets, kinds, attributes = [], [], [], []
        for edge_type, row in out.row.items():
            if row.numel() == 0:
                continue
            col = out.col[edge_type]
            kind, attribute = self.kinds[edge_type]
            src_type, _, dst_type = edge_type
            if kind in FACT_EDGE_KINDS and hidden_pairs.numel():
                product_local, value_local = (col, row) if kind == EdgeKind.VALUE_TO_PRODUCT else (row, col)
                keys = pair_key(nodes[PRODUCT][product_local], nodes[VALUE][value_local], self.num_values)
                keep = ~torch.isin(keys, hidden_pairs)
                row, col = row[keep], col[keep]
            sources.append(row + offset[src_type])
            targets.append(col + offset[dst_type])
            kinds.append(torch.full((row.numel(),), int(kind), dtype=torch.long))
            attributes.append(torch.full((row.numel(),), attribute, dtype=torch.long))

        empty = torch.zeros(0, dtype=torch.long)
        edge_index = torch.stack([torch.cat(sources) if sources else empty, torch.cat(targets) if targets else empty])
        product_nodes, value_nodes = nodes[PRODUCT], nodes[VALUE]
        node_kind = torch.cat([torch.full((nodes[t].numel(),), int(_NODE_KIND[t]), dtype=torch.long) for t in (PRODUCT, VALUE, CATEGORY)])
        node_key = torch.cat([self.product_category[product_nodes], value_nodes, nodes[CATEGORY]])
        node_attribute = torch.cat(
            [torch.full_like(product_nodes, -1), self.value_attribute[value_nodes], torch.full_like(nodes[CATEGORY], -1)]
        )
        return Subgraph(
            node_kind=node_kind,
            node_key=node_key,
            node_attribute=node_attribute,
            edge_index=edge_index,
            edge_kind=torch.cat(kinds) if kinds else empty,
            edge_attribute=torch.cat(attributes) if attributes else empty,
        )
