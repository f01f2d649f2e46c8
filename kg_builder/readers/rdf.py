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
import re
import zlib
from pathlib import Path
from xml.parsers import expat
from typing import Iterator

from rdflib import RDF, BNode, Graph, Literal, Namespace, URIRef
from rdflib.term import Node

from ..records import CatalogError, CatalogRecord, RowProblem, printable
from .common import CatalogSource, check_file, open_binary, parse_category, row_failure

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
            try:
                yield from _record(graph, subject, path)
            except Exception as err:  # noqa: BLE001 - one product, never the build
                yield row_failure(str(path), printable(str(subject), 200), err)
            done["n"] += 1

    return CatalogSource(path, "rdf", rows, lambda: size * done["n"] // len(products), size)


def _parse(path: Path) -> Graph:
    name = path.name.lower()
    stem = Path(name[:-3]) if name.endswith(".gz") else Path(name)
    fmt = RDF_FORMATS.get(stem.suffix)
    if fmt is None:
        raise CatalogError(f"{path}: unknown RDF suffix {stem.suffix!r}; use .ttl, .nt, .jsonld or .rdf")
    data = _read_bytes(path)
    graph = Graph()
    try:
        if fmt == "json-ld":
            graph.parse(data=_offline_jsonld(path, data), format="json-ld", publicID=path.resolve().as_uri())
        else:
            if fmt == "xml":
                refuse_xml_entities(path, data)
            graph.parse(data=data, format=fmt, publicID=path.resolve().as_uri())
    except CatalogError:
        raise
    except RecursionError:
        raise CatalogError(f"{path}: cannot parse as {fmt}: nested too deeply") from None
    except Exception as err:  # rdflib raises many parser-specific types
        raise CatalogError(f"{path}: cannot parse as {fmt}: {_one_line(err)}") from None
    return graph


MAX_RDF_BYTES = 2 * 1024**3
"""An RDF file is parsed whole; a decompressed .gz larger than this is refused, not read."""


def _read_bytes(path: Path) -> bytes:
    try:
        with open_binary(path) as handle:
            data = handle.read(MAX_RDF_BYTES + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise CatalogError(f"{path}: cannot read ({getattr(err, 'strerror', None) or err})") from None
    if len(data) > MAX_RDF_BYTES:
        raise CatalogError(f"{path}: more than {MAX_RDF_BYTES // 1024**3} GiB of RDF; split the file")
    return data


def _one_line(err: Exception, limit: int = 400) -> str:
    """The whole parser message on one line (rdflib's spread over several), escaped, bounded."""
    text = " ".join(part.strip() for part in str(err).splitlines() if part.strip()) or type(err).__name__
    return printable(text, limit)


def refuse_xml_entities(path: Path, data: bytes) -> None:
    """Refuse XML that declares entities or a DTD subset, before rdflib's parser expands anything.

    A 1 KB "billion laughs" document expands to gigabytes, and an external entity reads local
    files; RDF/XML never needs either. One pass of expat with handlers that stop at the first
    declaration costs a fraction of the real parse.
    """

    class Refused(Exception):
        pass

    def refuse(*_: object) -> None:
        raise Refused()

    parser = expat.ParserCreate()
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        parser.Parse(data, True)
    except Refused:
        raise CatalogError(
            f"{path}: RDF/XML with entity declarations is refused (entity expansion is off: it can "
            "exhaust memory or read local files); remove the DOCTYPE's ENTITY lines"
        ) from None
    except expat.ExpatError as err:
        raise CatalogError(f"{path}: cannot parse as xml: {printable(str(err), 300)}") from None


def _offline_jsonld(path: Path, data: bytes) -> str:
    """The JSON-LD text with every @context made inline, so that nothing is ever fetched.

    ``"@context": "https://schema.org"`` (any spelling of schema.org) becomes
    ``{"@vocab": "https://schema.org/"}``, which gives the same terms. Any other remote or
    ``file://`` context, and ``@import``, is refused with one line: parsing must not reach
    the network or read files beside the catalog.
    """
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CatalogError(f"{path}: invalid JSON-LD ({printable(str(err), 200)})") from None
    except (RecursionError, ValueError):
        raise CatalogError(f"{path}: invalid JSON-LD (nested too deeply or a number too long)") from None

    def fix(node: object) -> object:
        if isinstance(node, dict):
            return {k: (_inline_context(path, v) if k == "@context" else fix(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [fix(n) for n in node]
        return node

    try:
        return json.dumps(fix(document))
    except RecursionError:
        raise CatalogError(f"{path}: invalid JSON-LD (nested too deeply)") from None


_SCHEMA_CONTEXT = re.compile(r"^https?://(www\.)?schema\.org/?(docs/jsonldcontext\.json(ld)?)?$", re.IGNORECASE)


def _inline_context(path: Path, context: object) -> object:
    if isinstance(context, str):
        if _SCHEMA_CONTEXT.match(context.strip()):
            return {"@vocab": "https://schema.org/"}
        raise CatalogError(
            f"{path}: JSON-LD @context {printable(context, 120)!r} is not fetched (only schema.org is known); "
            "put the context inline in the file"
        )
    if isinstance(context, list):
        return [_inline_context(path, c) for c in context]
    if isinstance(context, dict):
        if "@import" in context:
            raise CatalogError(f"{path}: JSON-LD @import is not fetched; put the context inline in the file")
        return {k: (_scoped(path, v) if isinstance(v, dict) else v) for k, v in context.items()}
    return context


def _scoped(path: Path, definition: dict) -> dict:
    """A term definition with its own (scoped) @context: that one must be inline too."""
    if "@context" in definition:
        return {**definition, "@context": _inline_context(path, definition["@context"])}
    return definition


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
