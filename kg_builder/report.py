"""The build report: what was loaded, what was rejected and why, and how fast."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .records import RowProblem

MAX_LISTED_PROBLEMS = 1000
"""Problems beyond this many are counted but not listed, so a report stays readable."""


class ProblemTally:
    """Counts rejected rows and warnings and lists the first problems; mixed into the reports
    of a catalog build and of a behaviour pairs file (their dataclasses hold the fields)."""

    rows_rejected: int
    warnings: int
    problems: list[RowProblem]

    def add_problem(self, problem: RowProblem) -> None:
        if problem.severity == "rejected":
            self.rows_rejected += 1
        else:
            self.warnings += 1
        if len(self.problems) < MAX_LISTED_PROBLEMS:
            self.problems.append(problem)

    @property
    def problems_not_listed(self) -> int:
        return max(0, self.rows_rejected + self.warnings - len(self.problems))


@dataclass
class BehaviourReport(ProblemTally):
    """What one pairs file contributed; part of the build report."""

    file: str
    rows_read: int = 0
    rows_rejected: int = 0
    warnings: int = 0
    duplicates: int = 0
    edges_by_kind: Counter = field(default_factory=Counter)
    """Distinct (a, b, kind) pairs this file wrote."""
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def edges(self) -> int:
        return sum(self.edges_by_kind.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "rows_read": self.rows_read,
            "rows_rejected": self.rows_rejected,
            "warnings": self.warnings,
            "duplicates": self.duplicates,
            "edges": self.edges,
            "edges_by_kind": dict(sorted(self.edges_by_kind.items())),
            "problems": [p.as_dict() for p in self.problems],
            "problems_not_listed": self.problems_not_listed,
        }


@dataclass
class BuildReport(ProblemTally):
    """Figures of one `kgmm build-kg` run; ``as_dict`` is the JSON written with ``--report``."""

    catalog: str
    format: str
    store: str
    rows_read: int = 0
    products: int = 0
    products_committed: int = 0
    """Products written so far; a build the store stops part way reports exactly this many."""
    rows_rejected: int = 0
    warnings: int = 0
    duplicates: int = 0
    triples_by_source: Counter = field(default_factory=Counter)
    attributes: set[str] = field(default_factory=set)
    values: set[tuple[str, str]] = field(default_factory=set)
    images_ok: int = 0
    images_missing: int = 0
    image_reasons: Counter = field(default_factory=Counter)
    problems: list[RowProblem] = field(default_factory=list)
    seconds: float = 0.0
    catalog_folder: str = ""
    """Absolute folder of the catalog file: exports write image paths relative to it."""
    behaviour: list[BehaviourReport] = field(default_factory=list)
    """One report per pairs file loaded after the catalog (``--behaviour``)."""

    @property
    def any_rejected(self) -> bool:
        """Some catalog row or behaviour pair was rejected (the CLI then exits 3)."""
        return bool(self.rows_rejected or any(b.rows_rejected for b in self.behaviour))

    @property
    def triples(self) -> int:
        return sum(self.triples_by_source.values())

    @property
    def triples_per_second(self) -> float:
        return self.triples / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "catalog": self.catalog,
            "catalog_folder": self.catalog_folder,
            "format": self.format,
            "store": self.store,
            "rows_read": self.rows_read,
            "products": self.products,
            "rows_rejected": self.rows_rejected,
            "warnings": self.warnings,
            "duplicates": self.duplicates,
            "triples": self.triples,
            "triples_by_source": dict(sorted(self.triples_by_source.items())),
            "attributes": len(self.attributes),
            "values": len(self.values),
            "images_ok": self.images_ok,
            "images_missing": self.images_missing,
            "image_missing_reasons": dict(self.image_reasons.most_common()),
            "seconds": round(self.seconds, 3),
            "triples_per_second": round(self.triples_per_second, 1),
            "problems": [p.as_dict() for p in self.problems],
            "problems_not_listed": self.problems_not_listed,
            "behaviour": [b.as_dict() for b in self.behaviour],
        }
