"""Bulk loading the embedded store: the ``edges_by_value`` index built once, after the load.

Why: a build appends edges in product order, so the ``edges`` table grows at its end, but
``edges_by_value`` is keyed by value, and every batch of a build touches thousands of its
pages all over the file (one per value the batch uses). Each commit then writes all of them
to the WAL again, and a checkpoint writes them once more: at a million products keeping the
index row by row measured as most of a build's store time. Sorting the finished table into
the index once (``CREATE INDEX``) writes each index page once.

So a build into a store without edges drops the index for its two passes (``bulk_load``) and
creates it again at their end, and also when the build fails. A build that is killed leaves a
store whose committed batches are all there but without the index. Reads that need it choose
a query that works without it (:func:`used_values_sql`), so that store is usable, read-only
too, only slower; the next build into it creates the index first (:func:`ensure_value_index`),
as does pruning, the one write that needs it.

Not when the store is opened: a command that only reads (``kgmm stats`` while a build runs)
opens a writable file writable, and creating the index then would hold the write lock for the
whole sort (tens of seconds at a million products), longer than the build's writer waits for
it (30 s), failing the build.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from functools import lru_cache
from itertools import chain
from typing import Iterable, Iterator, Sequence

from .cpus import usable_cpus

VALUE_INDEX = "edges_by_value"
VALUE_INDEX_DDL = f"CREATE INDEX IF NOT EXISTS {VALUE_INDEX} ON edges (value_pk)"
"""The same statement as in :data:`graph_store.sqlite_schema.DDL` (a test checks it)."""
ROWS_PER_STATEMENT = 50
"""Rows per INSERT in :func:`insert_rows`: 50 rows of a statement cost 40% less CPU than 50
statements of a row (1.1M edges: 1.23 against 2.05 s), since each step and reset is per statement;
more rows per statement measured no further gain."""
SORT_THREADS_MAX = 8
"""SQLite's own ceiling on sorter threads (``SQLITE_MAX_WORKER_THREADS``)."""


def insert_rows(
    conn: sqlite3.Connection, insert: str, rows: Iterable[tuple], width: int, conflict: str = "", row: str | None = None
) -> None:
    """``insert VALUES row conflict`` for every row of ``width`` values, in order, many rows a statement.

    ``row`` is the VALUES tuple, ``width`` ``?`` by default; one with constants, such as
    ``(?, ?, 0, '', ?, NULL)``, binds only what differs between rows (binding each value is
    work done while holding the GIL: 3 values a catalog edge instead of 6 measured 0.9-1.0 s
    instead of 1.6-1.9 s for 1.1M edges). A statement of many rows does what the same rows do
    one after another (a later row that conflicts with an earlier one meets it as it would in
    its own statement), so this is ``executemany`` of the one-row statement, cheaper. The rows
    left over after the full statements go one a statement, so only two statements are ever
    prepared (and cached).
    """
    row = row or "(" + ", ".join("?" * width) + ")"
    flat = list(chain.from_iterable(rows))
    step = width * ROWS_PER_STATEMENT
    whole = len(flat) - len(flat) % step
    if whole:
        many = _statement(insert, row, ROWS_PER_STATEMENT, conflict)
        conn.executemany(many, [flat[i : i + step] for i in range(0, whole, step)])
    if whole < len(flat):
        one = _statement(insert, row, 1, conflict)
        conn.executemany(one, [flat[i : i + width] for i in range(whole, len(flat), width)])


@lru_cache(maxsize=32)
def _statement(insert: str, row: str, count: int, conflict: str) -> str:
    return f"{insert} VALUES {', '.join([row] * count)} {conflict}".rstrip()


def has_value_index(conn: sqlite3.Connection) -> bool:
    """Whether ``edges_by_value`` exists (a lookup in the schema table, no scan)."""
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (VALUE_INDEX,)).fetchone()
    return row is not None


def ensure_value_index(conn: sqlite3.Connection) -> None:
    """Create the index when it is missing (a build was killed while it had dropped it).

    Called before the writes that need it; the usual case, index present, costs one lookup.
    """
    if not has_value_index(conn):
        create_value_index(conn)


def create_value_index(conn: sqlite3.Connection) -> None:
    """Sort the edges into the index, through temporary files rather than memory.

    The connection keeps temporary data in memory (``temp_store = MEMORY``, for small sorts);
    for this sort of every edge SQLite's in-memory temporary files measured 1.6x the CPU of
    disk ones at 11M edges (21 s against 13 s) and 585 MB against 146 MB of memory.

    The sort also runs on every core (``PRAGMA threads``: SQLite's sorter merges runs sorted by
    helper threads; 0 by default): 10.0-10.2 s instead of 13.5-15.1 s for 11M edges on two
    cores. The index is the same; only who sorts differs.
    """
    previous = int(conn.execute("PRAGMA temp_store").fetchone()[0])
    previous_threads = int(conn.execute("PRAGMA threads").fetchone()[0])
    conn.execute("PRAGMA temp_store = FILE")
    conn.execute(f"PRAGMA threads = {min(usable_cpus(), SORT_THREADS_MAX)}")
    try:
        conn.execute(VALUE_INDEX_DDL)
    finally:
        conn.execute(f"PRAGMA temp_store = {previous}")
        conn.execute(f"PRAGMA threads = {previous_threads}")


@contextmanager
def value_index_deferred(conn: sqlite3.Connection) -> Iterator[bool]:
    """Drop ``edges_by_value`` while the block runs when the store has no edges; yields whether.

    Only an empty ``edges`` table qualifies: then recreating the index sorts exactly the rows
    the block adds, while for a store that already holds a graph a small rebuild would pay for
    sorting all of it (such a store gets back an index a killed build left out, first). The
    index comes back when the block ends, whether it returned or raised an Exception; after an
    interrupt (Ctrl-C, SystemExit) the store is left without it, so the build stops at once, and
    the next build creates it.
    """
    if conn.execute("SELECT 1 FROM edges LIMIT 1").fetchone() is not None:
        ensure_value_index(conn)
        yield False
        return
    conn.execute(f"DROP INDEX IF EXISTS {VALUE_INDEX}")
    try:
        yield True
    except Exception:
        try:
            create_value_index(conn)
        except sqlite3.Error:  # the failure that stopped the build (disk full) may stop this too
            pass  # the next build creates it; the build's own error is the one to report
        raise
    create_value_index(conn)


def used_values_sql(conn: sqlite3.Connection, codes: Sequence[int]) -> str:
    """A condition on ``v`` (a value_nodes row): some edge of a source in ``codes`` uses it.

    With the index, a probe per value (the fastest form); without it (during a bulk load, or
    in the store of a killed build) one scan of the edges, since a probe per value would scan
    the whole table once per value. Its ``?`` are ``codes``, in order.
    """
    marks = ", ".join("?" * len(codes)) or "NULL"
    if has_value_index(conn):
        return f"EXISTS (SELECT 1 FROM edges e WHERE e.value_pk = v.pk AND e.source IN ({marks}))"
    return f"v.pk IN (SELECT e.value_pk FROM edges e WHERE e.source IN ({marks}))"
