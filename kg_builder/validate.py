"""Row-level checks every record passes before normalisation and the store see it.

Readers parse; this module decides whether a parsed row can be stored at all. A NUL byte
or a lone surrogate (JSON's "\\ud800", Turtle's "\\uD800") cannot be stored by every
backend or written to a UTF-8 export, and a control character in an id breaks every
place an id travels (URIs, file names, terminals). Such rows are rejected with the field
that holds the problem, whatever reader produced them, so one bad value never aborts a build.
"""

from __future__ import annotations

import re
from typing import Any

from .records import CatalogRecord, RowProblem, printable

MAX_PROPERTY_DEPTH = 32
"""Product properties nested deeper than this are refused (a 100,000-deep JSON is an attack, not data)."""
MAX_ID_CHARS = 1024

_ID_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def _unstorable(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "holds a NUL character"
    return "holds invalid UTF-8 bytes or a lone surrogate"


def check_record(record: CatalogRecord, file: str) -> RowProblem | None:
    """The rejection of ``record`` (file, line, field, why), or None when it can be stored."""

    def reject(field: str, message: str) -> RowProblem:
        return RowProblem(file, record.line, field, message)

    if not isinstance(record.id, str) or not record.id.strip():
        return reject("id", "missing product id")
    if _ID_CONTROL.search(record.id) or _unstorable(record.id):
        return reject("id", f"product id '{printable(record.id)}' holds a control character")
    if len(record.id) > MAX_ID_CHARS:
        return reject("id", f"product id is {len(record.id):,} characters long (at most {MAX_ID_CHARS})")
    texts = [record.title, record.description, record.image or "", *record.category]
    for name, value in record.attributes:
        texts += (name, value)
    if _UNSTORABLE.search("\x01".join(texts)) is not None:  # one scan for the common, clean row
        fields = ["title", "description", "image", *("category" for _ in record.category)]
        for name, _ in record.attributes:  # field names are made only for a row that has a problem
            fields += [f"attributes.{printable(name)}"] * 2
        for field, text in zip(fields, texts):
            why = _unstorable(text)
            if why is not None:
                return reject(field, f"value {why}")
    return _check_properties(record.properties, reject)


def _check_properties(properties: dict[str, Any], reject: Any) -> RowProblem | None:
    """Walk the properties iteratively (no recursion: depth is what is being checked)."""
    stack: list[tuple[str, Any, int]] = [(str(k), v, 1) for k, v in properties.items()]
    while stack:
        path, value, depth = stack.pop()
        if depth > MAX_PROPERTY_DEPTH:
            return reject(path.split(".")[0], f"nested deeper than {MAX_PROPERTY_DEPTH} levels")
        why = _unstorable(path)
        if why is not None:
            return reject(printable(path), f"property name {why}")
        if isinstance(value, str):
            why = _unstorable(value)
            if why is not None:
                return reject(printable(path), f"value {why}")
        elif isinstance(value, dict):
            stack.extend((f"{path}.{k}", v, depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((path, v, depth + 1) for v in value)
    return None
