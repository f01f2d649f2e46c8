"""catalog -> normalised triples -> GraphStore, in two streaming passes.

Pass 1 reads rows, checks images, normalises attribute values and writes products with
their catalog edges in batches (one transaction each, so a crash loses at most the batch
in flight). Pass 2 extracts values from titles and descriptions against the vocabulary
the catalog established and replaces the text edges of the products just built.
Rerunning a build is idempotent: every write replaces what the same rows wrote before.

With ``workers > 1`` the per-row work of both passes runs in worker processes
(:mod:`kg_builder.parallel`, conversion in :mod:`kg_builder.prepare`) and one writer thread
commits each batch while the next is prepared; results arrive in file order, so the store and
the report are those of ``workers=1``, which keeps everything in this process.
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Sequence

from graph_store import AttributeEdge, GraphStore, ProductNode

from .behaviour import PairsSource, load_behaviour
from .extract import MAX_TEXT_CHARS, TextExtractor
from .images import NO_IMAGE
from .parallel import can_fork, default_workers, ordered_map, prepared_rows
from .prepare import ReadStopped, Row, catalog_edges, check_record_image, checked, convert, new_edge
from .readers import CatalogSource
from .records import CatalogError, CatalogRecord, RowProblem
from .report import BuildReport

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


class _TextJob(NamedTuple):
    """What pass 2 needs of a product, in the order of TextExtractor.extract's arguments (a named
    tuple: a build keeps one per product, as small as a plain tuple)."""

    title: str
    description: str  # cut to MAX_TEXT_CHARS
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
    workers: int | None = None,
) -> BuildReport:
    """Load one catalog into ``store`` and return the report (also recorded in the store).

    ``behaviour`` pairs files load after the catalog, so their ids can be checked against it
    (and against products of earlier builds); open them first with
    :func:`kg_builder.behaviour.open_pairs`, so that a bad file stops the build before it writes.
    ``workers`` processes parse, normalise and extract text while this process writes
    (None: :func:`kg_builder.parallel.default_workers`; 1: everything in this process).
    The store and the report are the same whatever the count.
    """
    if workers is None:
        workers = default_workers(source.size)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    with _gc_paused():
        return _build(source, store, batch_size, extract_text, progress, behaviour, workers)


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
    behaviour: Sequence[PairsSource],
    workers: int,
) -> BuildReport:
    started = time.perf_counter()
    report = BuildReport(str(source.path), source.format, store.uri)
    report.catalog_folder = str(Path(source.path).resolve().parent)
    jobs: dict[str, _TextJob] = {}
    scope: dict[str, Counter] = {}
    with store.bulk_load():
        _load_catalog(source, store, report, jobs, scope, batch_size, progress, workers)
        if extract_text and jobs:
            try:
                _extract_text(store, report, jobs, scope, batch_size, progress, workers)
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
    workers: int,
) -> None:
    seen: dict[str, tuple[int | str, int]] = {}
    write = _Writer(store, report, background=workers > 1)
    pending: list[Row] = []
    pending_ids: set[str] = set()
    pairs_by_top: dict[str, list[tuple[tuple[str, str], ...]]] = {}  # counted once at the end
    file = report.catalog

    def flush(pool: ThreadPoolExecutor) -> None:
        # Rows still to convert (the in-process path): image decoding releases the GIL,
        # so the checks of one batch run in parallel threads.
        todo = [row.record for row in pending if row.converted is None and row.record is not None]
        images = iter(pool.map(check_record_image, todo) if any(r.image for r in todo) else [NO_IMAGE] * len(todo))
        products: list[ProductNode] = []
        edges: list[AttributeEdge] = []
        for row in pending:
            done = row.converted if row.converted is not None else convert(row.record, next(images), file)  # type: ignore[arg-type]
            if isinstance(done, RowProblem):
                report.add_problem(done)
                continue
            product, pairs, raws, warnings = done
            _count_image(product, report)
            for warning in warnings:
                report.add_problem(warning)
            products.append(product)
            edges += catalog_edges(product.id, pairs, raws)
            top = product.category[0] if product.category else None
            tops = pairs_by_top.get(top or "")
            if tops is None:
                tops = pairs_by_top[top or ""] = []
            tops.append(pairs)
            jobs[product.id] = _TextJob(product.title, product.description[:MAX_TEXT_CHARS], top, pairs)
        write.submit(products, edges)
        pending.clear()
        pending_ids.clear()
        if progress:
            progress("read", source.position(), source.size, report.rows_read)

    if workers > 1 and source.raw is not None and source.parse is not None:
        items: Iterator[Row | RowProblem | ReadStopped] = prepared_rows(source, file, workers)
    else:
        items = (item if isinstance(item, ReadStopped) else checked(item, file) for item in _guarded_rows(source))
    with ThreadPoolExecutor(max_workers=IMAGE_THREADS) as pool, _closing(write):
        for item in items:
            if isinstance(item, ReadStopped):
                item = RowProblem(
                    file, f"after row {report.rows_read}", "file",
                    f"reading stopped ({item.error}); the rest of the file was not read",
                )
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
        write.wait()
    # Every row that loaded counts in its category's scope, duplicates too; the report counts
    # the rows that won, so duplicates are not counted twice. Each is one count in C.
    scope.update((top, Counter(chain.from_iterable(lists))) for top, lists in pairs_by_top.items())
    report.products = len(jobs)
    report.triples_by_source["catalog"] += sum(len(job.values) for job in jobs.values())
    if report.duplicates:  # the values of the rows that won: a losing row's may be in no other row
        report.values.update(chain.from_iterable(job.values for job in jobs.values()))
    else:  # every loaded row won and the scope counted each once: the same set, from a key per distinct value
        for counts in scope.values():
            report.values.update(counts)
    report.attributes.update(attribute for attribute, _ in report.values)


class _Writer:
    """Writes batches in order, one transaction each; ``products_committed`` counts committed ones.

    With ``background`` the write runs in one thread while the build's thread prepares the next
    batch (SQLite and the Neo4j driver release the GIL while the database works); one batch at
    most is in flight, so batches still commit in file order and a failure leaves exactly the
    batches before it committed. Without it (one process, the simple path) each write blocks.
    """

    def __init__(self, store: GraphStore, report: BuildReport, background: bool) -> None:
        self.store, self.report = store, report
        self.thread = ThreadPoolExecutor(max_workers=1) if background else None
        self.in_flight: tuple[Future, int] | None = None

    def submit(self, products: list[ProductNode], edges: list[AttributeEdge]) -> None:
        self.wait()
        if self.thread is None:
            self._done(lambda: self.store.upsert_products(products, edges), len(products))
        else:
            self.in_flight = (self.thread.submit(self.store.upsert_products, products, edges), len(products))

    def wait(self) -> None:
        """Block until the batch in flight is committed (a failure raises PartialBuildError)."""
        if self.in_flight is not None:
            future, count = self.in_flight
            self.in_flight = None
            self._done(future.result, count)

    def close(self) -> None:
        """Let a write in flight finish (whatever else failed), so the store is never left mid-call."""
        if self.thread is not None:
            self.thread.shutdown(wait=True)

    def _done(self, commit: Callable[[], object], count: int) -> None:
        try:
            commit()
        except Exception as err:
            raise PartialBuildError(self.report, err) from err
        self.report.products_committed += count


@contextmanager
def _closing(writer: _Writer) -> Iterator[None]:
    try:
        yield
    finally:
        writer.close()


def _guarded_rows(source: CatalogSource) -> Iterator[CatalogRecord | RowProblem | ReadStopped]:
    """The reader's rows; a reader that fails part way (a truncated .gz, an I/O error) ends
    with a ReadStopped (reported as one rejected entry saying where reading stopped), and
    the rows before it still load."""
    rows = source.rows()
    while True:
        try:
            item = next(rows)
        except StopIteration:
            return
        except Exception as err:  # noqa: BLE001 - readers report row problems; this is the last net
            yield ReadStopped(f"{type(err).__name__}: {err}")
            return
        yield item


def _count_image(product: ProductNode, report: BuildReport) -> None:
    if product.image_status == "ok":
        report.images_ok += 1
    elif product.image_status == "missing":
        report.images_missing += 1
        reason = product.image_reason
        report.image_reasons[reason.split(":")[0] if reason else "unknown"] += 1


def _note_duplicate(row: Row, seen: dict[str, tuple[int | str, int]], report: BuildReport) -> None:
    earlier = seen.get(row.id)
    seen[row.id] = (row.line, row.fingerprint)
    if earlier is None:
        return
    report.duplicates += 1
    if earlier[1] != row.fingerprint:
        message = f"duplicate id {row.id!r} with different values; this row wins over line {earlier[0]}"
    else:
        message = f"duplicate id {row.id!r}, identical to line {earlier[0]}"
    report.add_problem(RowProblem(report.catalog, row.line, "id", message, "warning"))


def _extract_text(
    store: GraphStore,
    report: BuildReport,
    jobs: dict[str, _TextJob],
    scope: dict[str, Counter],
    batch_size: int,
    progress: Progress | None,
    workers: int,
) -> None:
    extractor = TextExtractor(store.attribute_vocabulary(("catalog",)), scope)
    ids = list(jobs)
    ranges = [(start, min(start + batch_size, len(ids))) for start in range(0, len(ids), batch_size)]
    state = (extractor, jobs, ids)
    if workers > 1 and len(ranges) > 1 and can_fork():
        found: Iterator[list[tuple[str, str, str, str]]] = ordered_map(_extract_range, state, ranges, workers)
    else:
        found = (_extract_range(state, span) for span in ranges)
    for (start, stop), found_edges in zip(ranges, found):
        edges = [new_edge(pid, a, v, "text", raw) for pid, a, v, raw in found_edges]
        store.replace_edges(ids[start:stop], "text", edges)
        report.triples_by_source["text"] += len(edges)
        report.attributes.update(e.attribute for e in edges)
        report.values.update((e.attribute, e.value) for e in edges)
        if progress:
            progress("text", stop, len(ids), report.rows_read)


def _extract_range(
    state: tuple[TextExtractor, dict[str, _TextJob], list[str]], span: tuple[int, int]
) -> list[tuple[str, str, str, str]]:
    """(product id, attribute, value, raw) of the text edges of products ``ids[start:stop]``.

    Runs in a worker when there are several; plain tuples pickle far faster than AttributeEdges,
    which the build's process makes from them.
    """
    extractor, jobs, ids = state
    return [(pid, *found) for pid in ids[span[0] : span[1]] for found in extractor.extract(*jobs[pid])]
