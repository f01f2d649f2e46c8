"""What readers produce: catalog records, and problems found in rows or files."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class CatalogRecord:
    """One product as read from a catalog, before normalisation.

    Attributes:
        line: where the row starts in the file (1-based), or a subject IRI for RDF.
        category: category path segments, root first.
        image: the image reference exactly as the catalog gives it.
        attributes: (attribute name, raw value) pairs in catalog order; one pair per value.
        image_base: folder that relative image paths resolve against and must stay inside.
    """

    id: str
    line: int | str
    title: str = ""
    description: str = ""
    category: tuple[str, ...] = ()
    image: str | None = None
    attributes: list[tuple[str, str]] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    image_base: str | None = None


@dataclass(frozen=True)
class RowProblem:
    """A problem in one row. ``rejected`` rows are not loaded; ``warning`` rows are, minus the field."""

    file: str
    line: int | str
    field: str
    message: str
    severity: Literal["rejected", "warning"] = "rejected"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "field": self.field,
            "message": self.message,
            "severity": self.severity,
        }


class CatalogError(Exception):
    """A problem with a whole catalog file (missing, empty, wrong header): nothing is written."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str, limit: int = 80) -> str:
    """``text`` safe to put in a message: control characters and invalid bytes escaped, bounded.

    Messages reach terminals and logs; a catalog value must never carry an escape sequence
    (or a raw UTF-16 byte soup) there.
    """
    shown = text.encode("utf-8", "backslashreplace").decode("utf-8")
    shown = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", shown)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."
