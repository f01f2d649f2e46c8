"""A column of strings (titles, descriptions, ids) as one UTF-8 buffer and offsets.

Why: a snapshot holds a title and a description for every product. As Python strings that is
about 60 bytes of object header a string, and, read from a database row by row, the strings
end up spread over memory pages shared with the rows' freed tuples, which the process cannot
give back: at a million products the texts held about 0.5 GB. Here a column is one ``bytes``
object plus one int64 offset a string; a string is decoded when it is read, which costs far
less than the model's work on it.

A :class:`TextColumn` is a read-only ``Sequence[str]``: code that indexes, slices, iterates or
compares it with a list reads the same strings it read from a list.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import overload

import numpy as np

CHUNK = 4096
"""Strings encoded (or decoded for iteration) at a time."""
SURROGATES = "surrogatepass"
"""A lone surrogate (a Neo4j string, a hand-made snapshot) is kept as it was: a list held it, so
a column must too, never fail on it."""


class TextColumn(Sequence[str]):
    """``len(offsets) - 1`` strings; string ``i`` is ``data[offsets[i]:offsets[i + 1]]`` in UTF-8."""

    __slots__ = ("_data", "_offsets")

    def __init__(self, data: bytes, offsets: np.ndarray) -> None:
        if offsets.ndim != 1 or offsets.size == 0 or offsets[0] != 0 or offsets[-1] != len(data):
            raise ValueError("offsets must start at 0 and end at the length of the data")
        self._data = data
        self._offsets = offsets.astype(np.int64, copy=False)

    @classmethod
    def of(cls, strings: Iterable[str]) -> "TextColumn":
        """The column of ``strings`` (any iterable, consumed a chunk at a time)."""
        column = TextColumnBuilder()
        column.extend(strings)
        return column.finish()

    def __len__(self) -> int:
        return self._offsets.size - 1

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return [self[i] for i in range(start, stop, step)]
            return list(_decoded(self._data, self._offsets[start : max(start, stop) + 1].tolist()))
        count = len(self)
        if index < 0:
            index += count
        if not 0 <= index < count:
            raise IndexError("text column index out of range")
        start, end = self._offsets[index], self._offsets[index + 1]
        return self._data[start:end].decode("utf-8", SURROGATES)

    def __iter__(self) -> Iterator[str]:
        return _decoded(self._data, self._offsets.tolist())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TextColumn):
            return self._data == other._data and np.array_equal(self._offsets, other._offsets)
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-sequence semantics, as a list

    def __repr__(self) -> str:
        shown = ", ".join(repr(s) for s in self[:3])
        return f"TextColumn([{shown}{', ...' if len(self) > 3 else ''}], {len(self)} strings)"

    @property
    def nbytes(self) -> int:
        """Bytes held: the text and its offsets."""
        return len(self._data) + self._offsets.nbytes

    def nonempty(self) -> np.ndarray:
        """[N] bool: the string is not empty (no decoding)."""
        return np.diff(self._offsets) > 0

    def json_chunks(self) -> Iterator[str]:
        """``json.dumps(list(self), ensure_ascii=False)`` in pieces, without the whole list or string."""
        yield "["
        for start in range(0, len(self), CHUNK):
            piece = json.dumps(self[start : start + CHUNK], ensure_ascii=False)[1:-1]  # the C encoder, a chunk at a time
            yield piece if start == 0 else ", " + piece
        yield "]"


def _decoded(data: bytes, offsets: list[int]) -> Iterator[str]:
    """The strings between consecutive ``offsets`` of ``data``."""
    return (data[start:end].decode("utf-8", SURROGATES) for start, end in zip(offsets, offsets[1:]))


class TextColumnBuilder:
    """Appends strings to a column a chunk at a time (no list of every string is ever kept)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._lengths: list[np.ndarray] = []

    def extend(self, strings: Iterable[str]) -> None:
        chunk: list[bytes] = []
        for text in strings:
            chunk.append(text.encode("utf-8", SURROGATES))
            if len(chunk) == CHUNK:
                self._add(chunk)
                chunk = []
        if chunk:
            self._add(chunk)

    def _add(self, encoded: list[bytes]) -> None:
        self._parts.append(b"".join(encoded))
        self._lengths.append(np.fromiter(map(len, encoded), np.int64, len(encoded)))

    def finish(self) -> TextColumn:
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, np.int64)
        offsets = np.zeros(lengths.size + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        data = b"".join(self._parts)
        self._parts, self._lengths = [], []
        return TextColumn(data, offsets)
