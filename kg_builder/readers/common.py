"""Pieces every catalog reader shares: opening files safely, progress, field checks."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from ..normalize import split_category
from ..records import CatalogError, CatalogRecord, RowProblem

RESERVED_KEYS = {"extracted", "predicted"}
"""JSONL keys that kgmm's own export writes for derived values: never catalog facts."""


@dataclass
class CatalogSource:
    """An opened, validated catalog: iterate ``rows()`` once; ``position()`` drives progress."""

    path: Path
    format: str
    rows: Callable[[], Iterator[CatalogRecord | RowProblem]]
    position: Callable[[], int] = lambda: 0
    size: int = 0
    details: dict[str, Any] = field(default_factory=dict)


def check_file(path: Path) -> int:
    """File-level checks every format needs; returns the size in bytes."""
    if not path.exists():
        raise CatalogError(f"{path}: no such file")
    if not path.is_file():
        raise CatalogError(f"{path}: not a file")
    size = path.stat().st_size
    if size == 0:
        raise CatalogError(f"{path}: file is empty")
    try:
        with open(path, "rb") as handle:
            head = handle.read(65536)
    except OSError as err:
        raise CatalogError(f"{path}: cannot read ({err.strerror})") from None
    if not head.strip(b" \t\r\n\xef\xbb\xbf"):
        raise CatalogError(f"{path}: file is empty (only whitespace)")
    return size


def open_text(path: Path) -> io.TextIOWrapper:
    """Text with invalid UTF-8 bytes kept as surrogates, so the row holding them is reported."""
    return open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")


def bytes_read(box: dict[str, Any]) -> int:
    """How far the reader holding ``box["h"]`` has read its file (for progress bars)."""
    handle = box.get("h")
    return handle.buffer.tell() if handle is not None and not handle.closed else 0


def bad_bytes(text: str) -> bool:
    """True when ``text`` holds bytes that were not valid UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def first_bad_field(fields: dict[str, Any]) -> str | None:
    """Name of the first field (recursing into lists and dicts) with invalid UTF-8 bytes."""
    for name, value in fields.items():
        if isinstance(value, str) and bad_bytes(value):
            return name
        if bad_bytes(str(name)):
            return str(name)
        if isinstance(value, dict) and first_bad_field(value):
            return f"{name}.{first_bad_field(value)}"
        if isinstance(value, list) and any(isinstance(v, str) and bad_bytes(v) for v in value):
            return name
    return None


def scalar_text(value: Any) -> str | None:
    """A JSON scalar as catalog text; None for null and for values that are not scalars."""
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def parse_category(value: Any, separator: str = ">") -> tuple[str, ...] | None:
    """A category given as "A > B > C" or as a list of segments; None when malformed."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return split_category(value, separator)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(v.strip() for v in value if v.strip())
    return None


def attribute_pairs(
    name: str, value: Any, file: str, line: int | str, problems: list[RowProblem]
) -> list[tuple[str, str]]:
    """(name, raw value) pairs for one attribute given as a scalar or a list of scalars."""
    values = value if isinstance(value, list) else [value]
    pairs = []
    for item in values:
        text = scalar_text(item)
        if text is None:
            if item is not None:
                problems.append(
                    RowProblem(file, line, f"attributes.{name}", f"unsupported value {type(item).__name__}; skipped", "warning")
                )
            continue
        if text:
            pairs.append((name, text))
    return pairs
