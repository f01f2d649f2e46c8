"""Several write transactions at once, one per slice of a batch's products.

Why: Neo4j runs a transaction, its commit included (half of the server's time on a load), on one
server thread, and while the client encodes the next statement the server waits. Slices of one
batch written by several sessions at once keep more than one server core busy and overlap the
client's work with the server's (measured in docs/BENCHMARKS.md, "Loading into Neo4j").

Why no deadlock: the slices hold disjoint products, and the nodes products share (categories and
values) are created before, in one transaction of their own
(:func:`graph_store.neo4j_writes.write_shared_nodes`), so a slice only reads their index entries
and creates its edges to them with ``CREATE`` (a ``MERGE`` of a missing relationship would lock
the shared node until commit). The locks Neo4j takes at commit for new relationships are taken
in one sorted order. Should a deadlock happen all the same (say a value pruned by another
process meanwhile and then created by two slices), Neo4j detects it and fails one transaction
with a transient error, which the driver's managed transaction retries like a dropped connection.

What a failure leaves: each slice commits on its own, a product always whole (its node, category
edge and HAS edges in one transaction). When a slice fails after the driver's retries, the
slices that succeeded stay committed, so the error says how many of the batch's products were
committed and that rerunning the same write completes it (every write replaces what the same
rows wrote before, so writing a committed product again changes nothing).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Sequence

import neo4j

from .errors import StoreError

Work = Callable[[neo4j.ManagedTransaction], Any]
"""A transaction function, run by ``session.execute_write``."""

RunWrite = Callable[[str, Work], Any]
"""``run(action, work)``: one managed write transaction, driver errors turned into StoreErrors."""


class ParallelWrites:
    """Runs the transactions of one batch's slices on up to ``threads`` threads at once.

    Each thread opens its own session (sessions are not thread-safe; the driver is). The pool
    is made on first use and lives until :meth:`close`.
    """

    def __init__(self, threads: int) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None

    def run(self, action: str, run: RunWrite, slices: Sequence[tuple[int, Work]]) -> None:
        """Run every ``(products, work)`` slice with ``run`` and wait for all of them.

        Raises the first failure once every slice has finished; when other slices committed,
        as the same class (a lost server stays a :class:`StoreUnavailableError`) with a message
        that says how many of the batch's products are committed.
        """
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="kgmm-neo4j-write")
        futures: list[tuple[int, Future]] = [(count, self._pool.submit(run, action, work)) for count, work in slices]
        failures = [future.exception() for _, future in futures]
        errors = [err for err in failures if err is not None]
        if not errors:
            return
        committed = sum(count for (count, _), err in zip(futures, failures) if err is None)
        raise partly_committed(errors[0], committed, sum(count for count, _ in slices), len(errors), len(slices))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def partly_committed(err: BaseException, committed: int, products: int, failed: int, transactions: int) -> BaseException:
    """``err`` (a failed slice's error), told what the other slices committed.

    Nothing committed: ``err`` itself. Otherwise a new error of the same StoreError class whose
    message ends with the count, raised from ``err``; errors that are not StoreErrors (a bug)
    are returned unchanged.
    """
    if committed == 0 or not isinstance(err, StoreError):
        return err
    note = (
        f"{committed:,} of this batch's {products:,} products were committed, each whole with its edges, by "
        f"{transactions - failed} of its {transactions} transactions; the other {products - committed:,} were not; "
        "rerunning the same write completes it"
    )
    partial = type(err)(f"{err}; {note}")
    partial.__cause__ = err
    return partial
