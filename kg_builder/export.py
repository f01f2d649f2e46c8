"""Writing a store back out: JSONL (round-trips through build-kg), CSV triples, RDF, GraphML.

Every writer streams products and triples in id order (a merge join), so memory stays
bounded for large graphs, except GraphML, which networkx builds in memory.
"""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path
from typing import IO, Iterator

from graph_store import AttributeEdge, GraphStore, ProductNode
from rdflib import RDF, BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import XSD

SCHEMA = Namespace("https://schema.org/")
KGMM = Namespace("https://kgmm.dev/ns#")
EXPORT_FORMATS = ("jsonl", "csv", "ttl", "nt", "graphml")


def products_with_edges(store: GraphStore) -> Iterator[tuple[ProductNode, list[AttributeEdge]]]:
    """Each product with its edges, both streams ordered by product id."""
    triples = itertools.groupby(store.iter_triples(), key=lambda e: e.product_id)
    pending = next(triples, None)
    for product in store.iter_products():
        edges: list[AttributeEdge] = []
        if pending is not None and pending[0] == product.id:
            edges = list(pending[1])
            pending = next(triples, None)
        yield product, edges


def write_jsonl(store: GraphStore, out: IO[str]) -> int:
    """Canonical JSONL; ``attributes`` holds catalog facts (raw spellings), derived values sit apart."""
    count = 0
    for product, edges in products_with_edges(store):
        record: dict = {"id": product.id, "title": product.title}
        if product.description:
            record["description"] = product.description
        if product.category_path:
            record["category"] = product.category_path
        if product.image:
            record["image"] = product.image
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
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
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
    """One row per triple: product_id, attribute, value, raw, source, score, run_id."""
    writer = csv.writer(out)
    writer.writerow(["product_id", "attribute", "value", "raw", "source", "score", "run_id"])
    count = 0
    for edge in store.iter_triples():
        writer.writerow([edge.product_id, edge.attribute, edge.value, edge.raw or "", edge.source,
                         "" if edge.score is None else edge.score, edge.run_id or ""])
        count += 1
    return count


def write_rdf(store: GraphStore, out: IO[str], fmt: str) -> int:
    """schema.org Products; derived values carry ``kgmm:source`` (and score, run) so readers can tell."""
    count = 0
    graph = _new_graph()
    for product, edges in products_with_edges(store):
        _add_product(graph, product, edges)
        count += 1
        if fmt == "nt" and len(graph) > 100_000:  # N-Triples is line based: flush in chunks
            out.write(graph.serialize(format="nt"))
            graph = _new_graph()
    out.write(graph.serialize(format="turtle" if fmt == "ttl" else "nt"))
    return count


def _new_graph() -> Graph:
    graph = Graph()
    graph.bind("schema", SCHEMA)
    graph.bind("kgmm", KGMM)
    return graph


def _add_product(graph: Graph, product: ProductNode, edges: list[AttributeEdge]) -> None:
    subject = URIRef(product.properties.get("iri") or f"urn:kgmm:product:{_quote(product.id)}")
    graph.add((subject, RDF.type, SCHEMA.Product))
    graph.add((subject, SCHEMA.sku, Literal(product.id)))
    if product.title:
        graph.add((subject, SCHEMA.name, Literal(product.title)))
    if product.description:
        graph.add((subject, SCHEMA.description, Literal(product.description)))
    if product.category_path:
        graph.add((subject, SCHEMA.category, Literal(product.category_path)))
    if product.image and product.image_status == "ok":
        graph.add((subject, SCHEMA.image, URIRef(Path(product.image).as_uri())))
    for edge in edges:
        node = BNode()
        graph.add((subject, SCHEMA.additionalProperty, node))
        graph.add((node, RDF.type, SCHEMA.PropertyValue))
        graph.add((node, SCHEMA.name, Literal(edge.attribute)))
        graph.add((node, SCHEMA.value, Literal(edge.raw or edge.value)))
        if edge.source != "catalog":
            graph.add((node, KGMM.source, Literal(edge.source)))
            graph.add((node, KGMM.normalizedValue, Literal(edge.value)))
        if edge.score is not None:
            graph.add((node, KGMM.score, Literal(edge.score, datatype=XSD.double)))
        if edge.run_id:
            graph.add((node, KGMM.runId, Literal(edge.run_id)))


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def write_graphml(store: GraphStore, out: IO[bytes]) -> int:
    """Products, values and categories as typed nodes; HAS, IN_CATEGORY and CHILD_OF edges."""
    import networkx as nx

    graph = nx.MultiDiGraph()
    count = 0
    for product, edges in products_with_edges(store):
        node = f"product:{product.id}"
        graph.add_node(node, kind="Product", id=product.id, title=product.title,
                       image_status=product.image_status, **({"image": product.image} if product.image else {}))
        if product.category:
            for depth in range(1, len(product.category) + 1):
                path = " > ".join(product.category[:depth])
                graph.add_node(f"category:{path}", kind="Category", path=path)
                if depth > 1:
                    parent = " > ".join(product.category[: depth - 1])
                    if not graph.has_edge(f"category:{path}", f"category:{parent}"):
                        graph.add_edge(f"category:{path}", f"category:{parent}", key="CHILD_OF", type="CHILD_OF")
            graph.add_edge(node, f"category:{product.category_path}", key="IN_CATEGORY", type="IN_CATEGORY")
        for edge in edges:
            value = f"value:{edge.attribute}={edge.value}"
            graph.add_node(value, kind="Value", attribute=edge.attribute, value=edge.value)
            data = {"type": "HAS", "attribute": edge.attribute, "source": edge.source}
            if edge.score is not None:
                data["score"] = float(edge.score)
            if edge.run_id:
                data["run_id"] = edge.run_id
            graph.add_edge(node, value, **data)
        count += 1
    nx.write_graphml(graph, out)
    return count


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
