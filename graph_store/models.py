"""Plain records exchanged with a GraphStore.

They are deliberately backend-neutral: the embedded SQLite store and the Neo4j store
read and write exactly these, so kg_builder and kgmm never see storage details.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal, Mapping, NamedTuple

Source = Literal["catalog", "text", "model", "reviewed"]
SOURCES: tuple[Source, ...] = ("catalog", "text", "model", "reviewed")
"""Edge provenance. ``reviewed`` (a value a person accepted) comes last although people trust it
most: the codes are positions here and are part of every snapshot's hash, so a new source is
appended, never inserted (inserting would renumber ``model`` and change every stored hash)."""

FACT_SOURCES: tuple[Source, ...] = ("catalog", "text", "reviewed")
"""Sources whose edges are facts: what training reads and what predictions never shadow."""


class SourceCode(IntEnum):
    """The int8 code of each source in ``Snapshot.edge_source``: its position in :data:`SOURCES`."""

    CATALOG = 0
    TEXT = 1
    MODEL = 2
    REVIEWED = 3

CATEGORY_SEPARATOR = " > "


@dataclass(frozen=True)
class ProductNode:
    """One product and its own properties (attribute values are edges, not properties).

    Attributes:
        id: the catalog's identifier, unique in the store.
        category: the leaf category path as segments, e.g. ("Watches", "Wrist Watches").
        image: absolute path of a checked image; when missing, the reference as the
            catalog gave it (for provenance); None when the catalog named none.
        image_status: "ok", "missing" or "none" (the catalog named no image).
        image_reason: why the image is missing, for people.
        properties: other catalog fields, JSON-serialisable.
    """

    id: str
    title: str = ""
    description: str = ""
    category: tuple[str, ...] = ()
    image: str | None = None
    image_status: str = "none"
    image_reason: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)

    @property
    def category_path(self) -> str | None:
        return CATEGORY_SEPARATOR.join(self.category) if self.category else None


class AttributeEdge(NamedTuple):
    """(:Product)-[:HAS {attribute, source, score, run_id}]->(:Value {attribute, value}).

    ``value`` is the normalised value (the Value node's key); ``raw`` is the spelling
    found in the catalog or text, kept for provenance. A NamedTuple rather than a
    dataclass because builds create millions of them and tuples are cheap to make.
    """

    product_id: str
    attribute: str
    value: str
    source: Source = "catalog"
    raw: str | None = None
    score: float | None = None
    run_id: str | None = None


BEHAVIOUR_KIND = re.compile(r"[a-z][a-z0-9_]{0,63}")
"""A behaviour kind is a lower-case identifier (co_view, co_purchase, same_query): it becomes a
PyG relation name and a property value, so it is restricted here rather than escaped everywhere."""


class BehaviourEdge(NamedTuple):
    """(:Product)-[:BEHAVIOUR {kind, weight}]->(:Product): two products users linked.

    Behaviour relations (co-view, co-purchase, same query) are symmetric, so a stored edge
    always has ``product_a < product_b``; :meth:`canonical` puts a pair in that order.
    """

    product_a: str
    product_b: str
    kind: str = "co_view"
    weight: float = 1.0

    def canonical(self) -> "BehaviourEdge":
        if self.product_b < self.product_a:
            return self._replace(product_a=self.product_b, product_b=self.product_a)
        return self


@dataclass(frozen=True)
class RunInfo:
    """A completion run: the unit in which predicted edges are written and undone."""

    run_id: str
    model_version: str = ""
    created_at: str = ""
    edges: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)


DECISIONS = ("accept", "reject", "keep", "replace")
"""What a reviewer can say: about a proposed value, ``accept`` (it becomes a ``reviewed`` fact) or
``reject`` (it is removed and never proposed again for that product); about a suspect catalog value
and the suggestion made in its place, ``keep`` (the catalog value is right: the suggestion goes, and
the flag is never raised again) or ``replace`` (the suggestion becomes a ``reviewed`` fact and the
catalog value is superseded, kept as the reviewed edge's ``raw``)."""

FLAG_NOTE = "suspect catalog value "
"""The ``raw`` of a predicted edge that suggests a value in place of a suspect catalog value starts
with this, then the catalog value's ``repr`` (see :func:`flagged_value`)."""


def flagged_value(raw: str | None) -> str | None:
    """The suspect catalog value a suggestion edge's ``raw`` names, or None for a plain proposal.

    ``raw`` is ``suspect catalog value 'red' (p=0.012)`` as ``kgmm complete`` writes it; the
    value is the ``repr`` of a string, read back with :func:`ast.literal_eval` (never ``eval``).
    """
    if not raw or not raw.startswith(FLAG_NOTE):
        return None
    body = raw[len(FLAG_NOTE):]
    end = body.rfind(" (p=")
    try:
        value = ast.literal_eval(body[:end] if end >= 0 else body)
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Review:
    """A person's decision on (product, attribute, value), as kept by the store.

    Attributes:
        decision: one of :data:`DECISIONS`.
        reviewer: who decided (free text: a login, an e-mail).
        decided_at: ISO time, set by the store when empty.
        note: why, optional.
        run_id: the completion run that proposed the value (None when a person typed it).
        score: the proposal's probability when it was decided (for calibration later).
        raw: the proposal edge's ``raw``, so undoing the decision can put the proposal back.
        catalog_value: for ``keep`` and ``replace``, the suspect catalog value the decision is about.
        seq: the store's running number of the decision (the order decisions were taken in).
    """

    product_id: str
    attribute: str
    value: str
    decision: str
    reviewer: str = ""
    decided_at: str = ""
    note: str | None = None
    run_id: str | None = None
    score: float | None = None
    raw: str | None = None
    catalog_value: str | None = None
    seq: int = 0

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.product_id, self.attribute, self.value)


@dataclass(frozen=True)
class ProductView:
    """A product with all its attribute edges, as returned by ``GraphStore.get_product``."""

    product: ProductNode
    edges: tuple[AttributeEdge, ...]


@dataclass
class StoreStats:
    """Counts that describe a store; ``as_dict`` is the JSON form used by the CLI."""

    products: int = 0
    values: int = 0
    attributes: int = 0
    categories: int = 0
    edges_by_source: dict[str, int] = field(default_factory=dict)
    products_with_title: int = 0
    products_with_description: int = 0
    products_with_image: int = 0
    images_missing: int = 0
    runs: int = 0
    top_attributes: list[tuple[str, int, int]] = field(default_factory=list)
    """(attribute, products having it, distinct values), most used first."""
    top_categories: list[tuple[str, int]] = field(default_factory=list)
    """(top-level category, products), largest first."""
    behaviour_edges: dict[str, int] = field(default_factory=dict)
    """Product-product behaviour edges by kind."""

    @property
    def triples(self) -> int:
        return sum(self.edges_by_source.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "products": self.products,
            "values": self.values,
            "attributes": self.attributes,
            "categories": self.categories,
            "triples": self.triples,
            "edges_by_source": dict(sorted(self.edges_by_source.items())),
            "products_with_title": self.products_with_title,
            "products_with_description": self.products_with_description,
            "products_with_image": self.products_with_image,
            "images_missing": self.images_missing,
            "runs": self.runs,
            "top_attributes": [
                {"attribute": a, "products": n, "values": v} for a, n, v in self.top_attributes
            ],
            "top_categories": [{"category": c, "products": n} for c, n in self.top_categories],
            "behaviour_edges": dict(sorted(self.behaviour_edges.items())),
        }
