"""Fuzzing every reader: random bytes and random structures give rejected rows or one
file-level error (CatalogError), never an internal error.

Bounded (a few dozen examples per reader, no deadline) so the whole file runs in well
under a minute on two CPU cores.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kg_builder import CatalogError, CatalogRecord, RowProblem, open_catalog
from kg_builder.validate import check_record

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TEXT = st.text(st.characters(codec="utf-8") | st.sampled_from(["\x00", "\x1b", "\ud800", "\u2028", '"', ",", "\n"]), max_size=20)
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                           max_leaves=12)
SUFFIXES = [".jsonl", ".csv", ".tsv", ".ttl", ".nt", ".jsonld", ".rdf", ".jsonl.gz"]


def read_all(data: bytes, suffix: str) -> list[object]:
    """Open and drain a catalog; the only exception allowed is CatalogError."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            source = open_catalog(path)
            items = list(source.rows())
        except CatalogError as err:
            assert "\n" not in str(err).strip() or suffix in (".ttl", ".nt")  # one line
            return []
    for item in items:
        assert isinstance(item, (CatalogRecord, RowProblem))
        if isinstance(item, CatalogRecord):
            check_record(item, "fuzz")  # the pipeline's row check never raises either
    return items


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(SUFFIXES))
def test_random_bytes_in_every_format(data: bytes, suffix: str) -> None:
    read_all(data, suffix)


@FUZZ
@given(st.lists(JSON_VALUES, min_size=1, max_size=5))
def test_random_json_structures_as_jsonl(rows: list[object]) -> None:
    read_all("\n".join(json.dumps(r) for r in rows).encode("utf-8", "surrogatepass"), ".jsonl")


@FUZZ
@given(st.lists(st.dictionaries(st.sampled_from(["id", "title", "category", "image", "attributes", "x"]), JSON_VALUES,
                                max_size=6), min_size=1, max_size=5))
def test_random_product_objects_as_jsonl(rows: list[dict]) -> None:
    read_all("\n".join(json.dumps(r) for r in rows).encode("utf-8", "surrogatepass"), ".jsonl")


@FUZZ
@given(st.lists(st.lists(TEXT, min_size=1, max_size=5), min_size=1, max_size=6))
def test_random_csv_cells(rows: list[list[str]]) -> None:
    import csv
    import io

    buffer = io.StringIO()
    csv.writer(buffer).writerows([["id", "title", "color"], *rows])
    read_all(buffer.getvalue().encode("utf-8", "surrogatepass"), ".csv")


@FUZZ
@given(st.lists(st.tuples(TEXT, TEXT, TEXT), min_size=1, max_size=5), st.sampled_from([".ttl", ".nt"]))
def test_random_literals_as_turtle_and_ntriples(products: list[tuple[str, str, str]], suffix: str) -> None:
    def literal(text: str) -> str:
        return json.dumps(text)  # JSON string escapes are valid Turtle/N-Triples escapes (\\uXXXX included)

    lines = []
    for i, (sku, name, value) in enumerate(products):
        s = f"<urn:p{i}>"
        lines += [f"{s} <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <https://schema.org/Product> .",
                  f"{s} <https://schema.org/sku> {literal(sku)} .", f"{s} <https://schema.org/name> {literal(name)} .",
                  f"{s} <https://schema.org/color> {literal(value)} ."]
    read_all("\n".join(lines).encode("utf-8", "surrogatepass"), suffix)


@FUZZ
@given(st.lists(st.dictionaries(st.sampled_from(["sku", "name", "brand", "color", "@id", "image"]), JSON_VALUES, max_size=5),
                min_size=1, max_size=4))
def test_random_jsonld_products(products: list[dict]) -> None:
    graph = [{"@type": "Product", **p} for p in products]
    read_all(json.dumps({"@context": "https://schema.org", "@graph": graph}).encode("utf-8", "surrogatepass"), ".jsonld")
