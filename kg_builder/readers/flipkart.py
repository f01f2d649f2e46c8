"""The Flipkart export format (the ``flipkart`` preset).

Its quirks: the category tree is a JSON list holding one ">>" path whose last segment
is often the (truncated) product name; ``product_specifications`` is a Ruby hash
(``{"product_specification"=>[{"key"=>"Brand", "value"=>"..."}, ...]}``), sometimes
``nil``, sometimes with entries that have a value but no key; images live in an
``images/`` folder beside the CSV; the brand column duplicates the Brand specification.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

from ..records.normalize import split_category
from ..records import CatalogError, CatalogRecord, RowProblem
from .common import CatalogSource, bad_bytes, bytes_read, cell_parser, check_file, split_source
from .csv_reader import csv_rows, read_header, show_columns

REQUIRED = ("uniq_id", "product_name", "product_category_tree", "description", "product_specifications")
PROPERTY_COLUMNS = (
    "pid",
    "product_url",
    "crawl_timestamp",
    "retail_price",
    "discounted_price",
    "is_FK_Advantage_product",
    "product_rating",
    "overall_rating",
)
_STRING = r'"((?:[^"\\]|\\.)*)"'
_ENTRY = re.compile(r"\{\s*(?:\"key\"\s*=>\s*" + _STRING + r"\s*,\s*)?\"value\"\s*=>\s*" + _STRING + r"\s*\}")
_NO_RATING = "No rating available"


def open_flipkart(path: Path) -> CatalogSource:
    """Validate the header and open a Flipkart export."""
    size = check_file(path)
    header = read_header(path)
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise CatalogError(f"{path}: not a Flipkart export, missing columns {', '.join(missing)} (found {show_columns(header)})")
    position = {name: i for i, name in enumerate(header)}
    images = path.parent / "images"
    base = images if images.is_dir() else path.parent
    box: dict[str, Any] = {}

    parse = cell_parser(path, lambda line, cells: _record(path, line, cells, header, position, base))
    return split_source(
        path, "flipkart", lambda: csv_rows(path, ",", box), parse, lambda: bytes_read(box), size, {"images": str(base)}
    )


def parse_specifications(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(keyed (key, value) pairs, values that came without a key) from the Ruby-hash string."""
    keyed: list[tuple[str, str]] = []
    unkeyed: list[str] = []
    for match in _ENTRY.finditer(text or ""):
        key, value = (_unescape(g) if g is not None else None for g in match.groups())
        if key is not None and key.strip():
            keyed.append((key.strip(), value.strip()))
        elif value.strip():
            unkeyed.append(value.strip())
    return keyed, unkeyed


def parse_category_tree(text: str, title: str) -> tuple[str, ...]:
    """The category path without its last segment when that segment names the product."""
    try:
        paths = json.loads(text) if text.strip() else []
    except json.JSONDecodeError:
        paths = [text]
    path = paths[0] if isinstance(paths, list) and paths else ""
    segments = split_category(str(path), ">")
    if segments and _names_product(segments[-1], title):
        segments = segments[:-1]
    return segments


def _names_product(segment: str, title: str) -> bool:
    stem = segment.rstrip(".").strip()
    return segment.endswith("...") or (bool(title) and title.strip().lower().startswith(stem.lower()))


def _unescape(text: str) -> str:
    return text.replace('\\"', '"').replace("\\\\", "\\")


def _record(
    path: Path, line: int, row: list[str], header: list[str], position: dict[str, int], base: Path
) -> Iterator[CatalogRecord | RowProblem]:
    file = str(path)
    if len(row) != len(header):
        yield RowProblem(file, line, "columns", f"expected {len(header)} columns, found {len(row)}")
        return
    for i, cell in enumerate(row):
        if bad_bytes(cell):
            yield RowProblem(file, line, header[i], "invalid UTF-8 bytes")
            return
    get = lambda column: row[position[column]].strip() if column in position else ""  # noqa: E731
    product_id = get("uniq_id")
    if not product_id:
        yield RowProblem(file, line, "uniq_id", "missing product id")
        return
    title = get("product_name")
    keyed, unkeyed = parse_specifications(get("product_specifications"))
    attributes = ([("Brand", get("brand"))] if get("brand") else []) + keyed
    properties: dict[str, Any] = {c: get(c) for c in PROPERTY_COLUMNS if get(c) and get(c) != _NO_RATING}
    if unkeyed:
        properties["notes"] = unkeyed  # free text without a key: kept, but not an attribute
    yield CatalogRecord(
        id=product_id,
        line=line,
        title=title,
        description=get("description"),
        category=parse_category_tree(get("product_category_tree"), title),
        image=get("image") or None,
        attributes=attributes,
        properties=properties,
        image_base=str(base),
    )
