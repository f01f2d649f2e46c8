"""CSV catalogs with a column mapping (a YAML file or CLI flags).

Without a mapping, columns named id, title, description, category and image are used
as such and every other column is an attribute. A mapping may rename those roles,
list the attribute columns (then every remaining column becomes a product property),
and set the category and multi-value separators.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

from ..records.normalize import split_category
from ..records import CatalogError, CatalogRecord, RowProblem, printable
from .common import CatalogSource, bad_bytes, bytes_read, cell_parser, check_file, open_text, split_source

ROLES = ("id", "title", "description", "category", "image")
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # a 10 MB description is a real row, not an error


@dataclass
class ColumnMapping:
    """Which CSV columns play which role.

    Attributes:
        columns: role (id/title/description/category/image) -> column name.
        attributes: column -> attribute name; None means every unmapped column.
        category_separator: separator inside the category column.
        list_separator: splits one attribute cell into several values (e.g. "|").
        delimiter: the CSV field delimiter.
    """

    columns: dict[str, str] = field(default_factory=lambda: {role: role for role in ROLES})
    attributes: dict[str, str] | None = None
    category_separator: str = ">"
    list_separator: str | None = None
    delimiter: str = ","

    @classmethod
    def from_yaml(cls, path: Path) -> "ColumnMapping":
        """Read a mapping file; see ``examples/mapping.yaml``."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as err:
            raise CatalogError(f"{path}: cannot read mapping ({err})") from None
        if not isinstance(data, dict):
            raise CatalogError(f"{path}: a mapping file is a YAML object")
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "mapping") -> "ColumnMapping":
        unknown = set(data) - {*ROLES, "attributes", "category_separator", "list_separator", "delimiter"}
        if unknown:
            raise CatalogError(f"{origin}: unknown mapping keys {sorted(unknown)}")
        columns = {role: role for role in ROLES}
        columns.update({role: str(data[role]) for role in ROLES if data.get(role)})
        attributes = data.get("attributes")
        if isinstance(attributes, list):
            attributes = {str(c): str(c) for c in attributes}
        elif isinstance(attributes, dict):
            attributes = {str(c): str(a) for c, a in attributes.items()}
        elif attributes is not None:
            raise CatalogError(f"{origin}: attributes must be a list of columns or a column: name map")
        return cls(
            columns=columns,
            attributes=attributes,
            category_separator=str(data.get("category_separator", ">")),
            list_separator=data.get("list_separator"),
            delimiter=str(data.get("delimiter", ",")),
        )

    def with_overrides(self, columns: dict[str, str], attributes: dict[str, str]) -> "ColumnMapping":
        """This mapping with CLI flags applied on top."""
        unknown = set(columns) - set(ROLES)
        if unknown:
            raise CatalogError(f"--column: unknown roles {sorted(unknown)}; expected {', '.join(ROLES)}")
        merged = dict(self.attributes or {}) | attributes if attributes else self.attributes
        return ColumnMapping(
            {**self.columns, **columns}, merged, self.category_separator, self.list_separator, self.delimiter
        )


def open_csv(path: Path, mapping: ColumnMapping | None = None) -> CatalogSource:
    """Validate the header against the mapping and open a CSV catalog."""
    mapping = mapping or ColumnMapping()
    size = check_file(path)
    header = read_header(path, mapping.delimiter)
    plan = _plan(path, header, mapping)
    box: dict[str, Any] = {}

    parse = cell_parser(path, lambda line, cells: _row(path, line, cells, header, plan, mapping))
    return split_source(
        path, "csv", lambda: csv_rows(path, mapping.delimiter, box), parse, lambda: bytes_read(box), size, {"columns": header}
    )


def read_header(path: Path, delimiter: str = ",") -> list[str]:
    """The stripped header row of a CSV file (file-level checks done by the caller)."""
    try:
        with open_text(path) as handle:
            return [h.strip() for h in next(csv.reader(handle, delimiter=delimiter), [])]
    except (csv.Error, OSError, EOFError, UnicodeError) as err:
        raise CatalogError(f"{path}: cannot read the header row ({err})") from None


