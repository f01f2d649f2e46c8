"""catalog -> normalised triples -> GraphStore, in two streaming passes.

Pass 1 reads rows, checks images, normalises attribute values and writes products with
their catalog edges in batches (one transaction each, so a crash loses at most the batch
in flight). Pass 2 extracts values from titles and descriptions against the vocabulary
the catalog established and replaces the text edges of the products just built.
Rerunning a build is idempotent: every write replaces what the same rows wrote before.
"""

from __future__ import annotations

import gc
import time
from contextlib import contextmanager
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from graph_store import AttributeEdge, GraphStore, ProductNode

from .behaviour import PairsSource, load_behaviour
from .extract import MAX_TEXT_CHARS, TextExtractor
from .images import NO_IMAGE, ImageCheck, check_image
from .records.normalize import normalize_attribute, normalize_value
from .readers import CatalogSource
from .records import CatalogError, CatalogRecord, RowProblem
from .report import BuildReport
from .validate import check_record

IMAGE_THREADS = 4
"""Threads that check images; decoding releases the GIL, so this uses every core."""

Progress = Callable[[str, int, int, int], None]
"""progress(phase, done, total, rows): "read" counts bytes of the catalog, "text" products."""


class PartialBuildError(CatalogError):
    """The store failed part way through a build; the message says exactly what was committed."""

    def __init__(self, report: BuildReport, err: Exception) -> None:
        committed = report.products_committed
        what = (
            "nothing was written" if committed == 0
            else f"the first {committed:,} products (of {report.rows_read:,} rows read) were committed; "
            "rerunning the same build completes it"
        )
        super().__init__(f"{report.store}: writing failed ({type(err).__name__}: {err}); {what}")
        self.committed = committed


@dataclass
class _TextJob:
    title: str
    description: str
    top_category: str | None
    values: tuple[tuple[str, str], ...]  # the catalog's (attribute, value) pairs


def build_graph(
    source: CatalogSource,
    store: GraphStore,
    *,
    batch_size: int = 2000,
    extract_text: bool = True,
    progress: Progress | None = None,
    behaviour: Sequence[PairsSource] = (),
) -> BuildReport:
    """Load one catalog into ``store`` and return the report (also recorded in the store).

    ``behaviour`` pairs files load after the catalog, so their ids can be checked against it
    (and against products of earlier builds); open them first with
    :func:`kg_builder.behaviour.open_pairs`, so that a bad file stops the build before it writes.
    """
    with _gc_paused():
        return _build(source, store, batch_size, extract_text, progress, behaviour)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector during a build.

    A build keeps millions of small acyclic objects alive (records, edges, counters);
    generational collections rescan them again and again, which measured as a third of
    the time of a 100k-product build. Reference counting still frees everything.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _build(
    source: CatalogSource,
    store: GraphStore,
    batch_size: int,
    extract_text: bool,
    progress: Progress | None,
    behaviour: Sequence[PairsSource] = (),
) -> BuildReport:
    started = time.perf_counter()
    report = BuildReport(str(source.path), source.format, store.uri)
    report.catalog_folder = str(Path(source.path).resolve().parent)
    jobs: dict[str, _TextJob] = {}
    scope: dict[str, Counter] = {}
    _load_catalog(source, store, report, jobs, scope, batch_size, progress)
    if extract_text and jobs:
        try:
            _extract_text(store, report, jobs, scope, batch_size, progress)
        except Exception as err:
            raise CatalogError(
                f"{store.uri}: writing extracted values failed ({type(err).__name__}: {err}); all "
                f"{report.products_committed:,} products and their catalog values were committed, text values "
                "may be partly written; rerunning the same build completes it"
            ) from err
    for pairs in behaviour:
        report.behaviour.append(load_behaviour(pairs, store, batch_size))
    store.prune_orphans()  # values no edge uses any more (a rebuilt row changed them)
    report.seconds = time.perf_counter() - started
    store.record_build(report.as_dict())
    return report


