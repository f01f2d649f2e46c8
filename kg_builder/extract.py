"""Attribute values found in titles and descriptions.

Two kinds of evidence, both conservative because the result becomes part of the graph:
a value the catalog already knows for an attribute among products of the same top-level
category (matched on whole tokens; when one phrase is a known value of several
attributes, the attribute where it is most common in that category wins), and a
measurement next to a dimension word ("213 cm in height", "Weight: 0.8 kg"). Attributes
the product already has from the catalog are left alone: text evidence fills gaps, it
never contradicts a fact.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from functools import lru_cache, reduce
from operator import or_
from typing import Iterable, Mapping

from .records.units import (
    LETTER_RUN,
    CaselessPattern,
    NUMBER_PATTERN,
    UNIT_PATTERN,
    convert,
    is_unit_word,
    rewrite_measurements,
    unit_dimension,
)

MAX_TEXT_CHARS = 20_000
"""Only the start of a very long description is searched (catalog descriptions front-load facts)."""
MAX_VALUE_TOKENS = 6
STOP_VALUES = {"yes", "no", "na", "n/a", "none", "nil", "other", "others", "not applicable", "all", "free size", "null"}
"""Values too generic to be evidence when they appear in free text."""

_TOKEN = re.compile(r"[^\W_]+(?:[.'&+-][^\W_]+)*")
_DIMENSIONS = ("height", "length", "width", "depth", "diameter", "thickness", "weight", "capacity", "volume")
_DIMENSION = "|".join(_DIMENSIONS)
_AFTER = CaselessPattern(rf"(?<![\w.]){NUMBER_PATTERN}\s*({UNIT_PATTERN})\s+(?:in\s+)?({_DIMENSION})\b")
_BEFORE = CaselessPattern(rf"\b({_DIMENSION})\s*(?:of|is|:|-)?\s*{NUMBER_PATTERN}\s*({UNIT_PATTERN})(?![\w])")
_EXPECTED_DIMENSION = {"weight": "mass", "capacity": "volume", "volume": "volume"}
_DIGIT = re.compile(r"\d")
_DIMENSION_WORD = re.compile(_DIMENSION, re.IGNORECASE)
_DIMENSION_LEAD = re.compile(rf"(?:{_DIMENSION})(?:of|is)?", re.IGNORECASE)
_UNIT, _AFTER_WORD, _BEFORE_WORD = 1, 2, 4
"""What a run of letters can be in a match (bits of :func:`_word_kinds`)."""


def tokens(text: str) -> tuple[str, ...]:
    """Word tokens of already folded text; values and text use the same tokenizer."""
    return tuple(_TOKEN.findall(text))


class TextExtractor:
    """Finds (attribute, value, raw) triples in a product's title and description.

    Args:
        vocabulary: attribute -> known normalised values (from the catalog).
        frequency: top-level category -> how many of its products have each
            (attribute, value); None means every known value counts everywhere.
    """

    def __init__(
        self, vocabulary: Mapping[str, set[str]], frequency: Mapping[str, Counter] | None = None
    ) -> None:
        self.frequency = frequency
        self._index: dict[tuple[str, ...], list[tuple[str, str]]] = defaultdict(list)
        self._prefixes: set[tuple[str, ...]] = set()
        for attribute, values in sorted(vocabulary.items()):  # sorted: candidate order, hence
            for value in sorted(values):  # the output, must not depend on set/hash order
                key = tokens(value)
                if _eligible(value, key):
                    self._index[key].append((attribute, value))
                    self._prefixes.update(key[:n] for n in range(1, len(key)))
        self._first_words = {key[0] for key in self._index}

    def extract(
        self, title: str, description: str, top_category: str | None, known: Iterable[tuple[str, str]]
    ) -> list[tuple[str, str, str]]:
        """Triples (attribute, normalised value, raw evidence) for attributes not yet known.

        ``known`` are the product's catalog (attribute, value) pairs: their attributes are
        not extracted again, and a phrase equal to one of their values is already
        explained by that fact, so it is not assigned to a second attribute.
        """
        known = list(known)
        known_values = {v for _, v in known}
        counts = self.frequency.get(top_category or "", Counter()) if self.frequency is not None else None
        skip = {a for a, _ in known}
        found: dict[tuple[str, str], str] = {}
        for text in (title, description[:MAX_TEXT_CHARS]):
            if not text:
                continue
            folded = unicodedata.normalize("NFKC", text).casefold()
            kinds = reduce(or_, map(_word_kinds, LETTER_RUN.findall(folded)), 0) if _DIGIT.search(folded) else 0
            for attribute, value, raw in self._measurements(folded, kinds):  # the dimension word is the evidence
                if attribute not in skip:
                    found.setdefault((attribute, value), raw)
            for candidates, raw in self._known_values(tokens(rewrite_measurements(folded) if kinds & _UNIT else folded)):
                if candidates[0][1] in known_values:
                    continue
                best = _most_common([c for c in candidates if c[0] not in skip], counts)
                if best is not None:
                    found.setdefault(best, raw)
        return [(a, v, raw) for (a, v), raw in sorted(found.items())]

    def _known_values(self, words: tuple[str, ...]) -> Iterable[tuple[list[tuple[str, str]], str]]:
        """(candidate (attribute, value) pairs, matched phrase) for every known phrase."""
        index, prefixes, first_words = self._index, self._prefixes, self._first_words
        count = len(words)
        for start, word in enumerate(words):
            if word not in first_words:  # starts no known value: neither in the index nor a prefix
                continue
            key: tuple[str, ...] = (word,)
            stop = start + 1
            while True:  # extend the phrase only while it is the prefix of a known value
                candidates = index.get(key)
                if candidates:
                    yield candidates, " ".join(key)
                if stop >= count or stop - start >= MAX_VALUE_TOKENS or key not in prefixes:
                    break
                key += (words[stop],)
                stop += 1

    @staticmethod
    def _measurements(text: str, kinds: int) -> Iterable[tuple[str, str, str]]:
        """Measurement phrases; ``kinds`` (see :func:`_word_kinds`) skips patterns that cannot match."""
        if kinds & _AFTER_WORD:
            for match in _AFTER.on(text).finditer(text):
                number, unit, dimension = match.groups()
                yield from _measurement(dimension, number, unit, match.group(0))
        if kinds & _BEFORE_WORD:
            for match in _BEFORE.on(text).finditer(text):
                dimension, number, unit = match.groups()
                yield from _measurement(dimension, number, unit, match.group(0))


@lru_cache(maxsize=1 << 16)
def _word_kinds(word: str) -> int:
    """Which patterns a maximal run of letters can take part in, as bits.

    The patterns try many alternatives at every position, so a text is only searched when one
    of its words could be there: a unit ``rewrite_measurements`` rewrites (``_UNIT``), the
    dimension word of ``_AFTER`` (whitespace before it, ``\\b`` after) or the word that starts
    ``_BEFORE`` (``\\b`` before it, then a space, ``:``, ``-``, a digit, or "of"/"is" glued on).
    Each of these is always one whole run of letters (see ``units.LETTER_RUN``). Cached: the
    words of a catalog's texts repeat.
    """
    return (
        (_UNIT if is_unit_word(word) else 0)
        | (_AFTER_WORD if _DIMENSION_WORD.fullmatch(word) else 0)
        | (_BEFORE_WORD if _DIMENSION_LEAD.fullmatch(word) else 0)
    )


def _measurement(dimension: str, number: str, unit: str, raw: str) -> Iterable[tuple[str, str, str]]:
    attribute = dimension.lower()
    expected = _EXPECTED_DIMENSION.get(attribute, "length")
    if unit_dimension(unit) != expected:
        return
    converted = convert(number, unit)
    if converted is not None:
        yield attribute, converted[1], raw.strip()


def _most_common(candidates: list[tuple[str, str]], counts: Counter | None) -> tuple[str, str] | None:
    """The candidate most used in the product's category; None when none is used there."""
    if counts is None:
        return candidates[0] if len(candidates) == 1 else None
    best = max(candidates, key=lambda c: (counts.get(c, 0), c), default=None)
    return best if best is not None and counts.get(best, 0) > 0 else None


def _eligible(value: str, key: tuple[str, ...]) -> bool:
    return (
        0 < len(key) <= MAX_VALUE_TOKENS
        and len(value) >= 3
        and any(ch.isalpha() for ch in value)
        and value not in STOP_VALUES
    )
