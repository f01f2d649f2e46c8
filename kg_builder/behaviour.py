"""Behaviour pairs (co-view, co-purchase, same query) -> product-product edges.

A pairs file is a CSV with a header: ``product_a`` and ``product_b`` (or ``src`` and ``dst``)
name two catalog products; an optional ``weight`` (a number > 0, default 1) says how strong
the link is, and an optional ``kind`` names the behaviour (default ``co_view``). Pairs load
*after* the catalog, because both products must already be in the store.

Rows are checked like catalog rows: a bad row (missing id, bad weight or kind, a product
paired with itself, an id the store does not know) is rejected and reported with file,
line and field while the rest loads; a bad file (missing, empty, no id columns) raises
:class:`CatalogError` before anything is written.

Pairs are undirected, stored once per (a, b, kind) with ``a < b``. When a pair appears twice
the *last* row wins (it is reported as a warning): that keeps a rerun idempotent, where
summing weights would double them on every rerun.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from graph_store import BEHAVIOUR_KIND, BehaviourEdge, GraphStore

from .records.normalize import normalize_attribute
from .readers.common import bad_bytes, check_file
from .readers.csv_reader import csv_rows, read_header
from .records import CatalogError, RowProblem
from .report import BehaviourReport

DEFAULT_KIND = "co_view"
COLUMN_ALIASES = {"product_a": ("product_a", "src"), "product_b": ("product_b", "dst"), "weight": ("weight",), "kind": ("kind",)}
"""Role -> accepted header names, first match wins (matched case-insensitively)."""
KIND_ALIASES = {"co_buy": "co_purchase", "bought_together": "co_purchase", "also_viewed": "co_view"}
"""Kind spellings that mean a canonical kind, like the attribute aliases of the normaliser."""


def normalize_kind(raw: str) -> str:
    """"Co-View" -> "co_view"; "" when nothing usable as a relation name is left.

    The catalog's attribute folding (Unicode, case, punctuation) with words joined by "_",
    then restricted to :data:`graph_store.BEHAVIOUR_KIND`, because a kind becomes a PyG
    relation name.
    """
    kind = normalize_attribute(raw).replace(" ", "_")
    kind = KIND_ALIASES.get(kind, kind)
    return kind if BEHAVIOUR_KIND.fullmatch(kind) else ""


@dataclass
class PairsSource:
    """An opened pairs file whose header checked out; iterate :meth:`rows` once."""

    path: Path
    header: list[str]
    columns: dict[str, int]  # role -> column index

    def rows(self) -> Iterator[tuple[int, BehaviourEdge] | RowProblem]:
        """(line, edge) for each good row, a rejected :class:`RowProblem` for each bad one."""
        for item in csv_rows(self.path, ",", {}):
            if isinstance(item, RowProblem):
                yield item
            else:
                yield self._row(*item)

    def _row(self, line: int, row: list[str]) -> tuple[int, BehaviourEdge] | RowProblem:
        file = str(self.path)
        if len(row) != len(self.header):
            return RowProblem(file, line, "columns", f"expected {len(self.header)} columns, found {len(row)}")
        for i, cell in enumerate(row):
            if bad_bytes(cell):
                return RowProblem(file, line, self.header[i], "invalid UTF-8 bytes")
        cell = {role: row[i].strip() for role, i in self.columns.items()}
        name = {role: self.header[i] for role, i in self.columns.items()}
        for role in ("product_a", "product_b"):
            if not cell[role]:
                return RowProblem(file, line, name[role], "missing product id")
        if cell["product_a"] == cell["product_b"]:
            return RowProblem(file, line, name["product_b"], f"product {cell['product_a']!r} paired with itself")
        weight = 1.0
        if cell.get("weight"):
            try:
                weight = float(cell["weight"])
            except ValueError:
                return RowProblem(file, line, name["weight"], f"weight {cell['weight']!r} is not a number")
            if not math.isfinite(weight) or weight <= 0:
                return RowProblem(file, line, name["weight"], f"weight {cell['weight']!r} must be a finite number > 0")
        kind = DEFAULT_KIND
        if cell.get("kind"):
            kind = normalize_kind(cell["kind"])
            if not kind:
                return RowProblem(
                    file, line, name["kind"], f"kind {cell['kind']!r} is not a usable name (letters, digits and _, e.g. co_view)"
                )
        return line, BehaviourEdge(cell["product_a"], cell["product_b"], kind, weight)  # file order, for reports


def open_pairs(path: str | Path) -> PairsSource:
    """Check a pairs file and its header; raises :class:`CatalogError` for a file-level problem."""
    path = Path(path)
    check_file(path)
    header = read_header(path)
    if not any(header):
        raise CatalogError(f"{path}: no header row")
    lowered = [h.lower() for h in header]
    columns: dict[str, int] = {}
    for role, names in COLUMN_ALIASES.items():
        found = next((lowered.index(n) for n in names if n in lowered), None)
        if found is not None:
            columns[role] = found
    missing = [" or ".join(COLUMN_ALIASES[r]) for r in ("product_a", "product_b") if r not in columns]
    if missing:
        raise CatalogError(f"{path}: pairs need columns {' and '.join(missing)} (columns: {', '.join(header)})")
    return PairsSource(path, header, columns)


def load_behaviour(source: PairsSource, store: GraphStore, batch_size: int = 10_000) -> BehaviourReport:
    """Load one pairs file into ``store``, ``batch_size`` rows per transaction.

    Rows naming a product the store lacks are rejected batch by batch (one lookup per
    batch), so only pairs of known products reach :meth:`GraphStore.upsert_behaviour`.
    """
    report = BehaviourReport(str(source.path))
    seen: dict[tuple[str, str, str], int] = {}  # key -> line of the row that wins so far
    pending: list[tuple[int, BehaviourEdge]] = []

    def flush() -> None:
        known = store.known_products(pid for _, e in pending for pid in (e.product_a, e.product_b))
        accepted = []
        for line, edge in pending:
            absent = next((role for role in ("product_a", "product_b") if getattr(edge, role) not in known), None)
            if absent is not None:
                column = source.header[source.columns[absent]]
                report.add_problem(RowProblem(report.file, line, column, f"product {getattr(edge, absent)!r} is not in the store"))
                continue
            edge = edge.canonical()
            _note_duplicate(edge, line, source.header[source.columns["product_b"]], seen, report)
            accepted.append(edge)
        store.upsert_behaviour(accepted)
        pending.clear()

    for item in source.rows():
        report.rows_read += 1
        if isinstance(item, RowProblem):
            report.add_problem(item)
            continue
        pending.append(item)
        if len(pending) >= batch_size:
            flush()
    if pending:
        flush()
    report.edges_by_kind.update(kind for _, _, kind in seen)
    report.problems.sort(key=lambda problem: problem.line)  # unknown ids are found a batch later
    return report


def _note_duplicate(
    edge: BehaviourEdge, line: int, column: str, seen: dict[tuple[str, str, str], int], report: BehaviourReport
) -> None:
    key = (edge.product_a, edge.product_b, edge.kind)
    earlier = seen.get(key)
    seen[key] = line
    if earlier is not None:
        report.duplicates += 1
        message = f"duplicate pair ({edge.product_a!r}, {edge.product_b!r}, {edge.kind}); this row's weight wins over line {earlier}"
        report.add_problem(RowProblem(report.file, line, column, message, "warning"))
