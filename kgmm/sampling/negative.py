"""Type-constrained negatives for attribute completion.

For a positive ``(product, attribute, value)`` a useful negative keeps the
product and the attribute and swaps the value for another value *of the same
attribute* ("colour=red" -> "colour=blue", never "colour=cotton"): a negative
from another attribute is trivially separable and teaches the model nothing.
It must also not be a triple known to be true (a product can have several
colours), or the model is trained against facts.

Everything is vectorised: triples are encoded as exact mixed-radix int64 keys
``(product * A + attribute) * V + value`` (no hashing collisions), the known
keys are sorted once, and membership is a ``searchsorted``.  Draws that hit a
known triple are redrawn for a few rounds; the rare rows still unresolved
(attributes with very few remaining values) fall back to exact enumeration
over their candidate list, so every row with at least one valid negative gets
one and every draw is uniform over the valid values.

Rows with *no* valid negative - an attribute with a single value, or a
product already known to have every value of the attribute - are reported
through :attr:`NegativeSample.mask` (``False``, value ``-1``) rather than
silently dropped, so callers keep positive/negative alignment and decide
themselves (``NegativeSample.valid_triples`` drops them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Union

import torch
from torch import Tensor

from .select import segment_arange

Candidates = Union[Sequence[Tensor], Mapping[int, Tensor]]

_INT63 = 2**63 - 1


@dataclass
class NegativeSample:
    """``k`` negatives per positive, aligned with the positives.

    Attributes:
        value: ``[P, k]`` int64 negative value ids; ``-1`` where ``mask`` is
            ``False``.
        mask: ``[P, k]`` bool; ``False`` where the positive's attribute has no
            value left that is not known to be true for that product.
    """

    value: Tensor
    mask: Tensor

    def valid_triples(self, positives: Tensor) -> tuple[Tensor, Tensor]:
        """Flatten to ``(negatives [M, 3], positive_index [M])``, dropping masked rows."""
        rows, cols = self.mask.nonzero(as_tuple=True)  # [M], [M]
        neg = positives[rows].clone()
        neg[:, 2] = self.value[rows, cols]
        return neg, rows


def _membership(sorted_keys: Tensor, query: Tensor) -> Tensor:
    """``query`` in ``sorted_keys`` (both int64), via binary search."""
    if sorted_keys.numel() == 0:
        return torch.zeros(query.shape, dtype=torch.bool)
    idx = torch.searchsorted(sorted_keys, query).clamp_(max=sorted_keys.numel() - 1)
    return sorted_keys[idx] == query


KNOWN_CHUNK = 1 << 20
"""Known triples keyed at a time when a sampler is built."""


def _known_columns(known: Tensor | tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """``known`` as three int64 columns (product, attribute, value), without copying columns."""
    if isinstance(known, tuple):
        return tuple(torch.as_tensor(column, dtype=torch.long).view(-1) for column in known)
    known = torch.as_tensor(known, dtype=torch.long).view(-1, 3)
    return known[:, 0], known[:, 1], known[:, 2]


class AttributeNegativeSampler:
    """Draw same-attribute negatives that are never known-true triples.

    Args:
        candidates: per attribute, the value ids that may serve as negatives
            (a sequence indexed by attribute id, or a mapping attribute ->
            ids; missing attributes have no candidates).  Duplicates are
            removed.
        known: ``[K, 3]`` int64 ``(product, attribute, value)`` triples known
            to be true (pass train + validation + test facts), or the same as three
            ``[K]`` columns (no ``[K, 3]`` copy of a large graph's facts); none of
            them is ever returned as a negative.  The positive itself is always
            excluded as well, even if absent from ``known``.
        max_rounds: rejection rounds before the exact fallback.
    """

    def __init__(self, candidates: Candidates, known: Tensor, max_rounds: int = 6) -> None:
        if isinstance(candidates, Mapping):
            num_attrs = (max(int(a) for a in candidates) + 1) if candidates else 0
            per_attr = [
                torch.as_tensor(candidates.get(a, []), dtype=torch.long) for a in range(num_attrs)
            ]
        else:
            per_attr = [torch.as_tensor(c, dtype=torch.long) for c in candidates]
        per_attr = [torch.unique(c.view(-1)) for c in per_attr]
        columns = _known_columns(known)
        self.num_attributes = len(per_attr)
        counts = torch.tensor([c.numel() for c in per_attr], dtype=torch.long)  # [A]
        self.cand_ptr = torch.zeros(self.num_attributes + 1, dtype=torch.long)  # [A + 1]
        torch.cumsum(counts, 0, out=self.cand_ptr[1:])
        self.cand_values = (
            torch.cat(per_attr) if per_attr else torch.zeros(0, dtype=torch.long)
        )  # [C]
        if self.cand_values.numel() and int(self.cand_values.min()) < 0:
            raise ValueError("candidate value ids must be non-negative")
        max_value = max(
            int(self.cand_values.max()) if self.cand_values.numel() else -1,
            int(columns[2].max()) if columns[2].numel() else -1,
        )
        self.num_values = max_value + 1  # radix V of the key encoding
        self.max_rounds = int(max_rounds)

        # Sorted (attribute, value) keys of all candidates, to test whether a
        # known triple's value is a candidate of its attribute.
        cand_attr = torch.repeat_interleave(torch.arange(self.num_attributes), counts)  # [C]
        self._cand_pair = torch.sort(cand_attr * self.num_values + self.cand_values).values  # [C]

        # Known triples restricted to candidate values: exactly the ones that
        # can collide with a draw, so counting them per (product, attribute)
        # gives the number of values left to draw from. A chunk at a time: the
        # temporaries of every fact at once were gigabytes at a million products.
        keys = [torch.zeros(0, dtype=torch.long)]
        for start in range(0, columns[0].numel(), KNOWN_CHUNK):
            p, a, v = (column[start : start + KNOWN_CHUNK] for column in columns)
            if min(int(p.min()), int(a.min()), int(v.min())) < 0:
                raise ValueError("known triples must hold non-negative ids")
            kept = (a < self.num_attributes) & _membership(self._cand_pair, a * self.num_values + v)
            p, a, v = p[kept], a[kept], v[kept]
            self._check_range(p)
            keys.append(self._encode(p, a, v))
        keys = torch.cat(keys)
        # a snapshot's facts usually come sorted already: then unique neighbours suffice (no sort)
        ordered = keys.numel() < 2 or bool((keys[1:] >= keys[:-1]).all())
        self.known_keys = torch.unique_consecutive(keys) if ordered else torch.unique(keys)  # [K'] sorted
        del keys
        # a product's known candidate values, at most: a (product, attribute) whose attribute has
        # more candidates than this has a valid negative without any search (:meth:`has_valid`)
        known_products = torch.div(self.known_keys, max(self.num_attributes, 1) * max(self.num_values, 1), rounding_mode="floor")
        self.known_per_product = torch.bincount(known_products).to(torch.int32)  # [max product + 1]

    def _check_range(self, products: Tensor | None) -> None:
        if products is None or products.numel() == 0:
            return
        top = (int(products.max()) + 1) * max(self.num_attributes, 1) * max(self.num_values, 1)
        if top > _INT63:
            raise OverflowError("product x attribute x value ids do not fit an int64 key")

    def _encode(self, p: Tensor, a: Tensor, v: Tensor) -> Tensor:
        return (p * self.num_attributes + a) * self.num_values + v

    def num_valid(self, positives: Tensor) -> Tensor:
        """``[P]`` number of values that are valid negatives for each positive."""
        p, a, v = positives.to(torch.long).unbind(1)
        count = self.cand_ptr[a + 1] - self.cand_ptr[a]  # [P]
        base = self._encode(p, a, torch.zeros_like(p))  # [P] key of (p, a, 0)
        known_pa = torch.searchsorted(self.known_keys, base + self.num_values) - torch.searchsorted(
            self.known_keys, base
        )  # [P] known-true candidate values of (p, a)
        v_ok = v < self.num_values
        pos_is_cand = v_ok & _membership(
            self._cand_pair, a * self.num_values + v.clamp(max=max(self.num_values - 1, 0))
        )
        pos_is_known = v_ok & _membership(self.known_keys, base + v)
        return count - known_pa - (pos_is_cand & ~pos_is_known).long()

    def has_valid(self, positives: Tensor) -> Tensor:
        """``[P]`` bool: ``num_valid(positives) > 0``, searched only where it could be false.

        A product has at most :attr:`known_per_product` known candidate values in all, and the
        positive itself removes at most one more, so an attribute with more candidates than
        that has a valid negative whatever the product knows: only the other rows (attributes
        with few values) need :meth:`num_valid`'s searches of every known triple. The same
        answer, much less work on a large graph (the eligibility of every training fact at
        start-up).
        """
        p, a = positives[:, 0].to(torch.long), positives[:, 1].to(torch.long)
        count = self.cand_ptr[a + 1] - self.cand_ptr[a]  # [P]
        table = self.known_per_product
        known = torch.zeros_like(p) if table.numel() == 0 else torch.where(p < table.numel(), table[p.clamp(max=table.numel() - 1)], 0)
        out = count > known + 1
        unsure = (~out).nonzero().view(-1)
        if unsure.numel():
            out[unsure] = self.num_valid(positives[unsure]) > 0
        return out

    def sample(
        self, positives: Tensor, num_negatives: int, generator: torch.Generator | None = None
    ) -> NegativeSample:
        """Draw ``num_negatives`` negatives (with replacement) per positive.

        Args:
            positives: ``[P, 3]`` int64 ``(product, attribute, value)``.
            num_negatives: ``k`` draws per positive.
            generator: source of randomness (for reproducible batches).
        """
        positives = torch.as_tensor(positives, dtype=torch.long).view(-1, 3)
        k = int(num_negatives)
        n_pos = positives.size(0)
        if positives.numel() and int(positives.min()) < 0:
            raise ValueError("positive triples must hold non-negative ids")
        if positives.numel() and int(positives[:, 1].max()) >= self.num_attributes:
            raise ValueError("positive attribute id outside the candidate table")
        self._check_range(positives[:, 0])
        has_valid = self.has_valid(positives)  # [P]

        # Flatten to one entry per (positive, draw) with a valid negative.
        rows = has_valid.nonzero().view(-1).repeat_interleave(k)  # [N]
        p, a, v = positives[rows].unbind(1)  # [N] each
        start = self.cand_ptr[a]  # [N]
        count = self.cand_ptr[a + 1] - start  # [N], >= 1 for these rows
        out = torch.empty(rows.numel(), dtype=torch.long)  # [N]
        todo = torch.arange(rows.numel())  # entries still without a valid draw
        for _ in range(self.max_rounds):
            if todo.numel() == 0:
                break
            u = torch.rand(todo.numel(), dtype=torch.float64, generator=generator)
            c = count[todo]
            draw = self.cand_values[start[todo] + torch.minimum((u * c.double()).long(), c - 1)]
            out[todo] = draw
            bad = (draw == v[todo]) | _membership(
                self.known_keys, self._encode(p[todo], a[todo], draw)
            )
            todo = todo[bad]
        if todo.numel():
            out[todo] = self._exact(p[todo], a[todo], v[todo], generator)

        value = torch.full((n_pos, k), -1, dtype=torch.long)  # [P, k]
        mask = has_valid.unsqueeze(1).expand(n_pos, k).clone()  # [P, k]
        value[mask] = out
        return NegativeSample(value=value, mask=mask)

    def _exact(self, p: Tensor, a: Tensor, v: Tensor, generator: torch.Generator | None) -> Tensor:
        """Uniform valid value per entry by enumerating its candidate list.

        Only used for the few entries rejection could not resolve, so the
        O(candidates) cost per entry stays small.
        """
        count = self.cand_ptr[a + 1] - self.cand_ptr[a]  # [L]
        total = int(count.sum())
        seg = torch.repeat_interleave(torch.arange(count.numel()), count, output_size=total)  # [T]
        vals = self.cand_values[self.cand_ptr[a][seg] + segment_arange(count, total)]  # [T]
        valid = (vals != v[seg]) & ~_membership(self.known_keys, self._encode(p[seg], a[seg], vals))
        score = torch.where(
            valid, torch.rand(total, dtype=torch.float64, generator=generator), -1.0
        )
        best = torch.full((count.numel(),), -2.0, dtype=torch.float64)
        best.scatter_reduce_(0, seg, score, reduce="amax")
        winner = torch.full((count.numel(),), total, dtype=torch.long)
        hit = (score == best[seg]) & valid
        winner.scatter_reduce_(0, seg[hit], torch.arange(total)[hit], reduce="amin")
        return vals[winner]


def sample_attribute_negatives(
    positives: Tensor,
    candidates: Candidates,
    num_negatives: int,
    known: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> NegativeSample:
    """One-shot wrapper around :class:`AttributeNegativeSampler`.

    ``known`` defaults to ``positives`` (every positive is a known fact).
    Build the sampler once instead when drawing for many batches.
    """
    if known is None:
        known = positives
    sampler = AttributeNegativeSampler(candidates, known)
    return sampler.sample(positives, num_negatives, generator=generator)
