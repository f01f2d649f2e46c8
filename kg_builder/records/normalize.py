"""Canonical attribute names and values.

Two spellings that mean the same thing must become one Value node: case, Unicode
forms, whitespace, surrounding punctuation and units are all folded here. The raw
spelling is kept on the edge, so nothing a person typed is lost.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from .units import canonicalise_measurements, parse_measurement

ATTRIBUTE_ALIASES = {
    "brand name": "brand",
    "manufacturer brand": "brand",
    "colour": "color",
    "colours": "color",
    "colors": "color",
    "primary color": "color",
    "material type": "material",
}
"""Attribute names that are the same attribute under another name."""

_NON_WORD = re.compile(r"[^\w&+%#]+")
_SPACES = re.compile(r"\s+")
_KEEP_AT_EDGES = set("%#+&°")  # meaningful at the edges: "100%", "#1", "c++"


def _strip_punctuation(text: str) -> str:
    """Drop punctuation and spaces (any script's: “ ” « » ・) from both ends."""
    start, end = 0, len(text)
    while start < end and _is_edge_junk(text[start]) and not _starts_number(text, start):
        start += 1
    while end > start and _is_edge_junk(text[end - 1]) and not _closes(text, start, end - 1):
        end -= 1
    return text[start:end]


def _starts_number(text: str, index: int) -> bool:
    """A sign or a decimal point that belongs to the number after it ("-20 °c", ".5 m")."""
    char = text[index]
    if char not in "-.\u2212":
        return False
    rest = text[index + 1 : index + 3]
    return rest[:1].isdigit() or (char != "." and rest[:1] == "." and rest[1:2].isdigit())


_PAIRS = {")": "(", "]": "[", "}": "{"}


def _closes(text: str, start: int, index: int) -> bool:
    """A closing bracket whose opener is kept, or a foot/inch mark after a digit ("4'x6'")."""
    char = text[index]
    if char in _PAIRS:
        return _PAIRS[char] in text[start:index]
    return char in "'\"" and index > start and text[index - 1].isdigit()


def _is_edge_junk(char: str) -> bool:
    if char in _KEEP_AT_EDGES:
        return False
    return unicodedata.category(char)[0] in "PZC" or char in "|~`^*<>=_"


@lru_cache(maxsize=65536)
def normalize_attribute(name: str) -> str:
    """Lower-case words separated by single spaces: "Model_ID" -> "model id", "Colour" -> "color"."""
    text = unicodedata.normalize("NFKC", name).casefold()
    text = _NON_WORD.sub(" ", text.replace("_", " ")).strip()
    text = _SPACES.sub(" ", text)
    return ATTRIBUTE_ALIASES.get(text, text)


@lru_cache(maxsize=262144)
def normalize_value(raw: str) -> str:
    """Canonical form of one attribute value; "" when nothing meaningful is left.

    Examples: " Multi-Color " -> "multi-color", "0.8 KG" -> "800 g", "800gm" -> "800 g".
    """
    text = _fold(raw)
    measurement = parse_measurement(text)  # before stripping: 5" is five inches
    if measurement is not None:
        return measurement[1]
    text = _strip_punctuation(text)
    if not text:
        return ""
    measurement = parse_measurement(text)
    if measurement is not None:
        return measurement[1]
    return canonicalise_measurements(text)


def _fold(text: str) -> str:
    """NFKC, case-folded, single-spaced; NFKC again because case folding can undo it."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return _SPACES.sub(" ", folded).strip()


@lru_cache(maxsize=65536)
def split_category(path: str, separator: str = ">") -> tuple[str, ...]:
    """"Home > Kitchen >> Mugs" -> ("Home", "Kitchen", "Mugs"): runs of the separator split.

    Cached: a catalog names the same few thousand category paths on millions of rows."""
    parts = re.split(rf"\s*(?:{re.escape(separator)})+\s*", path.strip())
    return tuple(_SPACES.sub(" ", p).strip() for p in parts if p.strip())
