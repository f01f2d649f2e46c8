"""What a product's text says about a checked catalog value: the text's word for a noise check.

A check's probability compares an attribute's values with one another, so it cannot say
"this attribute's values are nearly always written in the product's text, and this one is
not". A brand swapped between two products is such a case: titles name their brand, the
swapped one is absent from its new product's title, and yet, when the brand is one the
catalog shows once, no probability can judge it (:class:`~kgmm.completion.engine.Check`).
Nor can a probability say "the text names this very value", the strongest sign that a
catalog value is right.

:class:`Mentions` measures, per attribute, how often the catalog's own values are named in
their product's title or description (the *naming rate* ``r``), and turns "named" or "not
named" into a log likelihood ratio of "wrong value" against "right value":

* not named: ``log((1 - q) / (1 - r))``: a wrong value is rarely named (``q``), a right
  one is named at the attribute's rate, so silence speaks against a value of an attribute
  whose values are usually written out (brand: ``r`` near 1) and says nothing where they
  rarely are (a width in cm: ``r`` near 0);
* named: ``log(q / r)``: a wrong value named by chance is rare.

``q`` (:data:`CHANCE_NAMED`) is the rate at which a wrong value appears in a text by
coincidence; it is a floor, not fitted. The check adds this ratio to the log-odds of its
probability (:meth:`Check.suspicion`). Measured on Flipkart with planted noise
(``docs/EVALUATION.md``): average precision of the suspicion 0.40 without it.

"Named" is a phrase match of the value's words, in order, in the lower-cased word sequence
of title + description: case, punctuation and spacing never matter, a value's words must
be adjacent (so "steel" names the value ``steel``, not ``stainless steel`` nor ``steel grey``).
"""

from __future__ import annotations

import math
import re
from functools import cached_property, lru_cache

import numpy as np

from graph_store import Snapshot, SourceCode

WORDS = re.compile(r"[^\W_]+")
"""A word: a run of letters and digits (any script)."""
CHANCE_NAMED = 0.02
"""How often a wrong value of an attribute is named in the product's text by coincidence."""
MAX_PHRASE_WORDS = 8
"""Longest value (in words) :meth:`Mentions.named_values` finds in a text."""
RATE_PRODUCTS = 10_000
"""Products (an evenly spaced sample beyond this) whose catalog values measure the naming rates."""


def phrase(text: str | None) -> str:
    """The text's words, lower-cased, space-separated and space-padded: `` a b c ``."""
    return " " + " ".join(WORDS.findall((text or "").lower())) + " "


class Mentions:
    """Per attribute, how often a catalog value is named in its product's text; per check, the
    text's log likelihood ratio of "wrong value" against "right value".

    Args:
        snapshot: the store's graph (the checked catalog).
        sample: at most this many products, evenly spaced by index, measure the rates
            (deterministic, so every shard of a run measures the same).
    """

    def __init__(self, snapshot: Snapshot, sample: int = RATE_PRODUCTS) -> None:
        self.snapshot = snapshot
        self._values = [phrase(name) for _, name in snapshot.values]
        self._text = lru_cache(maxsize=4096)(self._product_text)
        self._words = lru_cache(maxsize=4096)(lambda product: frozenset(self._text(product).split()))
        self._named: dict[int, frozenset[int]] = {}
        stride = max(1, -(-snapshot.num_products // sample))
        counted = (snapshot.edge_source == SourceCode.CATALOG) & (snapshot.edge_product % stride == 0)
        attributes = len(snapshot.attributes)
        facts = np.bincount(snapshot.edge_attribute[counted], minlength=attributes)
        named = np.zeros(attributes)
        for p, a, v in zip(snapshot.edge_product[counted].tolist(), snapshot.edge_attribute[counted].tolist(),
                           snapshot.edge_value[counted].tolist()):
            named[a] += self.named(p, v)
        self.rate = (named + 1.0) / (facts + 2.0)  # Laplace: an attribute seen on few facts stays near 1/2
        """[A] share of each attribute's catalog values named in their product's text."""

    def _product_text(self, product: int) -> str:
        return phrase(f"{self.snapshot.titles[product] or ''} {self.snapshot.descriptions[product] or ''}")

    def named(self, product: int, value: int) -> bool:
        """Whether the product's title or description names the value (its words, in order)."""
        words = self._values[value]
        return len(words) > 2 and words in self._text(product)

    def named_values(self, product: int) -> frozenset[int]:
        """Every value of the catalog the product's text names (as :meth:`named` would say), found
        by looking up each run of up to :data:`MAX_PHRASE_WORDS` consecutive words of the text in an
        index of the values' phrases: one pass over the text, not one search per value (an
        attribute like brand has hundreds). A value of more words than that is never listed."""
        found = self._named.get(product)
        if found is None:
            words = self._text(product).split()
            index = self._phrase_index
            found = frozenset(v for n in range(1, min(MAX_PHRASE_WORDS, len(words)) + 1)
                              for i in range(len(words) - n + 1) for v in index.get(" ".join(words[i : i + n]), ()))
            if len(self._named) >= 4096:
                self._named.clear()
            self._named[product] = found
        return found

    def value_words(self, value: int) -> frozenset[str]:
        """The value's words, as :meth:`named` reads them."""
        return frozenset(self._values[value].split())

    def word_share(self, product: int, value: int) -> float:
        """Share of the value's words that appear anywhere in the product's text (any order):
        "pure cotton" in a text that says "cotton" is half named, "wood" in it not at all."""
        words = self.value_words(value)
        return len(words & self._words(product)) / len(words) if words else 0.0

    @cached_property
    def _phrase_index(self) -> dict[str, tuple[int, ...]]:
        index: dict[str, list[int]] = {}
        for v, words in enumerate(self._values):
            key = words.strip()
            if key and key.count(" ") < MAX_PHRASE_WORDS:
                index.setdefault(key, []).append(v)
        return {key: tuple(values) for key, values in index.items()}

    def log_ratio(self, attribute: int, named: bool) -> float:
        """Log likelihood ratio, "wrong value" over "right value", of a value of ``attribute`` that
        the product's text names (``named``, from :meth:`named`) or does not."""
        rate = float(self.rate[attribute])
        if named:
            return math.log(CHANCE_NAMED / rate)
        return math.log((1.0 - CHANCE_NAMED) / (1.0 - rate))
