"""Pieces every catalog reader shares: opening files safely, progress, field checks."""

from __future__ import annotations

import errno
import gzip
import io
import os
import stat
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from ..records.normalize import split_category
from ..records import CatalogError, CatalogRecord, RowProblem

RESERVED_KEYS = {"extracted", "predicted"}
"""JSONL keys that kgmm's own export writes for derived values: never catalog facts."""


@dataclass
class CatalogSource:
    """An opened, validated catalog: iterate ``rows()`` once; ``position()`` drives progress.

    A reader that can split reading from parsing also sets ``raw`` (the file's rows
    unparsed: cheap to read, picklable) and ``parse`` (one raw row -> records and problems,
    never raising), so that a build can read in one process and parse in several; ``rows()``
    is then exactly ``parse`` over ``raw`` (see :func:`split_source`).
    """

    path: Path
    format: str
    rows: Callable[[], Iterator[CatalogRecord | RowProblem]]
    position: Callable[[], int] = lambda: 0
    size: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    raw: Callable[[], Iterator[Any]] | None = None
    parse: Callable[[Any], Iterator[CatalogRecord | RowProblem]] | None = None


def split_source(
    path: Path,
    format: str,
    raw: Callable[[], Iterator[Any]],
    parse: Callable[[Any], Iterator[CatalogRecord | RowProblem]],
    position: Callable[[], int],
    size: int,
    details: dict[str, Any] | None = None,
) -> CatalogSource:
    """A source whose ``rows()`` is ``parse`` applied to each of ``raw()``'s rows, in order.

    A read error (a truncated .gz) raises from ``rows()`` after the rows before it, as it
    would from a reader that parsed as it read.
    """

    def rows() -> Iterator[CatalogRecord | RowProblem]:
        for item in raw():
            yield from parse(item)

    return CatalogSource(path, format, rows, position, size, details or {}, raw, parse)


def cell_parser(
    path: Path, record: Callable[[int, list[str]], Iterator[CatalogRecord | RowProblem]]
) -> Callable[[tuple[int, list[str]] | RowProblem], Iterator[CatalogRecord | RowProblem]]:
    """``parse`` for a reader of delimited rows: a row's problem passes through, and a row
    whose conversion raises is rejected with the error, so one row never stops the build."""

    def parse(item: tuple[int, list[str]] | RowProblem) -> Iterator[CatalogRecord | RowProblem]:
        if isinstance(item, RowProblem):
            yield item
            return
        try:
            yield from record(item[0], item[1])
        except Exception as err:  # noqa: BLE001 - one row, never the build
            yield row_failure(str(path), item[0], err)

    return parse


GZIP_MAGIC = b"\x1f\x8b"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF32_BOMS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")


def check_file(path: Path) -> int:
    """File-level checks every format needs; returns the size in bytes (compressed, for a .gz)."""
    try:
        info = os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise CatalogError(f"{path}: symlink loop (the link points back to itself)") from None
        if err.errno in (errno.ENOENT, errno.ENOTDIR):
            raise CatalogError(f"{path}: no such file") from None
        raise CatalogError(f"{path}: cannot read ({err.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise CatalogError(f"{path}: not a file" + (" (a directory)" if stat.S_ISDIR(info.st_mode) else ""))
    if info.st_size == 0:
        raise CatalogError(f"{path}: file is empty")
    try:
        with open(path, "rb") as handle:
            head = handle.read(65536)
        if head.startswith(GZIP_MAGIC):
            with gzip.open(path, "rb") as handle:
                head = handle.read(65536)
    except (OSError, EOFError, zlib.error) as err:
        raise CatalogError(f"{path}: cannot read ({getattr(err, 'strerror', None) or err})") from None
    if head.startswith(_UTF32_BOMS):
        raise CatalogError(f"{path}: the file is UTF-32 encoded; save it as UTF-8")
    if not head.startswith(_UTF16_BOMS) and b"\x00" in head[:4096]:
        raise CatalogError(
            f"{path}: the file holds NUL bytes: UTF-16 without a byte-order mark, or not text; save it as UTF-8"
        )
    if not head.strip(b" \t\r\n\xef\xbb\xbf\xff\xfe\x00"):
        raise CatalogError(f"{path}: file is empty (only whitespace)")
    return info.st_size


def open_binary(path: Path) -> IO[bytes]:
    """The file's bytes, decompressed when it is gzip (whatever its name), so ``.gz`` reads as is."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    return gzip.open(path, "rb") if magic == GZIP_MAGIC else open(path, "rb")


def open_text(path: Path) -> io.TextIOWrapper:
    """Text with invalid UTF-8 bytes kept as surrogates, so the row holding them is reported.

    UTF-8 with or without a byte-order mark, and UTF-16 with one (what spreadsheet programs
    write as "Unicode text"), gzip-compressed or not.
    """
    raw = open_binary(path)
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    encoding = "utf-16" if head in _UTF16_BOMS else "utf-8-sig"
    return io.TextIOWrapper(raw, encoding=encoding, errors="surrogateescape", newline="")  # type: ignore[arg-type]


def bytes_read(box: dict[str, Any]) -> int:
    """How far the reader holding ``box["h"]`` has read its file (for progress bars, in file bytes)."""
    handle = box.get("h")
    if handle is None or handle.closed:
        return 0
    raw = handle.buffer
    inner = getattr(raw, "fileobj", None)  # a GzipFile: progress in compressed bytes
    return inner.tell() if inner is not None else raw.tell()


def row_failure(file: str, line: int | str, err: Exception) -> RowProblem:
    """A row whose conversion raised: rejected with the error, so the build goes on."""
    if isinstance(err, RecursionError):
        return RowProblem(file, line, "json", "nested too deeply to read")
    return RowProblem(file, line, "row", f"cannot read this row ({type(err).__name__}: {err})")


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
    if value.__class__ is str:  # the common case first: one check instead of five
        return value.strip()
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
    if value.__class__ is str:  # the common case, as the loop below would treat it
        text = value.strip()
        return [(name, text)] if text else []
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
