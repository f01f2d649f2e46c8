"""Property-based checks of normalisation: it is idempotent and never changes a number's meaning.

The spellings are built from the pieces real catalogs use (signs, decimal points and commas,
fractions, ranges, glued or hyphenated or repeated units, surrounding words), plus arbitrary
text for idempotence alone.
"""

from __future__ import annotations

import re
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from kg_builder.records.normalize import normalize_value
from kg_builder.records.units import _UNITS

UNITS = sorted(u for u in _UNITS if u != '"')
FACTOR = {u: (Decimal(f), canonical) for u, (_, canonical, f) in _UNITS.items()}
NUMBERS = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("99999"), places=3, allow_nan=False)
CANONICAL = re.compile(r"^(-?)(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))? (g|cm|ml)$")
settings.register_profile("kgmm", max_examples=300, deadline=None)
settings.load_profile("kgmm")


def spell(number: Decimal) -> str:
    text = format(number.normalize(), "f")
    return text[1:] if text.startswith("0.") else text  # also the leading-dot form ".5"


def close(actual: Decimal, expected: Decimal) -> bool:
    """Equal up to the six significant fractional digits the canonical form keeps."""
    return abs(actual - expected) <= max(abs(expected) * Decimal("1e-5"), Decimal("1e-9"))


@given(st.text(max_size=40))
def test_normalising_twice_equals_normalising_once_for_any_text(text: str) -> None:
    once = normalize_value(text)
    assert normalize_value(once) == once


@given(NUMBERS, st.sampled_from(UNITS), st.sampled_from(["", "-", "+", "\u2212"]),
       st.sampled_from([" ", "  ", "-"]), st.booleans(), st.booleans())
def test_a_measurement_keeps_its_sign_and_magnitude_up_to_the_unit_factor(
    number: Decimal, unit: str, sign: str, joint: str, leading_dot: bool, repeat: bool
) -> None:
    spelled = spell(number) if leading_dot else format(number.normalize(), "f")
    if joint == "-" and len(unit) == 1:
        joint = " "  # "5-m" is not a measurement we claim to read
    raw = f"{sign}{spelled}{joint}{unit}" + (f" {unit}" if repeat else "")
    result = normalize_value(raw)
    assert normalize_value(result) == result
    match = CANONICAL.match(result)
    assert match, f"{raw!r} -> {result!r}"
    factor, canonical = FACTOR[unit]
    assert match.group(4) == canonical
    negative = sign in ("-", "\u2212")
    assert (match.group(1) == "-") == negative
    assert close(Decimal(match.group(2)), number * factor), f"{raw!r} -> {result!r}"


@given(NUMBERS, NUMBERS, st.sampled_from(UNITS), st.sampled_from(["-", " - ", " to ", "\u2013"]))
def test_a_range_converts_both_ends(low: Decimal, high: Decimal, unit: str, separator: str) -> None:
    raw = f"{format(low.normalize(), 'f')}{separator}{format(high.normalize(), 'f')} {unit}"
    result = normalize_value(raw)
    match = CANONICAL.match(result)
    assert match and match.group(3), f"{raw!r} -> {result!r}"
    factor = FACTOR[unit][0]
    assert close(Decimal(match.group(2)), low * factor) and close(Decimal(match.group(3)), high * factor)
    assert normalize_value(result) == result


@given(st.lists(st.sampled_from(["pack", "of", "3G", "2 in 1", "x", "-", "/", ",", "(", ")", "5", "1,5",
                                 ".5", "1/2", "kg", "cm", "L", "g", "inch", "-20", "°c", "to", "cm cm"]),
                max_size=8))
def test_words_numbers_and_units_in_any_order_are_idempotent(parts: list[str]) -> None:
    text = " ".join(parts)
    once = normalize_value(text)
    assert normalize_value(once) == once
    for number in re.findall(r"(?<![\d.])-\d+", text):  # a negative number stays negative
        if not re.search(r"\d\s*$", text[: text.index(number)]):
            assert "-" in once