def _load_catalog(
    source: CatalogSource,
    store: GraphStore,
    report: BuildReport,
    jobs: dict[str, _TextJob],
    scope: dict[str, Counter],
    batch_size: int,
    progress: Progress | None,
) -> None:
    seen: dict[str, tuple[int | str, int]] = {}
    written = [0]
    pending: list[CatalogRecord] = []
    pending_ids: set[str] = set()

    def flush(pool: ThreadPoolExecutor) -> None:
        # Image decoding releases the GIL, so the checks of one batch run in parallel.
        checks = pool.map(_check_record_image, pending) if any(r.image for r in pending) else [NO_IMAGE] * len(pending)
        products: list[ProductNode] = []
        edges: list[AttributeEdge] = []
        for record, image in zip(pending, checks):
            try:
                product, product_edges = _convert(record, image, report)
            except Exception as err:  # noqa: BLE001 - one row's surprise must not stop the build
                report.add_problem(RowProblem(report.catalog, record.line, "row", f"not loaded ({type(err).__name__}: {err})"))
                continue
            products.append(product)
            edges.extend(product_edges)
            top = product.category[0] if product.category else None
            scope.setdefault(top or "", Counter()).update((e.attribute, e.value) for e in product_edges)
            jobs[product.id] = _TextJob(
                product.title,
                product.description[:MAX_TEXT_CHARS],
                top,
                tuple((e.attribute, e.value) for e in product_edges),
            )
        try:
            store.upsert_products(products, edges)
        except Exception as err:
            raise PartialBuildError(report, err) from err
        written[0] += len(products)
        report.products_committed = written[0]
        pending.clear()
        pending_ids.clear()
        if progress:
            progress("read", source.position(), source.size, report.rows_read)

    with ThreadPoolExecutor(max_workers=IMAGE_THREADS) as pool:
        for item in _guarded_rows(source, report):
            if isinstance(item, CatalogRecord):
                problem = check_record(item, report.catalog)
                if problem is not None:
                    item = problem
            if isinstance(item, RowProblem):
                report.add_problem(item)
                if item.severity == "rejected":
                    report.rows_read += 1
                continue
            report.rows_read += 1
            _note_duplicate(item, seen, report)
            if item.id in pending_ids:  # the later row must win: write the earlier one first
                flush(pool)
            pending.append(item)
            pending_ids.add(item.id)
            if len(pending) >= batch_size:
                flush(pool)
        if pending:
            flush(pool)
    report.products = len(jobs)
    for job in jobs.values():  # count the rows that won, so duplicates are not counted twice
        report.triples_by_source["catalog"] += len(job.values)
        report.values.update(job.values)
    report.attributes.update(attribute for attribute, _ in report.values)


def _guarded_rows(source: CatalogSource, report: BuildReport) -> Iterator[CatalogRecord | RowProblem]:
    """The reader's rows; a reader that fails part way (a truncated .gz, an I/O error) ends
    with one rejected entry saying where reading stopped, and the rows before it still load."""
    rows = source.rows()
    while True:
        try:
            item = next(rows)
        except StopIteration:
            return
        except Exception as err:  # noqa: BLE001 - readers report row problems; this is the last net
            yield RowProblem(
                report.catalog, f"after row {report.rows_read}", "file",
                f"reading stopped ({type(err).__name__}: {err}); the rest of the file was not read",
            )
            return
        yield item


def _check_record_image(record: CatalogRecord) -> ImageCheck:
    try:
        return check_image(record.image, Path(record.image_base or "."))
    except Exception as err:  # noqa: BLE001 - check_image never raises; belt and braces
        return ImageCheck(None, "missing", f"cannot check ({type(err).__name__})")


def _convert(record: CatalogRecord, image: ImageCheck, report: BuildReport) -> tuple[ProductNode, list[AttributeEdge]]:
    """Normalise one record into a product node and its catalog edges."""
    if image.status == "ok":
        report.images_ok += 1
    elif image.status == "missing":
        report.images_missing += 1
        report.image_reasons[image.reason.split(":")[0] if image.reason else "unknown"] += 1
        report.add_problem(RowProblem(report.catalog, record.line, "image", f"image missing: {image.reason}", "warning"))
    edges: dict[tuple[str, str], AttributeEdge] = {}
    for name, raw in record.attributes:
        attribute = normalize_attribute(name)
        value = normalize_value(raw)
        if not attribute:
            report.add_problem(RowProblem(
                report.catalog, record.line, f"attributes.{name}",
                f"attribute name {name!r} is empty after normalisation; its value {raw!r} is skipped", "warning",
            ))
            continue
        if not value:
            report.add_problem(RowProblem(
                report.catalog, record.line, f"attributes.{name}", f"value {raw!r} is empty after normalisation", "warning"
            ))
            continue
        edges.setdefault((attribute, value), AttributeEdge(record.id, attribute, value, "catalog", raw))
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
    return product, list(edges.values())


def _note_duplicate(record: CatalogRecord, seen: dict[str, tuple[int | str, int]], report: BuildReport) -> None:
    fingerprint = hash(
        (record.title, record.description, record.category, record.image, tuple(record.attributes),
         repr(sorted(record.properties.items())))
    )
    earlier = seen.get(record.id)
    seen[record.id] = (record.line, fingerprint)
    if earlier is None:
        return
    report.duplicates += 1
    if earlier[1] != fingerprint:
        message = f"duplicate id {record.id!r} with different values; this row wins over line {earlier[0]}"
    else:
        message = f"duplicate id {record.id!r}, identical to line {earlier[0]}"
    report.add_problem(RowProblem(report.catalog, record.line, "id", message, "warning"))


def _extract_text(
    store: GraphStore,
    report: BuildReport,
    jobs: dict[str, _TextJob],
    scope: dict[str, Counter],
    batch_size: int,
    progress: Progress | None,
) -> None:
    extractor = TextExtractor(store.attribute_vocabulary(("catalog",)), scope)
    ids = list(jobs)
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        edges = [
            AttributeEdge(pid, attribute, value, "text", raw)
            for pid in chunk
            for attribute, value, raw in extractor.extract(
                jobs[pid].title, jobs[pid].description, jobs[pid].top_category, jobs[pid].values
            )
        ]
        store.replace_edges(chunk, "text", edges)
        report.triples_by_source["text"] += len(edges)
        report.attributes.update(e.attribute for e in edges)
        report.values.update((e.attribute, e.value) for e in edges)
        if progress:
            progress("text", min(start + batch_size, len(ids)), len(ids), report.rows_read)
