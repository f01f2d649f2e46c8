"""Link scores for (product, attribute, value): the relation is the attribute.

Every score function has one signature, ``(head [N, d], relation [N], tail [N, M, d]) ->
[N, M]``: ``M`` candidate values per head, so training (1 positive + k negatives) and
ranking (every value of the attribute) share the code. Higher is more plausible.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ScoreFunction(nn.Module):
    """Base: a relation embedding per attribute."""

    def __init__(self, num_relations: int, hidden: int, relation_dim: int | None = None) -> None:
        super().__init__()
        self.relation = nn.Embedding(max(num_relations, 1), relation_dim or hidden)
        nn.init.normal_(self.relation.weight, std=0.1)


class DistMult(ScoreFunction):
    """``<h, r, t>``: a diagonal bilinear form per attribute."""

    def forward(self, head: Tensor, relation: Tensor, tail: Tensor) -> Tensor:
        hr = head * (1 + self.relation(relation))  # [N, d]; 1 + r so the start is a dot product
        return torch.einsum("nd,nmd->nm", hr, tail)


class TransE(ScoreFunction):
    """``-||h + r - t||``: the attribute translates the product onto its value."""

    def forward(self, head: Tensor, relation: Tensor, tail: Tensor) -> Tensor:
        hr = head + self.relation(relation)  # [N, d]
        return -(hr.unsqueeze(1) - tail).float().pow(2).sum(-1).add(1e-9).sqrt()


class RotatE(ScoreFunction):
    """``-||h * r - t||`` in complex space, ``r`` a unit rotation per attribute."""

    def __init__(self, num_relations: int, hidden: int) -> None:
        super().__init__(num_relations, hidden, hidden // 2)
        nn.init.uniform_(self.relation.weight, -torch.pi, torch.pi)

    def forward(self, head: Tensor, relation: Tensor, tail: Tensor) -> Tensor:
        phase = self.relation(relation)  # [N, d/2]
        h_re, h_im = head.chunk(2, dim=-1)
        t_re, t_im = tail.chunk(2, dim=-1)
        r_re, r_im = torch.cos(phase), torch.sin(phase)
        re = (h_re * r_re - h_im * r_im).unsqueeze(1) - t_re  # [N, M, d/2]
        im = (h_re * r_im + h_im * r_re).unsqueeze(1) - t_im
        return -(re.float().pow(2) + im.float().pow(2)).add(1e-9).sqrt().sum(-1)


class Bilinear(ScoreFunction):
    """``h^T diag(r) W t``: a shared full interaction matrix modulated per attribute."""

    def __init__(self, num_relations: int, hidden: int) -> None:
        super().__init__(num_relations, hidden)
        self.weight = nn.Parameter(torch.eye(hidden) + torch.randn(hidden, hidden) * 0.02)

    def forward(self, head: Tensor, relation: Tensor, tail: Tensor) -> Tensor:
        hr = (head * (1 + self.relation(relation))) @ self.weight  # [N, d]
        return torch.einsum("nd,nmd->nm", hr, tail)


class MLPScore(ScoreFunction):
    """An MLP over ``[h * t, r * t, h + r - t]``: no fixed algebra, most flexible."""

    def __init__(self, num_relations: int, hidden: int) -> None:
        super().__init__(num_relations, hidden)
        self.mlp = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def forward(self, head: Tensor, relation: Tensor, tail: Tensor) -> Tensor:
        r = self.relation(relation).unsqueeze(1)  # [N, 1, d]
        h = head.unsqueeze(1)  # [N, 1, d]
        features = torch.cat([(h * tail), (r * tail), (h + r - tail)], dim=-1)  # [N, M, 3d]
        return self.mlp(features).squeeze(-1)
