"""What a reviewer's decision does to the graph, written once for every backend.

A decision touches a few edges of one product and one row of the decision log, all in one
transaction. Each backend hands :func:`apply_review` and :func:`undo_review` a small
:class:`ReviewOps` bound to its open transaction (SQLite connection, Neo4j managed
transaction), so the rules below are the same whichever store holds the graph:

* ``accept``: the proposal's model edges (every run's) go, a ``reviewed`` edge takes their place.
* ``reject``: the proposal's model edges go; :meth:`GraphStore.write_predictions` never writes
  that (product, attribute, value) again, whatever run proposes it.
* ``keep`` (a suspect catalog value is right): the suggestion's model edges go; later
  suggestions against that catalog value are never written.
* ``replace`` (use the suggestion): the suggestion becomes a ``reviewed`` edge whose ``raw`` is
  the catalog value's spelling (its history), and the catalog edge goes; rebuilding the catalog
  does not bring it back (``upsert_products`` drops catalog values a reviewer replaced).

Undoing a decision puts back exactly what it took away: the catalog edge it superseded, and the
proposal under the run that made it, when that run still exists (an undone run stays undone).
"""

from __future__ import annotations

from typing import Protocol

from .errors import ContractError
from .models import DECISIONS, AttributeEdge, Review, flagged_value


class ReviewExistsError(ContractError):
    """(product, attribute, value) already carries a decision: undo it before deciding again."""


class ReviewOps(Protocol):
    """The primitives a backend offers inside one write transaction."""

    def product_exists(self, product_id: str) -> bool: ...

    def edges(self, product_id: str, attribute: str, value: str, source: str) -> list[AttributeEdge]:
        """Edges of one (product, attribute, value) from ``source``, best score first."""

    def delete_edges(self, product_id: str, attribute: str, value: str, source: str) -> None: ...

    def put_edge(self, edge: AttributeEdge) -> None:
        """Create or update one edge (its Value node is created as needed)."""

    def run_exists(self, run_id: str) -> bool: ...

    def get(self, key: tuple[str, str, str]) -> Review | None: ...

    def put(self, review: Review) -> Review:
        """Store a new decision with the next ``seq``; returns it with that ``seq``."""

    def delete(self, key: tuple[str, str, str]) -> None: ...


def check_review(review: Review) -> None:
    """Refuse a decision the store could not act on, before any I/O."""
    for name in ("product_id", "attribute", "value"):
        text = getattr(review, name)
        if not isinstance(text, str) or not text.strip():
            raise ContractError(f"a review needs a non-empty {name.replace('_', ' ')}, got {text!r}")
    if review.decision not in DECISIONS:
        raise ContractError(f"unknown decision {review.decision!r}; expected one of {', '.join(DECISIONS)}")
    if review.score is not None and not 0.0 <= review.score <= 1.0:
        raise ContractError(f"review score must be in [0, 1], got {review.score}")


def apply_review(ops: ReviewOps, review: Review, now: str) -> Review:
    """Record ``review`` and change the graph as its decision says; returns the stored decision.

    Raises:
        ContractError: unknown product, or ``keep``/``replace`` without a suspect catalog value.
        ReviewExistsError: the triple was decided before (undo that first).
    """
    pid, attribute, value = review.key
    if not ops.product_exists(pid):
        raise ContractError(f"no product {pid!r} to review")
    earlier = ops.get(review.key)
    if earlier is not None:
        raise ReviewExistsError(
            f"{pid} {attribute}={value!r} was already decided ({earlier.decision} by {earlier.reviewer or 'someone'} "
            f"at {earlier.decided_at}); undo that decision first"
        )
    proposals = ops.edges(pid, attribute, value, "model")
    best = proposals[0] if proposals else None
    catalog_value = review.catalog_value or (flagged_value(best.raw) if best else None)
    if review.decision in ("keep", "replace") and not catalog_value:
        raise ContractError(f"a {review.decision!r} decision on {pid} {attribute}={value!r} needs the suspect catalog value")
    stored = Review(
        pid, attribute, value, review.decision, review.reviewer, review.decided_at or now, review.note,
        review.run_id or (best.run_id if best else None),
        review.score if review.score is not None else (best.score if best else None),
        review.raw if review.raw is not None else (best.raw if best else None),
        catalog_value if review.decision in ("keep", "replace") else None,
    )
    ops.delete_edges(pid, attribute, value, "model")
    if review.decision == "replace":
        old = ops.edges(pid, attribute, catalog_value, "catalog")
        ops.delete_edges(pid, attribute, catalog_value, "catalog")
        history = (old[0].raw if old else None) or catalog_value
        ops.put_edge(AttributeEdge(pid, attribute, value, "reviewed", history))
    elif review.decision == "accept":
        ops.put_edge(AttributeEdge(pid, attribute, value, "reviewed"))
    return ops.put(stored)


def undo_review(ops: ReviewOps, key: tuple[str, str, str]) -> Review | None:
    """Take back the decision on ``key`` and what it did; returns it, or None when there was none."""
    review = ops.get(key)
    if review is None:
        return None
    pid, attribute, value = key
    if review.decision in ("accept", "replace"):
        mine = ops.edges(pid, attribute, value, "reviewed")
        ops.delete_edges(pid, attribute, value, "reviewed")
        if review.decision == "replace" and review.catalog_value and ops.product_exists(pid):
            history = mine[0].raw if mine else None
            raw = history if history and history != review.catalog_value else None
            ops.put_edge(AttributeEdge(pid, attribute, review.catalog_value, "catalog", raw))
    if review.run_id and ops.run_exists(review.run_id) and ops.product_exists(pid) and not any(
        ops.edges(pid, attribute, value, source) for source in ("catalog", "text", "reviewed")
    ):
        ops.put_edge(AttributeEdge(pid, attribute, value, "model", review.raw, review.score, review.run_id))
    ops.delete(key)
    return review


def unwanted(review: Review) -> set[tuple[str, str, str]]:
    """The (product, attribute, value) triples ``review`` forbids later runs to write, and, under the
    key ``(product, attribute, "\\x00flag:" + catalog value)``, the flags it forbids raising again."""
    keys = {review.key}
    if review.decision == "keep" and review.catalog_value:
        keys.add((review.product_id, review.attribute, FLAG_KEY + review.catalog_value))
    return keys


FLAG_KEY = "\x00flag:"


def blocked(edge: AttributeEdge, closed: set[tuple[str, str, str]]) -> bool:
    """True when a reviewer's decision forbids writing predicted ``edge`` (see :func:`unwanted`)."""
    if (edge.product_id, edge.attribute, edge.value) in closed:
        return True
    flagged = flagged_value(edge.raw)
    return flagged is not None and (edge.product_id, edge.attribute, FLAG_KEY + flagged) in closed
