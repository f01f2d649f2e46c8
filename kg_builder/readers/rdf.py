"""RDF catalogs (Turtle, N-Triples, JSON-LD, RDF/XML) using the schema.org vocabulary.

A product is a ``schema:Product``; its id is ``schema:sku`` or ``schema:productID`` or
``schema:identifier``, else its IRI. ``schema:name``/``description``/``category``/``image``
/``brand`` map to the canonical fields; ``schema:additionalProperty`` holds
``schema:PropertyValue`` nodes whose ``schema:name`` and ``schema:value`` (plus an optional
``unitText``/``unitCode``) become attributes, as do ``color``, ``material`` and ``size``.
Both http:// and https:// schema.org namespaces are accepted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from rdflib import RDF, BNode, Graph, Literal, Namespace, URIRef
from rdflib.term import Node

from ..records import CatalogError, CatalogRecord, RowProblem
from .common import CatalogSource, check_file, parse_category

SCHEMAS = (Namespace("https://schema.org/"), Namespace("http://schema.org/"))
RDF_FORMATS = {".ttl": "turtle", ".nt": "nt", ".jsonld": "json-ld", ".json": "json-ld", ".rdf": "xml", ".owl": "xml", ".n3": "n3"}
DIRECT_ATTRIBUTES = ("color", "material", "size", "model", "gtin", "weight", "height", "width", "depth")
_UNIT_CODES = {"KGM": "kg", "GRM": "g", "CMT": "cm", "MMT": "mm", "MTR": "m", "INH": "in", "MLT": "ml", "LTR": "l"}


def open_rdf(path: Path) -> CatalogSource:
    """Parse the whole file with rdflib (RDF has no rows to stream) and list its products."""
    size = check_file(path)
    graph = _parse(path)
    products = sorted(
        {s for schema in SCHEMAS for s in graph.subjects(RDF.type, schema.Product)}, key=str
    )
    if not products:
        raise CatalogError(f"{path}: no schema:Product found in the RDF graph")
    done = {"n": 0}

    def rows() -> Iterator[CatalogRecord | RowProblem]:
        for subject in products:
            yield from _record(graph, subject, path)
            done["n"] += 1

    return CatalogSource(path, "rdf", rows, lambda: size * done["n"] // len(products), size)


def _parse(path: Path) -> Graph:
    fmt = RDF_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise CatalogError(f"{path}: unknown RDF suffix {path.suffix!r}; use .ttl, .nt, .jsonld or .rdf")
    graph = Graph()
    try:
        if fmt == "json-ld":
            graph.parse(data=_offline_jsonld(path), format="json-ld", publicID=path.resolve().as_uri())
        else:
            graph.parse(str(path), format=fmt)
    except CatalogError:
        raise
    except Exception as err:  # rdflib raises many parser-specific types
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CatalogError(f"{path}: cannot parse as {fmt}: {message}") from None
    return graph


def _offline_jsonld(path: Path) -> str:
    """The JSON-LD text with a remote schema.org @context replaced by an inline one.

    Nothing is fetched at run time, so ``"@context": "https://schema.org"`` becomes
    ``{"@vocab": "https://schema.org/"}``, which gives the same terms.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CatalogError(f"{path}: invalid JSON-LD ({err})") from None

    def fix(node: object) -> object:
        if isinstance(node, dict):
            return {k: (_inline_context(v) if k == "@context" else fix(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [fix(n) for n in node]
        return node

    return json.dumps(fix(data))


def _inline_context(context: object) -> object:
    if isinstance(context, str) and "schema.org" in context:
        return {"@vocab": "https://schema.org/"}
    if isinstance(context, list):
        return [_inline_context(c) for c in context]
    return context


def _value(graph: Graph, subject: Node, name: str) -> Node | None:
    for schema in SCHEMAS:
        found = graph.value(subject, schema[name])
        if found is not None:
            return found
    return None


def _values(graph: Graph, subject: Node, name: str) -> list[Node]:
    return [o for schema in SCHEMAS for o in graph.objects(subject, schema[name])]


def _text(graph: Graph, node: Node | None) -> str:
    """A literal's text, or the schema:name of a node (brand, category), or an IRI."""
    if node is None:
        return ""
    if isinstance(node, Literal):
        return str(node).strip()
    name = _value(graph, node, "name")
    if name is not None:
        return str(name).strip()
    return str(node) if isinstance(node, URIRef) else ""


def _quantity(graph: Graph, node: Node) -> str:
    """"value unit" for a QuantitativeValue or PropertyValue, else its text."""
    if isinstance(node, BNode) or (isinstance(node, URIRef) and _value(graph, node, "value") is not None):
        value = _value(graph, node, "value")
        unit = _text(graph, _value(graph, node, "unitText")) or _UNIT_CODES.get(
            _text(graph, _value(graph, node, "unitCode")), ""
        )
        return f"{_text(graph, value)} {unit}".strip()
    return _text(graph, node)


def _is_derived(graph: Graph, prop: Node) -> bool:
    """kgmm's export marks extracted and predicted values; they are not catalog facts."""
    return any(str(p).endswith("#source") and str(p).startswith("https://kgmm.dev/") for p in graph.predicates(prop))


def _record(graph: Graph, subject: Node, path: Path) -> Iterator[CatalogRecord | RowProblem]:
    where = str(subject) if isinstance(subject, URIRef) else f"_:{subject}"
    product_id = next(
        (_text(graph, _value(graph, subject, key)) for key in ("sku", "productID", "identifier") if _value(graph, subject, key) is not None),
        str(subject) if isinstance(subject, URIRef) else "",
    )
    if not product_id:
        yield RowProblem(str(path), where, "sku", "a blank-node product needs schema:sku, productID or identifier")
        return
    attributes: list[tuple[str, str]] = []
    for brand in _values(graph, subject, "brand"):
        if _text(graph, brand):
            attributes.append(("brand", _text(graph, brand)))
    for name in DIRECT_ATTRIBUTES:
        attributes.extend((name, _quantity(graph, v)) for v in _values(graph, subject, name) if _quantity(graph, v))
    for prop in _values(graph, subject, "additionalProperty"):
        if _is_derived(graph, prop):
            continue
        key = _text(graph, _value(graph, prop, "name")) or _text(graph, _value(graph, prop, "propertyID"))
        value = _quantity(graph, prop)
        if key and value:
            attributes.append((key, value))
        elif value:
            yield RowProblem(str(path), where, "additionalProperty", f"property value {value!r} has no name; skipped", "warning")
    category = parse_category(_text(graph, _value(graph, subject, "category"))) or ()
    image = _value(graph, subject, "image")
    image_ref = _text(graph, _value(graph, image, "contentUrl")) if isinstance(image, BNode) else _text(graph, image)
    yield CatalogRecord(
        id=product_id,
        line=where,
        title=_text(graph, _value(graph, subject, "name")),
        description=_text(graph, _value(graph, subject, "description")),
        category=category,
        image=image_ref or None,
        attributes=sorted(attributes),
        properties={"iri": str(subject)} if isinstance(subject, URIRef) else {},
        image_base=str(path.parent),
    )
