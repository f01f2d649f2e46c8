"""Text extraction finds known values and measurements, conservatively."""

from __future__ import annotations

from collections import Counter

from kg_builder.extract import TextExtractor

VOCABULARY = {
    "color": {"red", "multicolor", "yes"},
    "material": {"polyester", "stainless steel"},
    "pattern": {"floral", "polyester"},
    "brand": {"elegance"},
}
FREQUENCY = {
    "Home": Counter({("color", "red"): 5, ("material", "polyester"): 9, ("pattern", "polyester"): 1, ("pattern", "floral"): 3,
                     ("material", "stainless steel"): 2, ("brand", "elegance"): 1, ("height", "10 cm"): 1}),
    "Watches": Counter({("color", "red"): 1}),
}


def extract(title: str, description: str = "", top: str = "Home", known=()) -> list[tuple[str, str, str]]:
    return TextExtractor(VOCABULARY, FREQUENCY).extract(title, description, top, known)


def test_known_values_on_token_boundaries() -> None:
    found = extract("Elegance Red Stainless Steel Bottle", "reddish glow; floral print")
    assert [(a, v) for a, v, _ in found] == [("brand", "elegance"), ("color", "red"), ("material", "stainless steel"), ("pattern", "floral")]


def test_ambiguous_phrase_goes_to_the_attribute_most_used_in_the_category() -> None:
    assert [(a, v) for a, v, _ in extract("Polyester curtain")] == [("material", "polyester")]


def test_attributes_outside_the_category_and_stop_values_are_ignored() -> None:
    assert extract("Floral red strap", top="Watches") == [("color", "red", "red")]
    assert extract("Yes, multicolor") == []  # 'yes' is too generic; multicolor unused in Home


def test_catalog_facts_are_not_repeated_or_contradicted() -> None:
    found = extract("Red polyester floral curtain", known=[("color", "blue"), ("material", "polyester")])
    assert [(a, v) for a, v, _ in found] == [("pattern", "floral")]


def test_measurements_next_to_a_dimension_word() -> None:
    found = extract("Curtain", "It is 2.13 m in height. Width: 30 inch. Weight 0.8 kg. Pack of 2 in 1.")
    assert [(a, v) for a, v, _ in found] == [("height", "213 cm"), ("weight", "800 g"), ("width", "76.2 cm")]


def test_long_descriptions_are_cut_not_crashed() -> None:
    found = extract("Mug", "filler " * 2_000_000 + " red")
    assert found == []  # beyond MAX_TEXT_CHARS


def test_output_does_not_depend_on_hash_order() -> None:
    """Set iteration order changes with PYTHONHASHSEED; extraction must not."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "from collections import Counter\n"
        "from kg_builder.extract import TextExtractor\n"
        "vocab = {'fabric': {'100% cotton', 'cotton'}, 'material': {'100% cotton', 'cotton blend'}, 'color': {'red'}}\n"
        "freq = {'Home': Counter({('fabric', '100% cotton'): 2, ('material', '100% cotton'): 2, ('color', 'red'): 1})}\n"
        "print(TextExtractor(vocab, freq).extract('Red 100% cotton towel', '', 'Home', []))\n"
    )
    root = Path(__file__).resolve().parents[2]
    outputs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": str(root)}).stdout
        for seed in range(6)
    }
    assert len(outputs) == 1, outputs
