"""Token ids of a text column, tokenised a chunk at a time when first read.

Why: tokenising every title and description up front took 11 s at 100k products and
kept one Python ``int`` object per token (about 36 bytes each), so start-up time and
memory grew with the catalog before the first step. A :class:`TokenTable` tokenises the
:data:`CHUNK` texts around a product the first time one of them is read and keeps them as one
``int32`` array plus offsets (4 bytes a token); a step touches only its batch's chunks.

Reading a row gives the same ``list[int]`` the eager table gave (the tokenizer is called
on the same texts with the same truncation), so batches are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

CHUNK = 256
"""Texts tokenised together (one call of the fast tokenizer). Why not more: batches, validation
facts and stage 0's sample read products all over the catalog, and a row read tokenises its
whole chunk; with 4,096 the validation pass before the first joint step tokenised the whole of
a 1M-product catalog (27 s) for 1,000 facts. 256 texts still amortise the call."""


class TokenTable(Sequence):
    """``table[p]``: the token ids of ``texts[p]`` (a fresh list); tokenised on first read.

    Args:
        texts: the column (titles or descriptions), one string per product.
        encode: texts -> their token id lists (the tokenizer with its truncation).
        chunk: texts tokenised per call.
    """

    def __init__(self, texts: Sequence[str], encode: Callable[[list[str]], list[list[int]]], chunk: int = CHUNK) -> None:
        self.texts, self.encode, self.chunk = texts, encode, chunk
        self._chunks: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # chunk -> (ids [N] int32, offsets [n + 1] int64)

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> list[int]:  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]  # type: ignore[return-value]
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"token table index {index} out of range ({len(self)} texts)")
        ids, offsets = self._chunk(index // self.chunk)
        row = index % self.chunk
        return ids[offsets[row] : offsets[row + 1]].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        for index in range(len(self)):
            yield self[index]

    @property
    def tokenised(self) -> int:
        """Texts tokenised so far (the chunks read)."""
        return sum(offsets.shape[0] - 1 for _, offsets in self._chunks.values())

    @property
    def nbytes(self) -> int:
        """Bytes held by the tokenised chunks."""
        return sum(ids.nbytes + offsets.nbytes for ids, offsets in self._chunks.values())

    def _chunk(self, number: int) -> tuple[np.ndarray, np.ndarray]:
        found = self._chunks.get(number)
        if found is None:
            start = number * self.chunk
            rows = self.encode(list(self.texts[start : start + self.chunk]))
            lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
            offsets = np.zeros(len(rows) + 1, dtype=np.int64)
            np.cumsum(lengths, out=offsets[1:])
            ids = np.fromiter((t for r in rows for t in r), dtype=np.int32, count=int(offsets[-1]))
            found = self._chunks[number] = (ids, offsets)
        return found
