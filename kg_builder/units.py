"""Units of weight, length and volume, converted to one canonical unit per dimension.

"0.8 kg" and "800 g" must become one Value node, so every measurement is rewritten as
``<number> <canonical unit>`` with the number printed without float noise.
"""

from __future__ import annotations

import re

# unit spelling -> (dimension, canonical unit, factor to canonical)
_UNITS: dict[str, tuple[str, str, float]] = {}


def _register(dimension: str, canonical: str, factor: float, *spellings: str) -> None:
    for spelling in spellings:
        _UNITS[spelling] = (dimension, canonical, factor)


_register("mass", "g", 0.001, "mg", "milligram", "milligrams")
_register("mass", "g", 1.0, "g", "gm", "gms", "gr", "gram", "grams", "gramme", "grammes")
_register("mass", "g", 1000.0, "kg", "kgs", "kilo", "kilos", "kilogram", "kilograms", "kilogramme")
_register("mass", "g", 453.59237, "lb", "lbs", "pound", "pounds")
_register("mass", "g", 28.349523125, "oz", "ounce", "ounces")
_register("length", "cm", 0.1, "mm", "millimeter", "millimeters", "millimetre", "millimetres")
_register("length", "cm", 1.0, "cm", "cms", "centimeter", "centimeters", "centimetre", "centimetres")
_register("length", "cm", 100.0, "m", "meter", "meters", "metre", "metres", "mtr", "mtrs")
_register("length", "cm", 2.54, "in", "inch", "inches", '"')
_register("length", "cm", 30.48, "ft", "feet", "foot")
_register("volume", "ml", 1.0, "ml", "millilitre", "millilitres", "milliliter", "milliliters")
_register("volume", "ml", 10.0, "cl")
_register("volume", "ml", 1000.0, "l", "ltr", "ltrs", "litre", "litres", "liter", "liters")

# Spellings too ambiguous to convert when they sit inside longer text ("2 in 1", "3 m pack").
_AMBIGUOUS = {"in", "m", "l", '"', "gr"}

_NUMBER = r"(\d+(?:\.\d+)?|\.\d+)"
_UNIT_ALTERNATION = "|".join(sorted((re.escape(u) for u in _UNITS), key=len, reverse=True))
_SAFE_ALTERNATION = "|".join(
    sorted((re.escape(u) for u in _UNITS if u not in _AMBIGUOUS), key=len, reverse=True)
)
_FULL = re.compile(rf"^{_NUMBER}\s*({_UNIT_ALTERNATION})\.?$", re.IGNORECASE)
_INNER = re.compile(rf"(?<![\w.]){_NUMBER}\s*({_SAFE_ALTERNATION})(?![\w])", re.IGNORECASE)
_DIGIT = re.compile(r"\d")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def format_number(number: float) -> str:
    """Six significant digits, no exponent, no trailing zeros: 800.0 -> "800", 0.25 -> "0.25"."""
    if number == 0:
        return "0"
    text = f"{number:.6g}"
    if "e" in text:
        text = f"{number:.6f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def convert(number: str, unit: str) -> tuple[str, str] | None:
    """(dimension, canonical "number unit") for a number and a unit spelling, or None."""
    known = _UNITS.get(unit.lower())
    if known is None:
        return None
    dimension, canonical, factor = known
    return dimension, f"{format_number(float(number) * factor)} {canonical}"


def parse_measurement(text: str) -> tuple[str, str] | None:
    """(dimension, canonical form) when ``text`` is exactly one measurement, else None."""
    match = _FULL.match(_THOUSANDS.sub("", text.strip()))
    if match is None:
        return None
    return convert(match.group(1), match.group(2))


def canonicalise_measurements(text: str) -> str:
    """Rewrite every unambiguous measurement inside ``text`` in canonical units."""
    if _DIGIT.search(text) is None:
        return text

    def replace(match: re.Match[str]) -> str:
        converted = convert(match.group(1), match.group(2))
        return converted[1] if converted else match.group(0)

    return _INNER.sub(replace, _THOUSANDS.sub("", text))


def unit_dimension(unit: str) -> str | None:
    """"mass", "length" or "volume" for a unit spelling, else None."""
    known = _UNITS.get(unit.lower())
    return known[0] if known else None


UNIT_PATTERN = _UNIT_ALTERNATION
NUMBER_PATTERN = _NUMBER
