"""One parsed catalog row -> a checked, normalised product with its catalog edges.

Nothing here touches the build report or the store: a row's rejection or warnings come
back as values, in the order the report lists them. So the same code prepares rows in the
build's own process (``workers=1``) and in worker processes (``kg_builder.parallel``), and
both paths produce the same report and the same store by construction.
"""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from operator import attrgetter
from pathlib import Path
from typing import Iterable, NamedTuple

from graph_store import AttributeEdge, ProductNode

from .images import NO_IMAGE, ImageCheck, check_image
from .records import CatalogRecord, RowProblem
from .records.normalize import normalize_attribute, normalize_value
from .validate import check_record


class Converted(NamedTuple):
    """A row ready for a batch: its product, distinct catalog values, and warnings (report order).

    The values are plain tuples, not AttributeEdges: a worker process sends them to the build's
    process, and pickling a million small named tuples costs more than the parsing that made
    them. :func:`catalog_edges` makes the edges where the store needs them.
    """

    product: ProductNode
    pairs: tuple[tuple[str, str], ...]
    """Distinct (attribute, normalised value) pairs, in catalog order."""
    raws: tuple[str, ...]
    """The raw spelling of each pair (the first one the row gave)."""
    warnings: list[RowProblem]


class Row(NamedTuple):
    """A record that passed its checks, on its way into a batch.

    ``record`` is kept while the row still has to be converted (the in-process path checks a
    batch's images in threads at once); a worker converts right away and sends ``converted``
    (a RowProblem when conversion raised) without the record, which is all the writer needs.
    """

    id: str
    line: int | str
    fingerprint: int
    record: CatalogRecord | None
    converted: Converted | RowProblem | None


class ReadStopped(NamedTuple):
    """The reader failed part way (a truncated .gz); the build reports it where it happened."""

    error: str


def checked(item: CatalogRecord | RowProblem, file: str) -> Row | RowProblem:
    """The row's rejection, or the record as a Row still to convert."""
    if isinstance(item, RowProblem):
        return item
    problem = check_record(item, file)
    if problem is not None:
        return problem
    return Row(item.id, item.line, fingerprint(item), item, None)


def prepare_all(items: Iterable[CatalogRecord | RowProblem], file: str) -> list[tuple | RowProblem]:
    """Check, check images and convert a run of parsed rows (what a worker process does).

    A row goes back as plain tuples only (:func:`_for_pickle`): the build's process unpickles
    every row on its critical path, and named tuples and dataclasses cost a Python call or a
    dictionary each there. :func:`from_worker` names them again.
    """
    out: list[tuple | RowProblem] = []
    for item in items:
        row = checked(item, file)
        if isinstance(row, Row) and row.record is not None:
            done = convert(row.record, check_record_image(row.record), file)
            row = (row.id, row.line, row.fingerprint, None, done if isinstance(done, RowProblem) else _for_pickle(done))
        out.append(row)
    return out


MAX_SHARED_PAIRS = 1 << 17
"""Bound of :data:`_SHARED_PAIRS` (a catalog of unique values must not grow a worker without end)."""
_SHARED_PAIRS: dict[tuple[str, str], tuple[str, str]] = {}
_product_fields = attrgetter(*(f.name for f in dataclass_fields(ProductNode)))
"""A ProductNode's fields in declaration order, ``ProductNode(*fields)`` makes it again."""


def _for_pickle(done: Converted) -> tuple:
    """A Converted as plain tuples that pickle small: the product's fields in order, each
    (attribute, value) pair one shared object across rows, and a raw spelling equal to its value
    given as the value itself. Pickle writes an object it already wrote in the same message as a
    reference of a few bytes, so a chunk's repeated values cross the pipe once (measured: 450 ->
    315 bytes a synthetic row, and 0.36 -> 0.17 CPU s to pickle, unpickle and rebuild 20k rows).
    Equal strings either way: the store gets exactly the same values.
    """
    product, pairs, raws, warnings = done
    if len(_SHARED_PAIRS) > MAX_SHARED_PAIRS:
        _SHARED_PAIRS.clear()
    shared = tuple([_SHARED_PAIRS.setdefault(pair, pair) for pair in pairs])
    raws = tuple([value if raw == value else raw for (_, value), raw in zip(shared, raws)])
    return (_product_fields(product), shared, raws, warnings)


