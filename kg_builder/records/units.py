"""Units of weight, length and volume, converted to one canonical unit per dimension.

"0.8 kg" and "800 g" must become one Value node, so every measurement is rewritten as
``<number> <canonical unit>``. A conversion must never change what a value means, because
queries, the model and completions all use the canonical form: signs are kept
("-20 kg"), ranges convert both ends ("5-10 kg" -> "5000-10000 g"), products of sizes
convert every factor ("22 x 25 inch"), fractions and decimal commas are read as numbers
("1/2 inch", "1,5 kg"), and anything this module cannot read with certainty is left
exactly as written. Arithmetic is decimal, so "0.8 kg" is 800 g, not 800.0000000001 g.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from functools import lru_cache

# unit spelling -> (dimension, canonical unit, factor to canonical as a decimal string)
_UNITS: dict[str, tuple[str, str, str]] = {}


def _register(dimension: str, canonical: str, factor: str, *spellings: str) -> None:
    for spelling in spellings:
        _UNITS[spelling] = (dimension, canonical, factor)


_register("mass", "g", "0.001", "mg", "milligram", "milligrams")
_register("mass", "g", "1", "g", "gm", "gms", "gr", "gram", "grams", "gramme", "grammes")
_register("mass", "g", "1000", "kg", "kgs", "kilo", "kilos", "kilogram", "kilograms", "kilogramme")
_register("mass", "g", "453.59237", "lb", "lbs", "pound", "pounds")
_register("mass", "g", "28.349523125", "oz", "ounce", "ounces")
_register("length", "cm", "0.1", "mm", "millimeter", "millimeters", "millimetre", "millimetres")
_register("length", "cm", "1", "cm", "cms", "centimeter", "centimeters", "centimetre", "centimetres")
_register("length", "cm", "100", "m", "meter", "meters", "metre", "metres", "mtr", "mtrs")
_register("length", "cm", "2.54", "in", "inch", "inches", '"')
_register("length", "cm", "30.48", "ft", "feet", "foot")
_register("volume", "ml", "1", "ml", "millilitre", "millilitres", "milliliter", "milliliters")
_register("volume", "ml", "10", "cl")
_register("volume", "ml", "1000", "l", "ltr", "ltrs", "litre", "litres", "liter", "liters")

# Spellings too ambiguous to convert when they sit inside longer text ("2 in 1", "3 m pack").
_AMBIGUOUS = {"in", "m", "l", '"', "gr"}

SIGNIFICANT_DIGITS = 6
"""Fractional digits are rounded to this many significant digits; integer digits never are."""
MAX_DIGITS = 30
"""Longer numbers are left as written rather than converted."""

# A number: mixed fraction, fraction, thousands, decimal (point or comma), leading-dot decimal.
_NUM = r"(?:\d+ \d+/\d+|\d+/\d+|\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?|\.\d+)"
_SIGN = "[-+\u2212]"
_RANGE_SEP = r"\s*(?:-|\u2013|\u2014|to)\s*"
_TIMES = r"\s*[x\u00d7*]\s*"


def _alternation(spellings: object) -> str:
    return "|".join(sorted((re.escape(u) for u in spellings), key=len, reverse=True))  # type: ignore[attr-defined]


def _unit_group(name: str, alternation: str) -> str:
    # A one-letter unit must stand apart from its number ("3G" is a network, "3 g" is grams);
    # word units may be glued or hyphenated ("800gm", "6.75-inch"); a repeat is one unit ("1 L L").
    return (
        rf"(?:\s+|-)?(?:(?<=\s)|(?![a-z]\b))(?P<{name}>{alternation})(?![\w\"])"
        rf"(?P<{name}_repeats>(?:\s+(?:{alternation})(?![\w\"]))*)"
    )


def _measure(alternation: str) -> str:
    unit = _unit_group("unit", alternation)
    first = _unit_group("ua", alternation)
    return (
        rf"(?P<sign>{_SIGN})?(?P<a>{_NUM})"
        rf"(?:(?P<dims>(?:{_TIMES}{_NUM})+)"  # 22.7 x 25.4 x 5 inch
        rf"|(?:{first})?{_RANGE_SEP}(?P<b>{_NUM}))?"  # 5-10 kg, 5 kg - 10 kg
        rf"{unit}"
    )


_CASED = re.compile("[A-Z\u0130\u0131\u017f\u212a]")
"""The characters IGNORECASE lets match a lower-case ASCII letter other than itself (A-Z, and
İ ı ſ K, which Python also folds onto i, i, s and k)."""


class CaselessPattern:
    """A case-insensitive pattern that runs case-sensitively where that matches the same.

    With IGNORECASE, every alternative of a long alternation (dozens of unit spellings) is
    tried in full, where a case-sensitive one skips it on its first letter: measured 1.5x-3x
    slower on the patterns here. They are all written in lower case, so on text that holds
    none of ``_CASED`` (casefolded text nearly always) both compile to the same matches.
    """

    def __init__(self, pattern: str) -> None:
        self.caseless = re.compile(pattern, re.IGNORECASE)
        self.cased = re.compile(pattern)

    def on(self, text: str) -> re.Pattern[str]:
        """The compiled pattern to run on ``text``."""
        return self.caseless if _CASED.search(text) else self.cased


_ALL = _alternation(_UNITS)
_SAFE = _alternation(u for u in _UNITS if u not in _AMBIGUOUS)
_FULL = CaselessPattern(rf"^{_measure(_ALL)}\.?$")
# Inside text a number must start a token: not glued to a word, a decimal point, a comma list,
# a fraction, another factor ("x 5") or the end of a range ("5 - 10").
_INNER = CaselessPattern(
    rf"(?<![\w.,/\u2013\u2014+*\u00d7-])(?<!\d -)(?<!\d- )(?<!\d - )(?<![x\u00d7*] ){_measure(_SAFE)}"
)
_DIGIT = re.compile(r"\d")
LETTER_RUN = re.compile(r"[^\W\d_]+")
"""Maximal runs of letters. A unit that ``_INNER`` rewrites is always one whole run: a digit, a
space or a hyphen stands before it and no word character after it, and every character that
matches an ASCII letter case-insensitively (``ı``, ``ſ``, the Kelvin sign too) is a letter."""
_SAFE_UNIT = re.compile(_SAFE, re.IGNORECASE)
_SPLIT_TIMES = re.compile(_TIMES)
_DECIMAL_COMMA = re.compile(r"^\d+,\d+$")


def parse_number(text: str) -> Decimal | None:
    """The value of one number spelling, or None when it is not read with certainty.

    "1/2" -> 0.5, "1 1/2" -> 1.5, "1,000" -> 1000, "1,5" -> 1.5, ".5" -> 0.5.
    """
    text = text.strip()
    if len(text) > MAX_DIGITS:
        return None
    try:
        if "/" in text:
            whole, _, fraction = text.rpartition(" ")
            numerator, denominator = (Decimal(part) for part in fraction.split("/"))
            if denominator == 0:
                return None
            return _CONTEXT.divide(numerator, denominator) + (Decimal(whole) if whole else 0)
        if _DECIMAL_COMMA.match(text) and not re.match(r"^\d{1,3},\d{3}$", text):
            return Decimal(text.replace(",", "."))
        return Decimal(text.replace(",", ""))
    except (InvalidOperation, ValueError):
        return None


_CONTEXT = Context(prec=60)


def format_decimal(number: Decimal) -> str:
    """Six significant digits in the fraction, every integer digit, no exponent, no trailing zeros."""
    if number.is_zero():
        return "0"
    integer_digits = number.adjusted() + 1
    places = max(SIGNIFICANT_DIGITS - integer_digits, 0)
    rounded = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN, context=_CONTEXT)
    text = format(rounded, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def format_number(number: float) -> str:
    """A float printed as :func:`format_decimal` prints it: 800.0 -> "800", 0.1 + 0.2 -> "0.3"."""
    return format_decimal(Decimal(repr(float(number))))


def _scaled(number: str, factor: str, sign: str = "") -> str | None:
    value = parse_number(number)
    if value is None:
        return None
    text = format_decimal(_CONTEXT.multiply(value, Decimal(factor)))
    return f"-{text}" if sign and sign != "+" and text != "0" else text


@lru_cache(maxsize=1 << 16)
def convert(number: str, unit: str) -> tuple[str, str] | None:
    """(dimension, canonical "number unit") for a number and a unit spelling, or None."""
    known = _UNITS.get(unit.lower())
    if known is None:
        return None
    dimension, canonical, factor = known
    scaled = _scaled(number, factor)
    return None if scaled is None else (dimension, f"{scaled} {canonical}")


def _rewrite(match: re.Match[str], inner: bool) -> str | None:
    """The canonical spelling of one matched measurement, or None to leave it as written."""
    return _rewrite_groups(tuple(match.groupdict().items()), inner)


@lru_cache(maxsize=1 << 16)
def _rewrite_groups(items: tuple[tuple[str, str | None], ...], inner: bool) -> str | None:
    """:func:`_rewrite` of a match's named groups: decimal arithmetic, worth caching because
    the same measurements ("41 cm") come back again and again in a catalog's text."""
    groups = dict(items)
    unit = groups["unit"]
    known = _UNITS.get(unit.lower())
    if known is None:
        return None
    dimension, canonical, factor = known
    if not _only_repeats(groups["unit_repeats"], unit, canonical) or not _only_repeats(
        groups["ua_repeats"], groups["ua"] or "", canonical
    ):
        return None  # "1 inch cm": two different units, not one written twice
    numbers = [groups["a"]]
    if groups["dims"]:
        numbers += [n for n in _SPLIT_TIMES.split(groups["dims"]) if n]
    if inner and any(_DECIMAL_COMMA.match(n) and not re.match(r"^\d{1,3},\d{3}$", n) for n in numbers):
        return None  # "3,5 kg" inside text may be a list: leave it
    if groups["b"] is not None:
        first_unit = groups["ua"]
        first = _UNITS.get(first_unit.lower()) if first_unit else known
        if first is None or first[0] != dimension:
            return None
        low, high = _scaled(groups["a"], first[2], groups["sign"] or ""), _scaled(groups["b"], factor)
        return None if low is None or high is None else f"{low}-{high} {canonical}"
    scaled = [_scaled(n, factor) for n in numbers]
    if any(s is None for s in scaled):
        return None
    if groups["sign"] and groups["sign"] != "+" and scaled[0] != "0":
        scaled[0] = f"-{scaled[0]}"
    return f"{' x '.join(scaled)} {canonical}"  # type: ignore[arg-type]