def show_columns(header: list[str], limit: int = 12) -> str:
    """Header names for an error message: escaped (no raw bytes or control characters), bounded."""
    shown = [printable(h, 40) for h in header[:limit]]
    more = f", ... ({len(header) - limit} more)" if len(header) > limit else ""
    return ", ".join(shown) + more


def csv_rows(path: Path, delimiter: str, box: dict[str, Any]) -> Iterator[tuple[int, list[str]] | RowProblem]:
    """(starting line, cells) for each data row; malformed rows become problems.

    ``box["h"]`` holds the open handle so that callers can report progress in bytes.
    """
    with open_text(path) as handle:
        box["h"] = handle
        reader = csv.reader(handle, delimiter=delimiter)
        next(reader, None)
        start = reader.line_num + 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                yield RowProblem(str(path), start, "csv", f"malformed CSV ({err})")
                start = reader.line_num + 1
                continue
            line, start = start, reader.line_num + 1
            if row:
                yield line, row


@dataclass
class _Plan:
    roles: dict[str, int]  # role -> column index
    attributes: list[tuple[int, str]]  # (column index, attribute name)
    properties: list[tuple[int, str]]  # (column index, property name)


def _plan(path: Path, header: list[str], mapping: ColumnMapping) -> _Plan:
    if not any(header):
        raise CatalogError(f"{path}: no header row")
    position = {name: i for i, name in enumerate(header)}
    id_column = mapping.columns.get("id", "id")
    if id_column not in position:
        raise CatalogError(f"{path}: no id column {id_column!r} in the header (columns: {show_columns(header)})")
    roles = {role: position[col] for role, col in mapping.columns.items() if col in position}
    explicit = {col for role, col in mapping.columns.items() if role != "id" and col not in ROLES}
    missing = sorted(col for col in explicit if col not in position)
    if missing:
        raise CatalogError(f"{path}: mapped columns not in the header: {', '.join(missing)}")
    used = set(roles.values())
    if mapping.attributes is None:
        attributes = [(i, name) for i, name in enumerate(header) if i not in used and name]
        properties: list[tuple[int, str]] = []
    else:
        absent = sorted(c for c in mapping.attributes if c not in position)
        if absent:
            raise CatalogError(f"{path}: attribute columns not in the header: {', '.join(absent)}")
        attributes = [(position[c], name) for c, name in mapping.attributes.items()]
        used |= {i for i, _ in attributes}
        properties = [(i, name) for i, name in enumerate(header) if i not in used and name]
    return _Plan(roles, attributes, properties)


def _row(
    path: Path, line: int, row: list[str], header: list[str], plan: _Plan, mapping: ColumnMapping
) -> Iterator[CatalogRecord | RowProblem]:
    file = str(path)
    if len(row) != len(header):
        yield RowProblem(file, line, "columns", f"expected {len(header)} columns, found {len(row)}")
        return
    for i, cell in enumerate(row):
        if bad_bytes(cell):
            yield RowProblem(file, line, header[i], "invalid UTF-8 bytes")
            return
    cell = lambda role: row[plan.roles[role]].strip() if role in plan.roles else ""  # noqa: E731
    product_id = cell("id")
    if not product_id:
        yield RowProblem(file, line, header[plan.roles["id"]], "missing product id")
        return
    attributes = []
    for index, name in plan.attributes:
        text = row[index].strip()
        parts = text.split(mapping.list_separator) if mapping.list_separator else [text]
        attributes.extend((name, part.strip()) for part in parts if part.strip())
    yield CatalogRecord(
        id=product_id,
        line=line,
        title=cell("title"),
        description=cell("description"),
        category=split_category(cell("category"), mapping.category_separator) if cell("category") else (),
        image=cell("image") or None,
        attributes=attributes,
        properties={name: row[i] for i, name in plan.properties if row[i] != ""},
        image_base=str(path.parent),
    )