def from_worker(item: tuple | RowProblem | ReadStopped) -> Row | RowProblem | ReadStopped:
    """A row as :func:`prepare_all` sent it, as the Row (and Converted) it stands for."""
    if type(item) is not tuple:  # a RowProblem or a ReadStopped: sent as they are
        return item  # type: ignore[return-value]
    done = item[4]
    if not isinstance(done, RowProblem):
        fields, pairs, raws, warnings = done
        done = Converted(ProductNode(*fields), pairs, raws, warnings)
    return Row(item[0], item[1], item[2], None, done)


def fingerprint(record: CatalogRecord) -> int:
    """Tells a duplicate id with the same values from one with different values.

    ``hash`` of strings is salted per interpreter; worker processes are forked from the
    build's process, so they share its salt and their fingerprints compare with its own.
    """
    return hash(
        (record.title, record.description, record.category, record.image, tuple(record.attributes),
         repr(sorted(record.properties.items())))
    )


def check_record_image(record: CatalogRecord) -> ImageCheck:
    """The image check of one record; never raises (a surprise becomes a missing image)."""
    if record.image is None or not record.image.strip():
        return NO_IMAGE  # most synthetic and many real rows: no Path to build
    try:
        return check_image(record.image, Path(record.image_base or "."))
    except Exception as err:  # noqa: BLE001 - check_image never raises; belt and braces
        return ImageCheck(None, "missing", f"cannot check ({type(err).__name__})")


def convert(record: CatalogRecord, image: ImageCheck, file: str) -> Converted | RowProblem:
    """Normalise one record into a product and its catalog edges; a row that raises is rejected."""
    try:
        return _convert(record, image, file)
    except Exception as err:  # noqa: BLE001 - one row's surprise must not stop the build
        return RowProblem(file, record.line, "row", f"not loaded ({type(err).__name__}: {err})")


def _convert(record: CatalogRecord, image: ImageCheck, file: str) -> Converted:
    warnings: list[RowProblem] = []
    if image.status == "missing":
        warnings.append(RowProblem(file, record.line, "image", f"image missing: {image.reason}", "warning"))
    edges: dict[tuple[str, str], str] = {}
    for name, raw in record.attributes:
        attribute = normalize_attribute(name)
        value = normalize_value(raw)
        if not attribute:
            warnings.append(RowProblem(
                file, record.line, f"attributes.{name}",
                f"attribute name {name!r} is empty after normalisation; its value {raw!r} is skipped", "warning",
            ))
            continue
        if not value:
            warnings.append(RowProblem(
                file, record.line, f"attributes.{name}", f"value {raw!r} is empty after normalisation", "warning"
            ))
            continue
        edges.setdefault((attribute, value), raw)
    product = ProductNode(
        id=record.id,
        title=record.title,
        description=record.description,
        category=record.category,
        image=image.path if image.status == "ok" else record.image,
        image_status=image.status,
        image_reason=image.reason,
        properties=record.properties,
    )
    return Converted(product, tuple(edges), tuple(edges.values()), warnings)


def catalog_edges(product_id: str, pairs: tuple[tuple[str, str], ...], raws: tuple[str, ...]) -> list[AttributeEdge]:
    """The catalog edges of one converted row."""
    return [new_edge(product_id, a, v, "catalog", raw) for (a, v), raw in zip(pairs, raws)]


def new_edge(product_id: str, attribute: str, value: str, source: str, raw: str | None) -> AttributeEdge:
    """An edge without score or run, made with ``_make`` (no keyword handling: a build makes
    millions, and the fields are already checked)."""
    return AttributeEdge._make((product_id, attribute, value, source, raw, None, None))
