"""Catalog readers, one per format, and the registry of named presets.

Every reader does its file-level checks when it is opened (so a bad file fails before
anything is written) and then streams records and row-level problems.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..records import CatalogError
from .common import CatalogSource
from .csv_reader import ColumnMapping, open_csv
from .flipkart import open_flipkart
from .jsonl import open_jsonl
from .rdf import RDF_FORMATS, open_rdf

PRESETS: dict[str, Callable[[Path], CatalogSource]] = {"flipkart": open_flipkart}
"""Named catalog formats with their own quirks, chosen by ``--preset NAME``."""

FORMATS = ("auto", "jsonl", "csv", "rdf")
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "csv"}

__all__ = ["CatalogSource", "ColumnMapping", "FORMATS", "PRESETS", "detect_format", "open_catalog"]


def detect_format(path: Path) -> str:
    """The format implied by the file's suffix."""
    suffix = path.suffix.lower()
    if suffix == ".gz":  # read transparently: catalog.jsonl.gz is a JSONL catalog
        suffix = Path(path.stem).suffix.lower()
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    if suffix in RDF_FORMATS:
        return "rdf"
    raise CatalogError(f"{path}: cannot tell the format from the suffix {suffix!r}; pass --format jsonl|csv|rdf")


def open_catalog(
    path: str | Path, format: str = "auto", preset: str | None = None, mapping: ColumnMapping | None = None
) -> CatalogSource:
    """Open a catalog, choosing the reader from ``preset``, ``format`` or the suffix."""
    path = Path(path)
    if preset is not None:
        if preset not in PRESETS:
            raise CatalogError(f"unknown preset {preset!r}; known presets: {', '.join(sorted(PRESETS))}")
        return PRESETS[preset](path)
    if format not in FORMATS:
        raise CatalogError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    chosen = detect_format(path) if format == "auto" else format
    if chosen == "jsonl":
        return open_jsonl(path)
    if chosen == "csv":
        if path.name.lower().endswith((".tsv", ".tsv.gz")) and mapping is None:
            mapping = ColumnMapping(delimiter="\t")
        return open_csv(path, mapping)
    return open_rdf(path)
