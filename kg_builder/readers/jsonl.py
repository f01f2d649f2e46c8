"""Canonical JSONL: one product object per line.

``{"id", "title", "description"?, "category"? ("A > B > C" or a list), "image"?,
"attributes"? {name: value or [values]}}``; any other key is kept as a product property.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from ..records import CatalogRecord, RowProblem
from .common import (
    RESERVED_KEYS,
    CatalogSource,
    attribute_pairs,
    bad_bytes,
    bytes_read,
    check_file,
    split_source,
    first_bad_field,
    open_text,
    parse_category,
    row_failure,
    scalar_text,
)

KNOWN_KEYS = {"id", "title", "description", "category", "image", "attributes"}


def open_jsonl(path: Path) -> CatalogSource:
    """Validate and open a JSONL catalog."""
    size = check_file(path)
    handle_box: dict[str, Any] = {}

    def raw() -> Iterator[tuple[int, str]]:
        with open_text(path) as handle:
            handle_box["h"] = handle
            for line_no, line in enumerate(handle, 1):
                if line.strip():
                    yield line_no, line

    file, base = str(path), str(path.parent)  # made once: a catalog has millions of lines

    def parse(item: tuple[int, str]) -> Iterator[CatalogRecord | RowProblem]:
        line_no, line = item
        try:
            yield from _parse_line(file, base, line_no, line)
        except Exception as err:  # noqa: BLE001 - one row, never the build
            yield row_failure(file, line_no, err)

    return split_source(path, "jsonl", raw, parse, lambda: bytes_read(handle_box), size)


def _parse_line(file: str, base: str, line_no: int, line: str) -> Iterator[CatalogRecord | RowProblem]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        yield RowProblem(file, line_no, "json", f"malformed JSON ({err.msg} at column {err.colno})")
        return
    except RecursionError:
        yield RowProblem(file, line_no, "json", "nested too deeply to read")
        return
    except ValueError as err:  # e.g. an integer with more digits than Python converts
        yield RowProblem(file, line_no, "json", f"malformed JSON ({err})")
        return
    if not isinstance(obj, dict):
        yield RowProblem(file, line_no, "json", f"expected an object, found {type(obj).__name__}")
        return
    if bad_bytes(line):
        yield RowProblem(file, line_no, first_bad_field(obj) or "line", "invalid UTF-8 bytes")
        return
    yield from record_from_object(obj, file, line_no, base)


def record_from_object(
    obj: dict[str, Any], file: str, line: int | str, base: Path | str
) -> Iterator[CatalogRecord | RowProblem]:
    """Turn one canonical product object into a record (plus warnings), or a rejection."""
    product_id = scalar_text(obj.get("id"))
    if not product_id:
        yield RowProblem(file, line, "id", "missing product id")
        return
    category = parse_category(obj.get("category"))
    if category is None:
        yield RowProblem(file, line, "category", "expected a string or a list of strings")
        return
    problems: list[RowProblem] = []
    attributes: list[tuple[str, str]] = []
    raw_attributes = obj.get("attributes") or {}
    if not isinstance(raw_attributes, dict):
        yield RowProblem(file, line, "attributes", "expected an object of name: value")
        return
    for name, value in raw_attributes.items():
        attributes.extend(attribute_pairs(str(name), value, file, line, problems))
    image = scalar_text(obj.get("image"))
    yield from problems
    yield CatalogRecord(
        id=product_id,
        line=line,
        title=scalar_text(obj.get("title")) or "",
        description=scalar_text(obj.get("description")) or "",
        category=category,
        image=image or None,
        attributes=attributes,
        properties={k: v for k, v in obj.items() if k not in KNOWN_KEYS and k not in RESERVED_KEYS},
        image_base=str(base),
    )
