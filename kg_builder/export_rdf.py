"""The graph as schema.org RDF that a consumer who knows schema.org and nothing of kgmm can use.

Catalog facts are plain schema.org: ``schema:Product`` with ``schema:brand`` (a
``schema:Brand``), ``schema:additionalProperty`` ``schema:PropertyValue`` nodes holding the
catalog's own spelling, and ``schema:image`` as a path relative to the catalog's folder
(never a ``file://`` IRI into the machine that built the graph). Everything kgmm derived
(values read from text, model predictions, suspect-value notes) sits only under kgmm's
own terms (``kgmm:derivedValue``), so a schema.org consumer never mistakes a prediction
for a fact and never sees a note as a value; kgmm's RDF reader skips them the same way.
"""

from __future__ import annotations

from typing import IO, Iterable
from urllib.parse import quote

from rdflib import RDF, BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import XSD

from graph_store import AttributeEdge, GraphStore, ProductNode

from .export_common import image_reference, products_with_edges, storable

SCHEMA = Namespace("https://schema.org/")
KGMM = Namespace("https://kgmm.dev/ns#")
FLUSH_TRIPLES = 100_000
"""N-Triples is line based: the graph is written and emptied every this many triples."""


def write_rdf(store: GraphStore, out: IO[str], fmt: str) -> int:
    """Write every product as Turtle (``ttl``) or N-Triples (``nt``); returns the product count."""
    folder = (store.last_build() or {}).get("catalog_folder") or None
    count = 0
    graph = _new_graph()
    for product, edges in products_with_edges(store):
        add_product(graph, product, edges, folder)
        count += 1
        if fmt == "nt" and len(graph) > FLUSH_TRIPLES:
            out.write(graph.serialize(format="nt"))
            graph = _new_graph()
    out.write(graph.serialize(format="turtle" if fmt == "ttl" else "nt"))
    return count


def _new_graph() -> Graph:
    graph = Graph()
    graph.bind("schema", SCHEMA)
    graph.bind("kgmm", KGMM)
    return graph


def _text(value: str) -> Literal:
    return Literal(storable(value))


def add_product(graph: Graph, product: ProductNode, edges: Iterable[AttributeEdge], folder: str | None) -> None:
    """The triples of one product: schema.org facts, and derived values under kgmm terms only."""
    subject = URIRef(product.properties.get("iri") or f"urn:kgmm:product:{quote(storable(product.id), safe='')}")
    graph.add((subject, RDF.type, SCHEMA.Product))
    graph.add((subject, SCHEMA.sku, _text(product.id)))
    for predicate, value in ((SCHEMA.name, product.title), (SCHEMA.description, product.description),
                             (SCHEMA.category, product.category_path)):
        if value:
            graph.add((subject, predicate, _text(value)))
    image = image_reference(product, folder)
    if image:
        graph.add((subject, SCHEMA.image, _text(image)))
    for edge in edges:
        if edge.source == "catalog" and edge.attribute == "brand":
            brand = BNode()
            graph.add((subject, SCHEMA.brand, brand))
            graph.add((brand, RDF.type, SCHEMA.Brand))
            graph.add((brand, SCHEMA.name, _text(edge.raw or edge.value)))
        elif edge.source == "catalog":
            node = BNode()
            graph.add((subject, SCHEMA.additionalProperty, node))
            graph.add((node, RDF.type, SCHEMA.PropertyValue))
            graph.add((node, SCHEMA.name, _text(edge.attribute)))
            graph.add((node, SCHEMA.value, _text(edge.raw or edge.value)))
        else:
            _add_derived(graph, subject, edge)


def _add_derived(graph: Graph, subject: URIRef, edge: AttributeEdge) -> None:
    node = BNode()
    graph.add((subject, KGMM.derivedValue, node))
    graph.add((node, RDF.type, KGMM.DerivedValue))
    graph.add((node, KGMM.attribute, _text(edge.attribute)))
    graph.add((node, KGMM.value, _text(edge.value)))
    graph.add((node, KGMM.source, _text(edge.source)))
    if edge.raw:
        note = KGMM.note if edge.raw.startswith("suspect catalog value") else KGMM.evidence
        graph.add((node, note, _text(edge.raw)))
    if edge.score is not None:
        graph.add((node, KGMM.score, Literal(float(edge.score), datatype=XSD.double)))
    if edge.run_id:
        graph.add((node, KGMM.runId, _text(edge.run_id)))
