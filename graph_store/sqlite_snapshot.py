"""Reading the embedded store's graph as a :class:`~graph_store.snapshot.Snapshot`, fast.

Why a module of its own: the snapshot is the one read whose cost grows with the whole catalog
(11M edges at 1M products). Read as named rows (product id, attribute, value: three strings a
row, then a dictionary lookup each) it took 87 s at 1M products; here the edges come back as
integer keys, a chunk at a time into numpy, and are mapped to positions by lookup arrays:
12 s. The result is the snapshot :func:`~graph_store.snapshot.build_snapshot` makes from the
named rows (a contract test compares them).
"""

from __future__ import annotations

import sqlite3
from itertools import chain

import numpy as np

from .snapshot import SOURCE_CODES, ProductColumnsBuilder, Snapshot, assemble_snapshot, behaviour_arrays
from .sqlite_schema import SOURCE_NAME

EDGE_CHUNK = 1 << 18
"""Edges fetched from SQLite at a time."""
PRODUCT_CHUNK = 1 << 14
"""Product rows fetched at a time."""


def read_snapshot(conn: sqlite3.Connection, where: str, params: list, behaviour_select: str) -> Snapshot:
    """The snapshot of the edges ``where`` selects (an SQL condition on ``edges e``), every
    product, every category and the behaviour edges ``behaviour_select`` reads."""
    paths = dict(conn.execute("SELECT pk, path FROM categories"))
    # in id order (SQLite compares text as UTF-8 bytes: the order of Python's str), a chunk of rows
    # at a time into columns, so no Python string a text is kept
    cursor = conn.execute(
        "SELECT p.id, p.title, p.description, CASE WHEN p.image_status = 'ok' THEN p.image END, p.category_pk, p.pk "
        "FROM products p ORDER BY p.id"
    )
    columns, pks = ProductColumnsBuilder(), []
    while rows := cursor.fetchmany(PRODUCT_CHUNK):
        columns.extend([(pid, title, description, image, paths.get(category)) for pid, title, description, image, category, _ in rows])
        pks.append(np.fromiter((row[5] for row in rows), np.int64, len(rows)))
    products = columns.finish()
    product_pks = np.concatenate(pks) if pks else np.zeros(0, np.int64)
    categories = list(paths.values())
    value_rows = conn.execute("SELECT pk, attribute, value FROM value_nodes").fetchall()
    value_pks = np.fromiter((row[0] for row in value_rows), np.int64, len(value_rows))
    source_code = np.array([SOURCE_CODES[SOURCE_NAME[code]] for code in range(len(SOURCE_NAME))], dtype=np.int8)
    # the packing's bounds from the edges themselves (both keys are indexed): an edge naming a
    # value the table lacks must not spill into the product part of its number
    top_product, top_value = (conn.execute(f"SELECT MAX({key}) FROM edges").fetchone()[0] for key in ("product_pk", "value_pk"))
    product, value, source, score = _edge_numbers(conn, where, params, (top_product or 0) + 1, (top_value or 0) + 1)
    behaviour = conn.execute(behaviour_select).fetchall()
    pairs = behaviour_arrays(behaviour, {pid: i for i, pid in enumerate(products.ids)} if behaviour else {})
    product, value = _positions(product_pks, product), _positions(value_pks, value)
    found = (product >= 0) & (value >= 0)  # as the join of named rows did: an edge whose product or value is gone is not read
    used, value = _used(value[found], len(value_rows))  # only the values a selected edge has
    return assemble_snapshot(
        products, categories, [(value_rows[i][1], value_rows[i][2]) for i in used.tolist()],
        product[found], value.reshape(-1), source_code[source[found]], score[found], pairs,
    )


def _edge_numbers(conn: sqlite3.Connection, where: str, params: list, products: int, values: int) -> tuple[np.ndarray, ...]:
    """(product pk, value pk, source code, score) arrays of the edges ``where`` selects. An edge
    without a score (every catalog and text fact) comes back as one number,
    ``(product * values + value) * 4 + source``: one Python int a row instead of a tuple of
    four (9 s instead of 14 for 11M edges); one with a score (a model's, a review's) as four."""

    def fetched(sql: str, dtype, width: int) -> np.ndarray:
        # flattened by itertools into np.fromiter: 1.2-3 s less than np.array on the list of row
        # tuples for 11M rows, which inspects every tuple as a sequence
        cursor, parts = conn.execute(sql, params), []
        while chunk := cursor.fetchmany(EDGE_CHUNK):
            parts.append(np.fromiter(chain.from_iterable(chunk), dtype, len(chunk) * width).reshape(-1, width))
        return np.concatenate(parts) if parts else np.zeros((0, width), dtype)

    select = " FROM edges e WHERE (" + where + ") AND e.score IS "
    scored = fetched("SELECT e.product_pk, e.value_pk, e.source, e.score" + select + "NOT NULL", np.float64, 4)
    if products * values * 4 < 2**62:
        packed = fetched(f"SELECT (e.product_pk * {values} + e.value_pk) * 4 + e.source" + select + "NULL", np.int64, 1).ravel()
        unscored = (packed // 4 // values, packed // 4 % values, packed % 4)
    else:  # keys too large to pack into an int64
        rows = fetched("SELECT e.product_pk, e.value_pk, e.source, 1.0" + select + "NULL", np.float64, 4)
        unscored = tuple(rows[:, i].astype(np.int64) for i in range(3))
    return (*(np.concatenate([part, scored[:, i].astype(np.int64)]) for i, part in enumerate(unscored)),
            np.concatenate([np.ones(unscored[0].size, np.float32), scored[:, 3].astype(np.float32)]))


def _positions(pks: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """The position of each of ``keys`` in ``pks`` (primary keys), -1 for a key not there."""
    at = np.full(int(max(pks.max(initial=-1), keys.max(initial=-1))) + 1, -1, dtype=np.int64)
    at[pks] = np.arange(pks.size)
    return at[keys]


def _used(positions: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(positions, return_inverse=True)`` for positions in ``[0, size)``, by a count
    and a lookup table instead of a sort (0.1 s instead of 3 s for 11M edges)."""
    used = np.flatnonzero(np.bincount(positions, minlength=size))
    renumber = np.full(max(size, 1), -1, dtype=np.int64)
    renumber[used] = np.arange(used.size)
    return used, renumber[positions]