def _only_repeats(repeats: str | None, unit: str, canonical: str) -> bool:
    """True when every unit word in ``repeats`` is ``unit`` again or its canonical unit."""
    return all(word.lower() in (unit.lower(), canonical) for word in (repeats or "").split())


def parse_measurement(text: str) -> tuple[str, str] | None:
    """(dimension, canonical form) when ``text`` is exactly one measurement, else None."""
    text = text.strip()
    match = _FULL.on(text).match(text)
    if match is None:
        return None
    rewritten = _rewrite(match, inner=False)
    if rewritten is None:
        return None
    unit = match.group("unit")
    return _UNITS[unit.lower()][0], rewritten


def canonicalise_measurements(text: str) -> str:
    """Rewrite every measurement inside ``text`` that can be read with certainty."""
    if _DIGIT.search(text) is None or not any(map(is_unit_word, LETTER_RUN.findall(text))):
        return text  # no number, or no word a unit could be: nothing to rewrite
    return rewrite_measurements(text)


def rewrite_measurements(text: str) -> str:
    """:func:`canonicalise_measurements` without its quick checks, for a caller that made them.

    ``_INNER`` tries dozens of unit spellings at every number, several microseconds a line, so
    text without a digit or without a unit word (most titles) never reaches it.
    """
    return _INNER.on(text).sub(_replace_inner, text)


def _replace_inner(match: re.Match[str]) -> str:
    rewritten = _rewrite(match, inner=True)
    return match.group(0) if rewritten is None else rewritten


@lru_cache(maxsize=1 << 16)
def is_unit_word(word: str) -> bool:
    """Whether a run of letters is a unit ``canonicalise_measurements`` may rewrite after a number."""
    return _SAFE_UNIT.fullmatch(word) is not None


def unit_dimension(unit: str) -> str | None:
    """"mass", "length" or "volume" for a unit spelling, else None."""
    known = _UNITS.get(unit.lower())
    return known[0] if known else None


UNIT_PATTERN = _ALL
NUMBER_PATTERN = r"(\d+(?:\.\d+)?|\.\d+)"
"""A plain number (one capturing group), for the text extractor's dimension phrases."""
