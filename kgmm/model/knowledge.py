"""Knowledge encoder: (attribute, value) tokens and a relational GNN over the sampled subgraph.

The knowledge stream of a product is ``[graph token, pair_1, ..., pair_K]``:

* a *pair token* is ``LayerNorm(attribute embedding + value embedding)`` for one of the
  product's known (attribute, value) facts (the ones held out for link prediction are
  not among them);
* the *graph token* is the product's node state after a relational GNN from
  ``torch_geometric.nn`` over the subgraph the neighbour sampler drew around it
  (product <- values <- other products, product <- category <- parent category).

Node features are built from shared embedding tables, never from product ids, so the
model is inductive: a product is described by its category and its values. The GNN
relations are the six edge *kinds* (value->product, product->value, and the category
edges in both directions); which attribute a product-value edge carries enters through
the value's own embedding (value + attribute) and, for the transformer GNN, as an edge
feature. One relation per attribute would make RGCN loop over ~1,200 relations per layer.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..schema import KNOWLEDGE_EDGE_KINDS, NodeKind


class KnowledgeEncoder(nn.Module):
    """Embedding tables, pair tokens and the graph token.

    Args:
        num_attributes: attribute (= relation) count of the snapshot.
        num_values: value count.
        num_categories: category count.
        hidden: the model's width ``d``.
        gnn: a module ``(x [n, d], edge_index [2, E], edge_kind [E], edge_feature [E, d]) -> [n, d]``.
        num_edge_kinds: 6, or 7 with behaviour edges (:func:`kgmm.schema.num_edge_kinds`).
    """

    def __init__(self, num_attributes: int, num_values: int, num_categories: int, hidden: int, gnn: nn.Module,
                 num_edge_kinds: int = KNOWLEDGE_EDGE_KINDS) -> None:
        super().__init__()
        self.attribute = nn.Embedding(num_attributes + 1, hidden)  # last row: "no attribute" (category edges)
        self.value = nn.Embedding(max(num_values, 1), hidden)
        self.category = nn.Embedding(num_categories + 1, hidden)  # last row: "no category"
        self.node_type = nn.Embedding(3, hidden)
        self.edge_kind = nn.Embedding(num_edge_kinds, hidden)
        self.pair_norm = nn.LayerNorm(hidden)
        self.node_norm = nn.LayerNorm(hidden)
        self.gnn = gnn
        self.num_attributes = num_attributes
        self.num_categories = num_categories
        for table in (self.attribute, self.value, self.category, self.node_type, self.edge_kind):
            nn.init.normal_(table.weight, std=0.02)

    def pair_tokens(self, attribute: Tensor, value: Tensor) -> Tensor:
        """``attribute``, ``value``: [B, K] ids (padding rows hold any valid id) -> [B, K, d]."""
        return self.pair_norm(self.attribute(attribute) + self.value(value))

    def value_embedding(self, value: Tensor) -> Tensor:
        """Tail embeddings for link scoring: [...] value ids -> [..., d]."""
        return self.value(value)

    def graph_tokens(
        self,
        node_kind: Tensor,
        node_key: Tensor,
        node_attribute: Tensor,
        edge_index: Tensor,
        edge_kind: Tensor,
        edge_attribute: Tensor,
        num_seeds: int,
    ) -> Tensor:
        """GNN state of the first ``num_seeds`` nodes (the batch's products).

        Args:
            node_kind: [n] a :class:`~kgmm.schema.NodeKind`.
            node_key: [n] category id for products (-1: none), value id, category id.
            node_attribute: [n] attribute of value nodes, -1 otherwise.
            edge_index: [2, E] local source -> destination (towards the seeds).
            edge_kind: [E] a :class:`~kgmm.schema.EdgeKind`.
            edge_attribute: [E] attribute of product-value edges, -1 otherwise.
            num_seeds: B; nodes ``0..B-1`` are the batch's products in batch order.

        Returns:
            [B, d]
        """
        is_value = node_kind == NodeKind.VALUE
        no_category = self.num_categories
        category_id = torch.where(node_key >= 0, node_key, torch.full_like(node_key, no_category))
        x = self.node_type(node_kind)  # [n, d]
        x = x + torch.where(
            is_value.unsqueeze(-1),
            self.value(torch.where(is_value, node_key, torch.zeros_like(node_key))),
            self.category(torch.where(is_value, torch.full_like(node_key, no_category), category_id)),
        )
        attr = torch.where(node_attribute >= 0, node_attribute, torch.full_like(node_attribute, self.num_attributes))
        x = self.node_norm(x + self.attribute(attr) * is_value.unsqueeze(-1))
        edge_attr = torch.where(edge_attribute >= 0, edge_attribute, torch.full_like(edge_attribute, self.num_attributes))
        edge_feature = self.edge_kind(edge_kind) + self.attribute(edge_attr)  # [E, d]
        x = self.gnn(x, edge_index, edge_kind, edge_feature)  # [n, d]
        return x[:num_seeds]


class RGCNStack(nn.Module):
    """Residual ``RGCNConv`` layers over the edge kinds (mean aggregation)."""

    def __init__(self, hidden: int, layers: int, heads: int, dropout: float, kinds: int = KNOWLEDGE_EDGE_KINDS) -> None:
        super().__init__()
        from torch_geometric.nn import RGCNConv

        self.convs = nn.ModuleList(RGCNConv(hidden, hidden, kinds, aggr="mean") for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, edge_index: Tensor, edge_kind: Tensor, edge_feature: Tensor) -> Tensor:
        for conv, norm in zip(self.convs, self.norms):
            x = norm(x + self.dropout(torch.nn.functional.gelu(conv(x, edge_index, edge_kind))))
        return x


class TransformerStack(nn.Module):
    """Residual ``TransformerConv`` layers with the edge's kind + attribute as edge feature."""

    def __init__(self, hidden: int, layers: int, heads: int, dropout: float, kinds: int = KNOWLEDGE_EDGE_KINDS) -> None:
        super().__init__()
        from torch_geometric.nn import TransformerConv

        self.convs = nn.ModuleList(
            TransformerConv(hidden, hidden // heads, heads=heads, edge_dim=hidden, dropout=dropout) for _ in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, edge_index: Tensor, edge_kind: Tensor, edge_feature: Tensor) -> Tensor:
        for conv, norm in zip(self.convs, self.norms):
            x = norm(x + self.dropout(torch.nn.functional.gelu(conv(x, edge_index, edge_feature))))
        return x


class NoGNN(nn.Module):
    """No message passing: the graph token is the product's category and type only."""

    def __init__(self, hidden: int, layers: int, heads: int, dropout: float, kinds: int = KNOWLEDGE_EDGE_KINDS) -> None:
        super().__init__()

    def forward(self, x: Tensor, edge_index: Tensor, edge_kind: Tensor, edge_feature: Tensor) -> Tensor:
        return x
