"""Writing a store back out: JSONL (round-trips through build-kg), CSV triples, RDF, GraphML.

Every writer streams products and triples in id order (a merge join), so memory stays
bounded for large graphs, except GraphML, which networkx builds in memory.
"""

from __future__ import annotations

import csv
import json
from typing import IO

from graph_store import AttributeEdge, GraphStore

from .export_common import csv_safe, image_reference, products_with_edges, storable, xml_safe
from .export_rdf import write_rdf

EXPORT_FORMATS = ("jsonl", "csv", "ttl", "nt", "graphml")

__all__ = ["EXPORT_FORMATS", "export", "products_with_edges", "write_csv", "write_graphml", "write_jsonl", "write_rdf"]


def write_jsonl(store: GraphStore, out: IO[str]) -> int:
    """Canonical JSONL; ``attributes`` holds catalog facts (raw spellings), derived values sit apart.

    Image paths are relative to the catalog's folder, so the export rebuilds the same graph
    when it is written next to the catalog (and names no folder of the building machine).
    """
    folder = (store.last_build() or {}).get("catalog_folder") or None
    count = 0
    for product, edges in products_with_edges(store):
        record: dict = {"id": product.id, "title": product.title}
        if product.description:
            record["description"] = product.description
        if product.category_path:
            record["category"] = product.category_path
        image = image_reference(product, folder) if product.image_status == "ok" else product.image
        if image:
            record["image"] = image
        attributes: dict[str, list[str]] = {}
        for edge in edges:
            if edge.source == "catalog":
                attributes.setdefault(edge.attribute, []).append(edge.raw or edge.value)
        record["attributes"] = attributes
        extracted = [_derived(e) for e in edges if e.source == "text"]
        predicted = [_derived(e) for e in edges if e.source == "model"]
        if extracted:
            record["extracted"] = extracted
        if predicted:
            record["predicted"] = predicted
        for key, value in product.properties.items():
            record.setdefault(key, value)
        out.write(storable(json.dumps(record, ensure_ascii=False)) + "\n")
        count += 1
    return count


def _derived(edge: AttributeEdge) -> dict:
    item = {"attribute": edge.attribute, "value": edge.value, "source": edge.source}
    if edge.score is not None:
        item["score"] = edge.score
    if edge.run_id:
        item["run_id"] = edge.run_id
    if edge.raw:
        item["raw"] = edge.raw
    return item


def write_csv(store: GraphStore, out: IO[str]) -> int:
    """One row per triple: product_id, attribute, value, raw, source, score, run_id.

    Cells that a spreadsheet would run as formulas (``=``, ``+``, ``-``, ``@``) start with ``'``.
    """
    writer = csv.writer(out)
    writer.writerow(["product_id", "attribute", "value", "raw", "source", "score", "run_id"])
    count = 0
    for edge in store.iter_triples():
        writer.writerow([csv_safe(cell) for cell in (edge.product_id, edge.attribute, edge.value, edge.raw or "",
                         edge.source, "" if edge.score is None else edge.score, edge.run_id or "")])
        count += 1
    return count


def write_graphml(store: GraphStore, out: IO[bytes]) -> int:
    """Products, values and categories as typed nodes; HAS, IN_CATEGORY and CHILD_OF edges.

    Every string goes through :func:`xml_safe`: a control character in a catalog value would
    otherwise make the whole file invalid XML.
    """
    import networkx as nx

    folder = (store.last_build() or {}).get("catalog_folder") or None
    graph = nx.MultiDiGraph()
    count = 0
    for product, edges in products_with_edges(store):
        node = _x(f"product:{product.id}")
        image = image_reference(product, folder) if product.image_status == "ok" else product.image
        graph.add_node(node, kind="Product", id=_x(product.id), title=_x(product.title),
                       image_status=product.image_status, **({"image": _x(image)} if image else {}))
        if product.category:
            for depth in range(1, len(product.category) + 1):
                path = _x(" > ".join(product.category[:depth]))
                graph.add_node(f"category:{path}", kind="Category", path=path)
                if depth > 1:
                    parent = _x(" > ".join(product.category[: depth - 1]))
                    if not graph.has_edge(f"category:{path}", f"category:{parent}"):
                        graph.add_edge(f"category:{path}", f"category:{parent}", key="CHILD_OF", type="CHILD_OF")
            graph.add_edge(node, _x(f"category:{product.category_path}"), key="IN_CATEGORY", type="IN_CATEGORY")
        for edge in edges:
            _add_has(graph, node, edge)
        count += 1
    nx.write_graphml(graph, out)
    return count


def _x(text: str) -> str:
    return xml_safe(storable(text))


def _add_has(graph: object, node: str, edge: AttributeEdge) -> None:
    value = _x(f"value:{edge.attribute}={edge.value}")
    graph.add_node(value, kind="Value", attribute=_x(edge.attribute), value=_x(edge.value))  # type: ignore[attr-defined]
    data: dict[str, object] = {"type": "HAS", "attribute": _x(edge.attribute), "source": edge.source}
    if edge.score is not None:
        data["score"] = float(edge.score)
    if edge.run_id:
        data["run_id"] = _x(edge.run_id)
    graph.add_edge(node, value, **data)  # type: ignore[attr-defined]


def export(store: GraphStore, fmt: str, out_path: str | None) -> int:
    """Write ``store`` as ``fmt`` to ``out_path`` (stdout when None or "-"); returns products or rows."""
    import sys

    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}")
    to_stdout = out_path in (None, "-")
    if fmt == "graphml":
        if to_stdout:
            return write_graphml(store, sys.stdout.buffer)
        with open(out_path, "wb") as handle:
            return write_graphml(store, handle)
    handle = sys.stdout if to_stdout else open(out_path, "w", encoding="utf-8", newline="")
    try:
        if fmt == "jsonl":
            return write_jsonl(store, handle)
        if fmt == "csv":
            return write_csv(store, handle)
        return write_rdf(store, handle, fmt)
    finally:
        if not to_stdout:
            handle.close()
