"""Normalisation: one Value node per meaning, whatever the spelling."""

from __future__ import annotations

import pytest

from kg_builder.records.normalize import normalize_attribute, normalize_value, split_category
from kg_builder.records.units import canonicalise_measurements, format_number, parse_measurement


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("0.8 kg", "800 g"),
        ("800gm", "800 GMS"),
        ("2.13 m", "213 cm"),
        ("10 mm", "1 cm"),
        ("1 L", "1000 ml"),
        ("12 inch", "30.48 cm"),
        (" Multi  Color ", "multi color"),
        ("RED.", "red"),
        ("“Cotton”", "cotton"),
        ("Ｃｏｔｔｏｎ", "cotton"),  # full-width letters fold under NFKC
        ("1,000 g", "1 kg"),
    ],
)
def test_same_meaning_same_value(left: str, right: str) -> None:
    assert normalize_value(left) == normalize_value(right)


def test_canonical_forms_are_readable() -> None:
    assert normalize_value("0.8 kg") == "800 g"
    assert normalize_value("0.25 L") == "250 ml"
    assert normalize_value("Pack of 2") == "pack of 2"
    assert normalize_value("...") == ""


def test_ambiguous_units_are_left_alone_inside_text() -> None:
    assert normalize_value("2 in 1 charger") == "2 in 1 charger"
    assert canonicalise_measurements("box of 1.5 kg and 20 mm") == "box of 1500 g and 2 cm"
    assert parse_measurement("5 in") == ("length", "12.7 cm")


def test_format_number_has_no_float_noise() -> None:
    assert format_number(0.1 + 0.2) == "0.3"
    assert format_number(800.0) == "800"
    assert format_number(1e-7) == "0.0000001"  # a small number never becomes zero
    assert format_number(123456789.0) == "123456789"


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [("Model_ID", "model id"), ("Colour", "color"), ("Brand Name", "brand"), ("  Designed   For: ", "designed for")],
)
def test_attribute_names(raw: str, canonical: str) -> None:
    assert normalize_attribute(raw) == canonical


def test_split_category_accepts_runs_of_the_separator() -> None:
    assert split_category("Home >> Kitchen > Mugs") == ("Home", "Kitchen", "Mugs")
    assert split_category(" > A >") == ("A",)
