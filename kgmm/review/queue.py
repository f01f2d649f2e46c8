"""Open proposals, the review queue, and decisions taken on them, through the store contract only.

An open proposal is a predicted edge (source ``model``) still in the store: deciding on it
removes it (graph_store.reviews), so what is left is what is left to review. A proposal whose
``raw`` names a suspect catalog value (``kgmm complete``'s noise flags) is a *suggestion*: it is
accepted by replacing that catalog value, and turned down by keeping it.

The queue orders products by what a review is worth: a decision teaches most where the model is
unsure (probability near 0.5) and where the attribute is frequent (the lesson applies to many
products, and calibration per attribute needs decisions there). A product's worth is that of its
best open proposal, so one very uncertain value is enough to bring it forward.
"""

from __future__ import annotations

import getpass
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from graph_store import FACT_SOURCES, GraphStore, ProductNode, Review, flagged_value

REVIEWER_ENV = "KGMM_REVIEWER"


@dataclass(frozen=True)
class Proposal:
    """An open predicted value, or a suggestion against a suspect catalog value (``catalog_value``)."""

    product_id: str
    attribute: str
    value: str
    score: float
    run_id: str
    catalog_value: str | None = None

    @property
    def suspect(self) -> bool:
        return self.catalog_value is not None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.product_id, self.attribute, self.value)

    def as_row(self) -> dict:
        return {"product_id": self.product_id, "attribute": self.attribute, "value": self.value, "score": self.score,
                "kind": "suspect" if self.suspect else "proposal", "catalog_value": self.catalog_value, "run_id": self.run_id}


@dataclass(frozen=True)
class Filters:
    """What the queue and the list show; every field None means everything."""

    attribute: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    suspect: bool | None = None  # True: suggestions only, False: plain proposals only
    category: str | None = None  # a category path prefix, e.g. "Home Furnishing"
    product_id: str | None = None

    def keep(self, proposal: Proposal) -> bool:
        return (
            (self.attribute is None or proposal.attribute == self.attribute)
            and (self.min_score is None or proposal.score >= self.min_score)
            and (self.max_score is None or proposal.score <= self.max_score)
            and (self.suspect is None or proposal.suspect == self.suspect)
            and (self.product_id is None or proposal.product_id == self.product_id)
        )


def open_proposals(store: GraphStore, filters: Filters = Filters()) -> list[Proposal]:
    """Open proposals matching ``filters`` (but the category), ordered by product, attribute, best score."""
    found: dict[tuple[str, str, str], Proposal] = {}
    for edge in store.iter_triples(["model"]):
        proposal = Proposal(edge.product_id, edge.attribute, edge.value, float(edge.score or 0.0), edge.run_id or "",
                            flagged_value(edge.raw))
        best = found.get(proposal.key)
        if filters.keep(proposal) and (best is None or proposal.score > best.score):  # one line per value, its best run
            found[proposal.key] = proposal
    return sorted(found.values(), key=lambda p: (p.product_id, p.attribute, -p.score, p.value))


def worth(score: float, attribute_products: int) -> float:
    """What deciding one proposal is worth: uncertainty (1 at p=0.5, 0 at p=0 or 1) times log frequency."""
    return (1.0 - abs(2.0 * score - 1.0)) * math.log1p(attribute_products)


@dataclass
class QueueItem:
    """A product with open proposals, and what reviewing it is worth."""

    product: ProductNode
    proposals: list[Proposal] = field(default_factory=list)
    worth: float = 0.0


def review_queue(store: GraphStore, filters: Filters = Filters(), source: str | None = None) -> list[QueueItem]:
    """Products with open proposals matching ``filters``, most worth reviewing first.

    ``source`` keeps products that have at least one edge from that source (``catalog``: products
    the catalog describes; ``text``; ``reviewed``: products already partly reviewed).
    """
    proposals = open_proposals(store, filters)
    frequency = attribute_frequency(store)
    by_product: dict[str, list[Proposal]] = {}
    for proposal in proposals:
        by_product.setdefault(proposal.product_id, []).append(proposal)
    with_source = {e.product_id for e in store.iter_triples([source])} if source else None
    items = []
    for product in store.iter_products():
        found = by_product.get(product.id)
        if not found or (with_source is not None and product.id not in with_source):
            continue
        if filters.category and not (product.category_path or "").startswith(filters.category):
            continue
        value = max(worth(p.score, frequency.get(p.attribute, 0)) for p in found)
        items.append(QueueItem(product, found, value))
    return sorted(items, key=lambda item: (-item.worth, item.product.id))


def attribute_frequency(store: GraphStore) -> Counter:
    """attribute -> number of products that have it as a fact."""
    pairs = {(e.product_id, e.attribute) for e in store.iter_triples(FACT_SOURCES)}
    return Counter(attribute for _, attribute in pairs)


def reviewer_name(given: str | None = None) -> str:
    """Who is deciding: ``given``, else ``$KGMM_REVIEWER``, else the login name."""
    if given:
        return given
    try:
        return os.environ.get(REVIEWER_ENV) or getpass.getuser()
    except (KeyError, OSError):  # no login name in a bare container
        return "unknown"


def decide(store: GraphStore, proposal: Proposal | tuple[str, str, str], verdict: str, reviewer: str,
           note: str | None = None) -> Review:
    """Accept or reject a proposal the way a person means it, and record it.

    ``verdict`` is ``accept`` or ``reject``; on a suggestion against a suspect catalog value,
    accept means *use the suggestion* (``replace``) and ``keep`` means *the catalog value is right*.
    A bare (product, attribute, value) is looked up among the open proposals first, so accepting a
    suggestion by name replaces the catalog value as the web page's button does.
    """
    if not isinstance(proposal, Proposal):
        pid, attribute, value = proposal
        found = open_proposals(store, Filters(attribute=attribute, product_id=pid))
        proposal = next((p for p in found if p.value == value), None) or Proposal(pid, attribute, value, -1.0, "")
    decision = verdict
    if proposal.suspect and verdict == "accept":
        decision = "replace"
    return store.review(Review(proposal.product_id, proposal.attribute, proposal.value, decision, reviewer, note=note,
                               catalog_value=proposal.catalog_value))


def best_per_pair(proposals: Iterable[Proposal]) -> list[Proposal]:
    """The best plain proposal of each (product, attribute): what a bulk accept takes."""
    best: dict[tuple[str, str], Proposal] = {}
    for p in proposals:
        if not p.suspect and ((p.product_id, p.attribute) not in best or p.score > best[(p.product_id, p.attribute)].score):
            best[(p.product_id, p.attribute)] = p
    return sorted(best.values(), key=lambda p: (p.product_id, p.attribute))


def decision_rows(reviews: Sequence[Review]) -> list[dict]:
    """Decisions as plain rows (export, JSON)."""
    return [
        {"seq": r.seq, "decided_at": r.decided_at, "reviewer": r.reviewer, "decision": r.decision, "product_id": r.product_id,
         "attribute": r.attribute, "value": r.value, "catalog_value": r.catalog_value, "score": r.score, "run_id": r.run_id,
         "note": r.note}
        for r in reviews
    ]


DECISION_COLUMNS = ("seq", "decided_at", "reviewer", "decision", "product_id", "attribute", "value", "catalog_value", "score",
                    "run_id", "note")
PROPOSAL_COLUMNS = ("product_id", "attribute", "value", "score", "kind", "catalog_value", "run_id")
