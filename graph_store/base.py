"""The GraphStore contract that every backend implements.

Public methods validate their arguments and then call a ``_method`` that does the
I/O (the PyG storage-adapter habit), inside :meth:`GraphStore._driver_errors`, where the
backend turns its driver's exceptions into :class:`StoreError`. A backend implements every
abstract ``_method`` hook, ``_driver_errors``, its constructor and ``close`` when it holds a
connection, and a module-level opener registered in :mod:`graph_store.backends`; it leaves
the public methods alone, so callers get the same checks and the same errors whichever
backend they talk to, and need no method outside this class.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

from .errors import ContractError
from .models import (
    BEHAVIOUR_KIND,
    SOURCES,
    AttributeEdge,
    BehaviourEdge,
    ProductNode,
    ProductView,
    Review,
    RunInfo,
    StoreStats,
)
from .reviews import ReviewOps, apply_review, blocked, check_review, undo_review, unwanted
from .snapshot import Snapshot

T = TypeVar("T")


class GraphStore(ABC):
    """A product knowledge graph: products, attribute values, categories and HAS edges.

    Writes are batched and idempotent: writing the same batch twice leaves the same
    graph. Each public write is one transaction, so a crash loses at most the batch
    in flight; a backend may split a large product batch into several transactions on
    disjoint products (Neo4j does: :mod:`graph_store.neo4j_parallel`), each product whole
    with its edges, and its error then says which of them committed. Catalog and text facts are never overwritten by model predictions,
    which live in runs that can be listed and deleted.
    """

    uri: str

    # -- writing -----------------------------------------------------------------

    def upsert_products(
        self, products: Sequence[ProductNode], edges: Sequence[AttributeEdge] = ()
    ) -> None:
        """Create or update products and replace their catalog edges, in one transaction (or in
        transactions on disjoint products, each product whole: see the class docstring).

        For every product in ``products``, its existing ``catalog`` edges are replaced by
        the catalog ``edges`` given here (so an updated catalog row wins); edges of other
        sources are kept, ``reviewed`` ones included. A catalog value a reviewer replaced
        (a ``replace`` decision) is dropped again, so a rebuild does not bring it back; a
        *different* catalog value is new information and is written beside the reviewed one.
        Categories and values are created as needed.
        """
        ids = {p.id for p in products}
        for product in products:
            _check_id(product.id, "product id")
        for edge in edges:
            _check_edge(edge)
            if edge.source != "catalog":
                raise ContractError(f"upsert_products takes catalog edges, got source {edge.source!r}")
            if edge.product_id not in ids:
                raise ContractError(f"edge for product {edge.product_id!r} outside this batch")
        if products:
            with self._driver_errors("writing products"):
                self._upsert_products(products, edges)

    def replace_edges(
        self, product_ids: Sequence[str], source: str, edges: Sequence[AttributeEdge]
    ) -> None:
        """Replace all ``source`` edges of the named products by ``edges`` (one transaction, or
        transactions on disjoint products, as :meth:`upsert_products`).

        Used for text-extracted facts, which are recomputed whenever a product is rebuilt.
        Unknown product ids are ignored.
        """
        if source not in ("catalog", "text"):
            raise ContractError(f"replace_edges takes source catalog or text, got {source!r}")
        wanted = set(product_ids)
        for edge in edges:
            _check_edge(edge)
            if edge.source != source or edge.product_id not in wanted:
                raise ContractError(f"edge {edge} does not match source {source!r} and the ids")
        if product_ids:
            with self._driver_errors(f"writing {source} edges"):
                self._replace_edges(product_ids, source, edges)

    def write_predictions(self, run: RunInfo, edges: Sequence[AttributeEdge]) -> int:
        """Add predicted edges (source ``model``) under ``run``; returns the number written.

        Predictions for a product and value the catalog, text or a reviewer already assert
        are skipped: predictions never shadow facts. So are values a reviewer decided on
        (a rejected value is never proposed again for that product) and suggestions against a
        catalog value a reviewer kept. Calling again with the same run id adds to that run.
        """
        _check_id(run.run_id, "run id")
        for edge in edges:
            _check_edge(edge)
            if edge.source != "model" or edge.run_id != run.run_id:
                raise ContractError("predicted edges need source 'model' and the run's id")
            if edge.score is None or not 0.0 <= edge.score <= 1.0:
                raise ContractError(f"predicted edge score must be in [0, 1], got {edge.score}")
        with self._driver_errors("writing predictions"):
            decided = self._reviews(sorted({e.product_id for e in edges})) if edges else []
            if decided:
                closed = set().union(*(unwanted(r) for r in decided))
                edges = [e for e in edges if not blocked(e, closed)]
            return self._write_predictions(run, edges)

    def upsert_behaviour(self, edges: Sequence[BehaviourEdge]) -> int:
        """Create or update behaviour edges between products, in one transaction; returns how many.

        Pairs are undirected: each is stored once as ``product_a < product_b``, keyed by
        (a, b, kind). An existing edge takes the new weight, and within ``edges`` the last
        occurrence of a key wins, so rerunning a load leaves the same graph (summing weights
        would double them on every rerun).

        Raises:
            ContractError: an empty id, a self-pair, a kind that is not a lower-case identifier,
                a weight that is not a finite positive number, or an id that names no product
                (then nothing of the batch is written).
        """
        latest: dict[tuple[str, str, str], BehaviourEdge] = {}
        for edge in edges:
            _check_id(edge.product_a, "behaviour product id")
            _check_id(edge.product_b, "behaviour product id")
            if edge.product_a == edge.product_b:
                raise ContractError(f"behaviour edge links product {edge.product_a!r} to itself")
            if not isinstance(edge.kind, str) or not BEHAVIOUR_KIND.fullmatch(edge.kind):
                raise ContractError(f"behaviour kind must match {BEHAVIOUR_KIND.pattern}, got {edge.kind!r}")
            if isinstance(edge.weight, bool) or not isinstance(edge.weight, (int, float)) or not (
                math.isfinite(edge.weight) and edge.weight > 0
            ):
                raise ContractError(f"behaviour weight must be a finite number > 0, got {edge.weight!r}")
            edge = edge.canonical()._replace(weight=float(edge.weight))
            latest[(edge.product_a, edge.product_b, edge.kind)] = edge
        if not latest:
            return 0
        with self._driver_errors("writing behaviour edges"):
            return self._upsert_behaviour(list(latest.values()))

    def known_products(self, product_ids: Iterable[str]) -> set[str]:
        """Which of ``product_ids`` name products in the store (to reject, not fail, a bad row)."""
        ids = sorted({pid for pid in product_ids if isinstance(pid, str) and pid})
        if not ids:
            return set()
        with self._driver_errors("looking up products"):
            return self._known_products(ids)

    def iter_behaviour(self, kinds: Iterable[str] | None = None) -> Iterator[BehaviourEdge]:
        """Behaviour edges (``product_a < product_b``), ordered by (product_a, product_b, kind)."""
        chosen = tuple(sorted(set(kinds))) if kinds is not None else None
        return self._stream("reading behaviour edges", lambda: self._iter_behaviour(chosen))

    def delete_run(self, run_id: str) -> int:
        """Delete one run and exactly its edges; returns the number of edges removed."""
        _check_id(run_id, "run id")
        with self._driver_errors("deleting a run"):
            removed = self._delete_run(run_id)
        self.prune_orphans()
        return removed

    @contextmanager
    def bulk_load(self) -> Iterator[bool]:
        """A build's passes run inside this; yields whether the backend loads in a bulk mode.

        The default is no mode at all. The embedded store overrides it: into a store without
        edges it builds its value index once at the end instead of row by row
        (:mod:`graph_store.sqlite_bulk`). Reads inside the block stay correct on every backend.
        """
        yield False

    def prune_orphans(self) -> int:
        """Delete Value nodes no edge points to any more; returns how many.

        Values are shared between products, so replacing a product's edges or undoing a run
        can leave a value nothing uses; a build calls this once at its end (per batch would
        cost a scan each time), and ``delete_run`` after removing a run's edges.
        """
        with self._driver_errors("pruning unused values"):
            return self._prune_orphans()

    # -- reviews -----------------------------------------------------------------

    def review(self, decision: Review) -> Review:
        """Record a reviewer's decision and apply it, in one transaction; returns it as stored.

        The rules (what accept, reject, keep and replace do to the edges) are in
        :mod:`graph_store.reviews`. ``run_id``, ``score`` and ``raw`` default to those of the
        best proposal of the triple, ``catalog_value`` to the value a suggestion flags.

        Raises:
            ContractError: unknown product or decision, a flag decision without its catalog value.
            ReviewExistsError: the triple was already decided (undo it first).
        """
        check_review(decision)
        with self._driver_errors("recording a review"):
            return self._in_review_transaction(lambda ops: apply_review(ops, decision, _now()))

    def undo_review(self, product_id: str, attribute: str, value: str) -> Review | None:
        """Take back the decision on (product, attribute, value) and what it did; None when there was none."""
        with self._driver_errors("undoing a review"):
            return self._in_review_transaction(lambda ops: undo_review(ops, (product_id, attribute, value)))

    def reviews(self, product_ids: Iterable[str] | None = None) -> list[Review]:
        """Decisions (of the named products, else all), in the order they were taken."""
        ids = sorted(set(product_ids)) if product_ids is not None else None
        with self._driver_errors("reading reviews"):
            return self._reviews(ids)

    # -- reading -----------------------------------------------------------------

    def get_product(self, product_id: str) -> ProductView | None:
        """One product with all its edges (catalog, text and model), or None."""
        with self._driver_errors("reading a product"):
            return self._get_product(product_id)

    def iter_products(self) -> Iterator[ProductNode]:
        """Every product, ordered by id."""
        return self._stream("reading products", self._iter_products)

    def iter_triples(
        self, sources: Iterable[str] | None = None, min_score: float | None = None
    ) -> Iterator[AttributeEdge]:
        """Every edge, ordered by (product id, attribute, value, source, run id)."""
        chosen = tuple(sources) if sources is not None else SOURCES
        for source in chosen:
            if source not in SOURCES:
                raise ContractError(f"unknown source {source!r}; expected one of {SOURCES}")
        return self._stream("reading triples", lambda: self._iter_triples(chosen, min_score))

    def products_with_attribute(
        self,
        attribute: str,
        value: str | None = None,
        *,
        sources: Iterable[str] | None = None,
        min_score: float | None = None,
    ) -> list[AttributeEdge]:
        """Edges of ``attribute`` (optionally one normalised ``value``), ordered by product."""
        chosen = tuple(sources) if sources is not None else SOURCES
        with self._driver_errors("reading an attribute"):
            return self._products_with_attribute(attribute, value, chosen, min_score)

    def products_missing_attribute(self, attribute: str, sources: Iterable[str] | None = None) -> list[str]:
        """Ids of products with no edge of ``attribute`` among ``sources``, ordered."""
        chosen = tuple(sources) if sources is not None else SOURCES
        with self._driver_errors("reading an attribute"):
            return self._products_missing_attribute(attribute, chosen)

    def attribute_vocabulary(self, sources: Iterable[str] = ("catalog",)) -> dict[str, set[str]]:
        """attribute -> set of normalised values asserted by ``sources``."""
        with self._driver_errors("reading the vocabulary"):
            return self._attribute_vocabulary(tuple(sources))

    def stats(self, top: int = 10) -> StoreStats:
        """Counts of nodes, edges by source, behaviour edges by kind, images and the most used attributes."""
        with self._driver_errors("reading statistics"):
            return self._stats(top)

    def list_runs(self) -> list[RunInfo]:
        """Completion runs, oldest first, with their current edge counts."""
        with self._driver_errors("listing runs"):
            return self._list_runs()

    def snapshot(self, include_predicted: bool = False, min_score: float | None = None) -> Snapshot:
        """Export id maps, typed edges, behaviour edges and modalities for the model.

        Args:
            include_predicted: include model edges; training leaves this False so that
                predictions never feed back into the model that made them.
            min_score: with ``include_predicted``, keep model edges scoring at least this.
        """
        with self._driver_errors("reading a snapshot"):
            return self._snapshot(include_predicted, min_score)

    def record_build(self, report: dict) -> None:
        """Keep a build report in the store, so `kgmm stats` can say how it was built."""
        with self._driver_errors("recording the build"):
            self._record_build(report)

    def last_build(self) -> dict | None:
        """The most recent build report recorded, or None."""
        with self._driver_errors("reading the build report"):
            return self._last_build()

    # -- lifecycle ---------------------------------------------------------------

    def close(self) -> None:
        """Release connections; the store stays readable by others."""

    def __str__(self) -> str:
        return self.uri  # messages name a store by its URI, whichever object holds it

    @contextmanager
    def _driver_errors(self, action: str) -> Iterator[None]:
        """Turn the driver's exceptions raised inside the block into :class:`StoreError`.

        Every public method runs its hook inside this, so no ``sqlite3.Error`` or
        ``neo4j.exceptions.*`` reaches a caller. ``action`` ("writing products") names what
        failed in the message. The default lets everything through: override it.
        """
        yield

    def _stream(self, action: str, make: Callable[[], Iterable[T]]) -> Iterator[T]:
        """Iterate ``make()`` inside :meth:`_driver_errors`, so errors raised while the caller
        consumes a lazy result are translated too (the hook runs on the first ``next``)."""
        with self._driver_errors(action):
            yield from make()

    def __enter__(self) -> "GraphStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- backend hooks -----------------------------------------------------------

    @abstractmethod
    def _upsert_products(self, products: Sequence[ProductNode], edges: Sequence[AttributeEdge]) -> None: ...

    @abstractmethod
    def _replace_edges(self, product_ids: Sequence[str], source: str, edges: Sequence[AttributeEdge]) -> None: ...

    @abstractmethod
    def _write_predictions(self, run: RunInfo, edges: Sequence[AttributeEdge]) -> int: ...

    @abstractmethod
    def _delete_run(self, run_id: str) -> int:
        """Remove the run and its edges; the public method prunes orphaned values after it."""

    @abstractmethod
    def _prune_orphans(self) -> int: ...

    @abstractmethod
    def _upsert_behaviour(self, edges: Sequence[BehaviourEdge]) -> int: ...

    @abstractmethod
    def _known_products(self, product_ids: Sequence[str]) -> set[str]: ...

    @abstractmethod
    def _iter_behaviour(self, kinds: tuple[str, ...] | None) -> Iterator[BehaviourEdge]: ...

    @abstractmethod
    def _get_product(self, product_id: str) -> ProductView | None: ...

    @abstractmethod
    def _iter_products(self) -> Iterator[ProductNode]: ...

    @abstractmethod
    def _iter_triples(self, sources: tuple[str, ...], min_score: float | None) -> Iterator[AttributeEdge]: ...

    @abstractmethod
    def _products_with_attribute(
        self, attribute: str, value: str | None, sources: tuple[str, ...], min_score: float | None
    ) -> list[AttributeEdge]: ...

    @abstractmethod
    def _products_missing_attribute(self, attribute: str, sources: tuple[str, ...]) -> list[str]: ...

    @abstractmethod
    def _attribute_vocabulary(self, sources: tuple[str, ...]) -> dict[str, set[str]]: ...

    @abstractmethod
    def _stats(self, top: int) -> StoreStats: ...

    @abstractmethod
    def _list_runs(self) -> list[RunInfo]: ...

    @abstractmethod
    def _snapshot(self, include_predicted: bool, min_score: float | None) -> Snapshot: ...

    @abstractmethod
    def _record_build(self, report: dict) -> None: ...

    @abstractmethod
    def _in_review_transaction(self, work: Callable[[ReviewOps], T]) -> T:
        """Run ``work`` with the backend's :class:`ReviewOps` inside one write transaction."""

    @abstractmethod
    def _reviews(self, product_ids: Sequence[str] | None) -> list[Review]:
        """Decisions ordered by ``seq``; only those of ``product_ids`` unless None."""

    @abstractmethod
    def _last_build(self) -> dict | None: ...


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _check_id(value: str, what: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ContractError(f"{what} must be a non-empty string, got {value!r}")


def _check_edge(edge: AttributeEdge) -> None:
    if not (edge.product_id and edge.attribute and edge.value) or not (
        edge.product_id.__class__ is str and edge.attribute.__class__ is str and edge.value.__class__ is str
    ):
        raise ContractError(f"edge needs non-empty string product id, attribute and value: {edge}")
    if edge.source not in SOURCES:
        raise ContractError(f"unknown source {edge.source!r}; expected one of {SOURCES}")
    if edge.score is not None and (math.isnan(edge.score) or not 0.0 <= edge.score <= 1.0):
        raise ContractError(f"score must be in [0, 1], got {edge.score}")
