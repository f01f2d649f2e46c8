"""What every export writer needs: products joined with their edges, and cell/text guards.

An export is read by other programs (spreadsheets, XML and RDF parsers, the next build), so
every writer passes its strings through one of these guards: a value may hold any
character the catalog held, but the file must stay well-formed and harmless.
"""

from __future__ import annotations

import itertools
import os
import re
from typing import Iterator

from graph_store import AttributeEdge, GraphStore, ProductNode

_SURROGATE = re.compile(r"[\ud800-\udfff]")
_XML_INVALID = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NUMBER = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
"""A spreadsheet runs a cell starting with one of these as a formula (CSV injection)."""


def products_with_edges(store: GraphStore) -> Iterator[tuple[ProductNode, list[AttributeEdge]]]:
    """Each product with its edges, both streams ordered by product id (a merge join)."""
    triples = itertools.groupby(store.iter_triples(), key=lambda e: e.product_id)
    pending = next(triples, None)
    for product in store.iter_products():
        edges: list[AttributeEdge] = []
        if pending is not None and pending[0] == product.id:
            edges = list(pending[1])
            pending = next(triples, None)
        yield product, edges


def storable(text: str) -> str:
    """``text`` encodable as UTF-8: a lone surrogate (from an old store) becomes U+FFFD."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def xml_safe(text: str) -> str:
    """``text`` with the characters XML 1.0 forbids (VT, ESC, BEL, NUL...) written as ``\\xNN``."""
    return _XML_INVALID.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else "\ufffd", text)


def csv_safe(cell: object) -> object:
    """A cell a spreadsheet shows as text: a formula-like string gets a leading apostrophe.

    Plain numbers ("-20", "+5") are left alone: a spreadsheet reads them as numbers, not formulas.
    """
    if not isinstance(cell, str):
        return cell
    cell = storable(cell)
    if cell.startswith(FORMULA_STARTS) and not _NUMBER.match(cell):
        return "'" + cell
    return cell


def image_reference(product: ProductNode, folder: str | None) -> str | None:
    """The product's checked image as a path relative to the catalog's folder, or None.

    Never an absolute path of the machine that built the graph: an image outside the
    recorded folder (or with no folder recorded) is named by its file name alone.
    """
    if not product.image or product.image_status != "ok":
        return None
    if folder:
        relative = os.path.relpath(product.image, folder)
        if not relative.startswith(os.pardir):
            return relative.replace(os.sep, "/")
    return os.path.basename(product.image)
