"""Initial-interactive fusion (K3M): co-attention between streams that stay separate.

Each stream (K3M's text, image and knowledge, then every extra modality of
``model.extra_modalities``) keeps its own tokens and parameters.
In every interaction layer a stream

1. attends to itself (its *own* features),
2. attends to the tokens of every other stream (its *cross-modal* features), and
3. combines the two with a fusion strategy: ``mean``, ``gated`` (a learned sigmoid gate
   per feature) or ``gumbel`` (a hard, straight-through Gumbel-softmax choice per token
   between own and cross features, so a noisy modality can be ignored outright).

Streams are updated in parallel from the previous layer's states, so no stream reads
another's already-fused output: the streams interact without collapsing into one
sequence, which is what keeps a missing or wrong modality from contaminating the others.
Padding, absent modalities (whose stream is one learned placeholder token) and other
streams' padding are excluded through key-padding masks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

STREAMS = ("text", "image", "knowledge")


class MeanFusion(nn.Module):
    """``(own + cross) / 2``."""

    def __init__(self, hidden: int, tau: float = 1.0) -> None:
        super().__init__()

    def forward(self, own: Tensor, cross: Tensor) -> Tensor:
        return (own + cross) / 2


class GatedFusion(nn.Module):
    """``g * own + (1 - g) * cross`` with ``g = sigmoid(W [own; cross])`` per feature."""

    def __init__(self, hidden: int, tau: float = 1.0) -> None:
        super().__init__()
        self.gate = nn.Linear(2 * hidden, hidden)

    def forward(self, own: Tensor, cross: Tensor) -> Tensor:
        gate = torch.sigmoid(self.gate(torch.cat([own, cross], dim=-1)))  # [B, T, d]
        return gate * own + (1 - gate) * cross


class GumbelFusion(nn.Module):
    """A hard choice per token between own and cross features.

    Training samples the choice with a straight-through Gumbel-softmax (temperature
    ``tau``); evaluation takes the arg-max, so inference is deterministic.
    """

    def __init__(self, hidden: int, tau: float = 1.0) -> None:
        super().__init__()
        self.choice = nn.Linear(2 * hidden, 2)
        self.tau = tau

    def forward(self, own: Tensor, cross: Tensor) -> Tensor:
        logits = self.choice(torch.cat([own, cross], dim=-1)).float()  # [B, T, 2]
        if self.training:
            weights = F.gumbel_softmax(logits, tau=self.tau, hard=True)
        else:
            weights = F.one_hot(logits.argmax(-1), 2).to(logits.dtype)
        weights = weights.to(own.dtype)
        return weights[..., :1] * own + weights[..., 1:] * cross


class StreamBlock(nn.Module):
    """One stream's part of an interaction layer (pre-norm residual blocks)."""

    def __init__(self, hidden: int, heads: int, dropout: float, fusion: nn.Module) -> None:
        super().__init__()
        self.norm_self = nn.LayerNorm(hidden)
        self.self_attention = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)
        self.norm_query = nn.LayerNorm(hidden)
        self.norm_context = nn.LayerNorm(hidden)
        self.cross_attention = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)
        self.fusion = fusion
        self.norm_ffn = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(nn.Linear(hidden, 4 * hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * hidden, hidden))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, pad: Tensor, context: Tensor, context_pad: Tensor) -> Tensor:
        """``x`` [B, T, d] with ``pad`` [B, T] (True: ignore); ``context`` [B, U, d], ``context_pad`` [B, U]."""
        h = self.norm_self(x)
        own = x + self.dropout(self.self_attention(h, h, h, key_padding_mask=pad, need_weights=False)[0])
        q, c = self.norm_query(own), self.norm_context(context)
        cross = own + self.dropout(self.cross_attention(q, c, c, key_padding_mask=context_pad, need_weights=False)[0])
        fused = self.fusion(own, cross)  # [B, T, d]
        return fused + self.dropout(self.ffn(self.norm_ffn(fused)))


class InteractionLayer(nn.Module):
    """Co-attention across all streams (K3M's three plus any extra modality); each has its own block.

    Args:
        hidden: width ``d``.
        heads: attention heads.
        dropout: dropout rate.
        fusion: class of the fusion strategy (from :data:`kgmm.registry.FUSIONS`).
        tau: Gumbel temperature (used by ``gumbel`` only).
        streams: stream names, K3M's three first, then any extra modalities (each gets a block).
    """

    def __init__(self, hidden: int, heads: int, dropout: float, fusion: type, tau: float, streams: tuple[str, ...] = STREAMS) -> None:
        super().__init__()
        self.blocks = nn.ModuleDict({name: StreamBlock(hidden, heads, dropout, fusion(hidden, tau)) for name in streams})

    def forward(self, streams: dict[str, tuple[Tensor, Tensor]]) -> dict[str, tuple[Tensor, Tensor]]:
        """``streams``: name -> (tokens [B, T_s, d], pad [B, T_s]); returns the same layout."""
        out = {}
        for name, (x, pad) in streams.items():
            others = [streams[o] for o in self.blocks if o != name and o in streams]
            context = torch.cat([t for t, _ in others], dim=1)  # [B, U, d]
            context_pad = torch.cat([p for _, p in others], dim=1)  # [B, U]
            out[name] = (self.blocks[name](x, pad, context, context_pad), pad)
        return out
