"""Catalog -> product knowledge graph: read, normalise, extract, check images, load.

kg_builder never imports torch: building a graph must stay light enough for a data
engineer's laptop and fast enough for a 100k-product catalog.
"""

from .behaviour import BehaviourReport, PairsSource, load_behaviour, open_pairs
from .pipeline import build_graph
from .readers import PRESETS, ColumnMapping, open_catalog
from .records import CatalogError, CatalogRecord, RowProblem
from .report import BuildReport

__all__ = [
    "PRESETS",
    "BehaviourReport",
    "BuildReport",
    "CatalogError",
    "CatalogRecord",
    "ColumnMapping",
    "PairsSource",
    "RowProblem",
    "build_graph",
    "load_behaviour",
    "open_catalog",
    "open_pairs",
]
