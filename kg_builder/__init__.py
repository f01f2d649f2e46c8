"""Catalog -> product knowledge graph: read, normalise, extract, check images, load.

kg_builder never imports torch: building a graph must stay light enough for a data
engineer's laptop and fast enough for a 100k-product catalog.
"""

from .pipeline import build_graph
from .readers import PRESETS, ColumnMapping, open_catalog
from .records import CatalogError, CatalogRecord, RowProblem
from .report import BuildReport

__all__ = [
    "PRESETS",
    "BuildReport",
    "CatalogError",
    "CatalogRecord",
    "ColumnMapping",
    "RowProblem",
    "build_graph",
    "open_catalog",
]
