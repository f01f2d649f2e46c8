"""Worker processes for a build: parse and normalise (pass 1) and extract text (pass 2).

The build's own process reads the file and writes the store; workers do the per-row
Python in between, which is two thirds of a build's time in one process. Results come
back in submission order and at most ``window`` chunks are in flight, so the report and
the store are the same as with one process and memory stays bounded whatever the catalog.

Workers are forked: they inherit the opened source (its ``parse`` is a closure) and, in
pass 2, the extractor and the products' texts without pickling them, and they share the
parent's string-hash salt (duplicate fingerprints compare across processes). Where fork
is not available a build runs in one process.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from itertools import islice
from typing import Any, Callable, Iterable, Iterator

from graph_store.cpus import usable_cpus

from .prepare import ReadStopped, Row, from_worker, prepare_all
from .readers import CatalogSource
from .records import RowProblem

ROWS_PER_TASK = 1000
"""Raw rows a worker parses per task: large enough that sending them costs little against
the parsing, small enough that the writer is never kept waiting long for the first ones."""
MAX_WORKERS = 8
"""Beyond this, the one writer (SQLite's single transaction at a time) is the bottleneck."""
PARALLEL_MIN_BYTES = 4 << 20
"""Catalogs smaller than this build in one process: starting workers costs more than it saves."""

_STATE: Any = None
_FUNCTION: Callable[[Any, Any], Any] | None = None


def can_fork() -> bool:
    """Whether worker processes can be forked here (Linux, macOS; not Windows)."""
    return "fork" in multiprocessing.get_all_start_methods()


def default_workers(catalog_bytes: int) -> int:
    """Workers for a catalog: one per core (at most MAX_WORKERS) for a large one, else 1.

    The writer runs beside the workers; on two cores two workers measured faster than one
    because the writer waits on SQLite part of the time (see docs/BENCHMARKS.md).
    """
    if catalog_bytes < PARALLEL_MIN_BYTES or not can_fork():
        return 1
    return max(1, min(usable_cpus(), MAX_WORKERS))


class _Done:
    """A result computed in the build's own process, queued in order with the workers' ones."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def get(self) -> Any:
        return self.value


def _exit_with_parent(parent: int) -> None:
    """Pool initializer: a worker whose build process died (SIGKILL, out of memory) exits too.

    Forked workers hold both ends of their task pipe, so they would never see it close and
    would wait for tasks forever, holding memory."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _call(task: Any) -> Any:
    assert _FUNCTION is not None
    return _FUNCTION(_STATE, task)


def ordered_map(
    function: Callable[[Any, Any], Any], state: Any, tasks: Iterable[Any], workers: int
) -> Iterator[Any]:
    """``function(state, task)`` for each task in worker processes, yielded in task order.

    ``state`` reaches the workers by fork, unpickled. A task wrapped in :class:`_Done` is
    not sent anywhere: its value takes its place in the order. At most ``2 * workers + 2``
    tasks are in flight, so a reader is never more than that far ahead of the writer.
    """
    global _STATE, _FUNCTION
    _STATE, _FUNCTION = state, function
    try:
        with multiprocessing.get_context("fork").Pool(workers, _exit_with_parent, (os.getpid(),)) as pool:
            window = 2 * workers + 2
            pending: deque[Any] = deque()
            for task in tasks:
                pending.append(task if isinstance(task, _Done) else pool.apply_async(_call, (task,)))
                if len(pending) >= window:
                    yield pending.popleft().get()
            while pending:
                yield pending.popleft().get()
    finally:
        _STATE = _FUNCTION = None


def prepared_rows(source: CatalogSource, file: str, workers: int) -> Iterator[Row | RowProblem | ReadStopped]:
    """The source's rows checked and converted by ``workers`` processes, in file order."""
    assert source.raw is not None and source.parse is not None
    for chunk in ordered_map(_prepare_chunk, (source.parse, file), _chunks(source.raw()), workers):
        yield from map(from_worker, chunk)


def _chunks(raw: Iterator[Any]) -> Iterator[list[Any] | _Done]:
    """``raw`` in lists of ROWS_PER_TASK rows, taken in C (``list.extend`` of an ``islice``);
    a read error ends the chunk with the rows before it, then the error in its place."""
    while True:
        chunk: list[Any] = []
        try:
            chunk.extend(islice(raw, ROWS_PER_TASK))  # keeps the rows read before an error
        except Exception as err:  # noqa: BLE001 - the rows before the failure still load
            if chunk:
                yield chunk
            yield _Done([ReadStopped(f"{type(err).__name__}: {err}")])
            return
        if not chunk:
            return
        yield chunk
        if len(chunk) < ROWS_PER_TASK:
            return


def _prepare_chunk(state: tuple[Callable[[Any], Iterator[Any]], str], chunk: list[Any]) -> list[tuple | RowProblem]:
    parse, file = state
    return prepare_all((record for item in chunk for record in parse(item)), file)
