"""From the modality streams to one product vector: modality pooling, then structure aggregation.

1. **Modality pooling.** Each stream is pooled (text: its first token; knowledge: the graph
   token; image and any extra modality: the mean of its tokens) and all are mixed with importance
   weights computed from the pooled vectors themselves (as SCALE learns modality
   importance). An absent modality gets weight exactly zero: its placeholder informs the
   other streams through attention, but is never passed off as content.
2. **Structure aggregation (K3M).** The fused vector attends over the product's
   (attribute, value) neighbours; a learned *null neighbour* is always present, so a
   product without known facts attends to it instead of to nothing.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ModalityPooling(nn.Module):
    """Importance-weighted mix of pooled stream vectors."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, pooled: Tensor, present: Tensor) -> tuple[Tensor, Tensor]:
        """``pooled`` [B, M, d], ``present`` [B, M] bool (at least one True per row).

        Returns:
            (fused [B, d], weights [B, M]); absent modalities have weight 0.
        """
        logits = self.score(pooled).squeeze(-1).float()  # [B, M]
        logits = logits.masked_fill(~present, float("-inf"))
        weights = torch.softmax(logits, dim=-1)  # [B, M]
        fused = (weights.unsqueeze(-1).to(pooled.dtype) * pooled).sum(1)  # [B, d]
        return fused, weights


class StructureAggregation(nn.Module):
    """Attention from the fused product vector over its (attribute, value) neighbours."""

    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.null = nn.Parameter(torch.randn(1, 1, hidden) * 0.02)  # [1, 1, d]
        self.norm_query = nn.LayerNorm(hidden)
        self.attention = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)
        self.norm_ffn = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(nn.Linear(hidden, 4 * hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * hidden, hidden))
        self.norm_out = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, product: Tensor, neighbours: Tensor, neighbour_mask: Tensor) -> Tensor:
        """``product`` [B, d]; ``neighbours`` [B, K, d] with ``neighbour_mask`` [B, K] (True: real).

        Returns:
            [B, d] the product vector used for link prediction.
        """
        batch = product.shape[0]
        keys = torch.cat([self.null.expand(batch, 1, -1).to(neighbours.dtype), neighbours], dim=1)  # [B, 1+K, d]
        pad = torch.cat([neighbour_mask.new_zeros(batch, 1), ~neighbour_mask], dim=1)  # [B, 1+K]
        query = self.norm_query(product).unsqueeze(1)  # [B, 1, d]
        h = product + self.dropout(self.attention(query, keys, keys, key_padding_mask=pad, need_weights=False)[0].squeeze(1))
        h = h + self.dropout(self.ffn(self.norm_ffn(h)))
        return self.norm_out(h)
