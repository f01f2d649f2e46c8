"""What each page shows, computed from the store contract (the templates only lay it out)."""

from __future__ import annotations

from collections import Counter
from typing import Mapping
from urllib.parse import urlencode

from graph_store import SOURCES, GraphStore

from ..review import Filters, open_proposals, review_queue
from ..review.evidence import SimilarProducts, supporting_words

FILTER_KEYS = ("attribute", "category", "source", "min_score", "max_score", "suspect")
QUEUE_ROWS = 200  # products listed on the queue page (the counts cover all of them)
FACT_COLUMNS = ("catalog", "text", "reviewed")


def filters_from(params: Mapping[str, str]) -> tuple[Filters, str | None, list[str]]:
    """Filters, source and problems (a score that is not a number) from a query string."""
    problems: list[str] = []

    def score(name: str) -> float | None:
        text = (params.get(name) or "").strip()
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            problems.append(f"{name.replace('_', ' ')} {text!r} is not a number: ignored")
            return None
        if not 0.0 <= value <= 1.0:
            problems.append(f"{name.replace('_', ' ')} {value} is outside 0..1: ignored")
            return None
        return value

    source = params.get("source") or None
    if source is not None and source not in SOURCES:
        problems.append(f"unknown source {source!r}: ignored")
        source = None
    suspect = {"only": True, "none": False}.get(params.get("suspect") or "")
    filters = Filters(attribute=params.get("attribute") or None, min_score=score("min_score"), max_score=score("max_score"),
                      suspect=suspect, category=params.get("category") or None)
    return filters, source, problems


def filter_query(filters: Filters, source: str | None) -> str:
    """The filters as a query string, carried from page to page and through each form."""
    values = {"attribute": filters.attribute, "category": filters.category, "source": source,
              "min_score": filters.min_score, "max_score": filters.max_score,
              "suspect": {True: "only", False: "none"}.get(filters.suspect)}  # type: ignore[arg-type]
    return urlencode({k: v for k, v in values.items() if v is not None})


def queue_context(store: GraphStore, filters: Filters, source: str | None) -> dict:
    """The queue page: products in review order, and what is left (overall and in the filters)."""
    items = review_queue(store, filters, source)
    everything = open_proposals(store)
    by_attribute = Counter(p.attribute for p in everything)
    categories = [c for c, _ in store.stats(top=50).top_categories]
    return {
        "items": items[:QUEUE_ROWS],
        "shown_products": len(items),
        "shown_proposals": sum(len(item.proposals) for item in items),
        "open_total": len(everything),
        "open_products": len({p.product_id for p in everything}),
        "suspect_total": sum(1 for p in everything if p.suspect),
        "by_attribute": by_attribute.most_common(),
        "categories": categories,
        "sources": SOURCES,
        "filters": filters,
        "source": source,
        "back": filter_query(filters, source),
        "decisions": len(store.reviews()),
    }


def product_context(store: GraphStore, similar: SimilarProducts, pid: str, filters: Filters, source: str | None) -> dict | None:
    """The product page: values side by side, open proposals with their evidence, decisions, position in the queue."""
    view = store.get_product(pid)
    if view is None:
        return None
    product = view.product
    table: dict[str, dict[str, list]] = {}
    for edge in view.edges:
        cell = table.setdefault(edge.attribute, {"catalog": [], "text": [], "reviewed": [], "model": []})
        cell[edge.source].append(edge)
    proposals = open_proposals(store, Filters(product_id=pid))
    wanted = [p for p in proposals if filters.keep(p)] + [p for p in proposals if not filters.keep(p)]  # the filtered ones first
    cards = [
        {"proposal": p, "words": supporting_words(product, p.value), "neighbours": similar.neighbours(pid, p.attribute, p.value),
         "catalog_words": supporting_words(product, p.catalog_value) if p.catalog_value else [],
         "in_filters": filters.keep(p)}
        for p in wanted
    ]
    queue = [item.product.id for item in review_queue(store, filters, source)]
    position = queue.index(pid) if pid in queue else -1
    following = queue[position + 1] if 0 <= position < len(queue) - 1 else (queue[0] if queue and queue[0] != pid else None)
    return {
        "product": product,
        "table": sorted(table.items()),
        "cards": cards,
        "decisions": store.reviews([pid]),
        "position": position,
        "queue_size": len(queue),
        "next_id": following,
        "back": filter_query(filters, source),
        "fact_columns": FACT_COLUMNS,
        "has_image": product.image_status == "ok",
    }
