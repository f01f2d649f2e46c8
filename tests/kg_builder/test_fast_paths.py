"""The build's shortcuts change no result: each is compared with the plain computation it skips.

Measurement patterns run case-sensitively on text without upper-case (or other case-folding)
letters, and only on text holding a word they could match (``extract._word_kinds``,
``units.is_unit_word``); these tests run both ways on random text full of units, dimension
words, upper case and the letters IGNORECASE folds onto ASCII (ı, İ, ſ, the Kelvin sign).
"""

from __future__ import annotations

import random
import re
from functools import reduce
from operator import or_

from kg_builder.extract import _AFTER, _AFTER_WORD, _BEFORE, _BEFORE_WORD, _UNIT, TextExtractor, _word_kinds
from kg_builder.records import units
from kg_builder.records.units import canonicalise_measurements, parse_measurement

PIECES = [
    *"abcdefghiklmnostxzABCGIKLMX0123456789      ..,,--/:;\"'x*\u00d7\u2013\u2014\u2212+_()%#&\u0131\u0130\u017f\u212a\u00b5\u00e9\u0663",
    "kg", "KG", "g", "gm", "cm", "mm", "m", "in", "inch", "\u0131nch", "ft", "oz", "lb", "ml", "l", "ltr", "cl", "mg", "gr",
    "height", "HEIGHT", "weight", "w\u0131dth", "width", "length", "depth", "capacity", "volume", "of", "is", " in ", " to ",
    "1/2", "1 1/2", "0.8", "1,5", "1,000", "22 x 25", "5-10", "5 - 10", "red", "steel",
    " 10 cm in height", " 2.13 M IN HEIGHT", "weight: 0.8 kg", "Width: 30 inch", "heightof5 cm", "weight is 2 lb",
    " 300 ml capacity", "depth-4 \u0131nch", "diameter 7 \u212am",
]


def random_texts(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 20))) for _ in range(count)]


def test_canonicalise_matches_the_caseless_pattern_everywhere() -> None:
    caseless = re.compile(units._INNER.caseless.pattern, re.IGNORECASE)
    changed = 0
    for text in random_texts(20_000):
        for variant in (text, text.casefold()):
            expected = caseless.sub(units._replace_inner, variant)
            assert canonicalise_measurements(variant) == expected, variant
            changed += expected != variant
    assert changed > 3000  # the texts do hold measurements


def test_parse_measurement_matches_the_caseless_pattern() -> None:
    caseless = re.compile(units._FULL.caseless.pattern, re.IGNORECASE)
    for text in [*random_texts(5_000, seed=1), "0.8 KG", "5 \u0131nch", "3 \u212aG", "1 Lb", "22 X 25 INCH"]:
        match = caseless.match(text.strip())
        expected = None
        if match is not None and (rewritten := units._rewrite(match, inner=False)) is not None:
            expected = (units._UNITS[match.group("unit").lower()][0], rewritten)
        assert parse_measurement(text) == expected, text


def test_measurement_phrases_skip_only_text_that_cannot_match() -> None:
    extractor = TextExtractor({"color": {"red"}})
    found = 0
    for text in random_texts(20_000, seed=2):
        for variant in (text.casefold(), text):
            kinds = reduce(or_, map(_word_kinds, units.LETTER_RUN.findall(variant)), 0) if re.search(r"\d", variant) else 0
            everything = list(extractor._measurements(variant, _UNIT | _AFTER_WORD | _BEFORE_WORD))
            assert list(extractor._measurements(variant, kinds)) == everything, variant
            found += len(everything)
            for pattern in (_AFTER, _BEFORE):
                caseless = re.compile(pattern.caseless.pattern, re.IGNORECASE)
                assert _spans(pattern.on(variant), variant) == _spans(caseless, variant), variant
    assert found > 2000


def _spans(pattern: re.Pattern[str], text: str) -> list[tuple]:
    return [(match.span(), match.groups()) for match in pattern.finditer(text)]
