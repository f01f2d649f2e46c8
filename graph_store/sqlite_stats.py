"""Statistics of the embedded store (``kgmm stats``): counts read with one query each.

Kept apart from :mod:`graph_store.sqlite_store`, which holds the graph operations, to keep that
module readable in one sitting.
"""

from __future__ import annotations

import sqlite3

from .models import StoreStats
from .sqlite_bulk import used_values_sql
from .sqlite_schema import SOURCE_NAME

ALL_SOURCES = tuple(SOURCE_NAME)


def read_stats(conn: sqlite3.Connection, top: int) -> StoreStats:
    """The store's :class:`StoreStats` (the ``top`` most used attributes and root categories)."""
    one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
    stats = StoreStats(
        products=one("SELECT COUNT(*) FROM products"),
        values=conn.execute(
            f"SELECT COUNT(*) FROM value_nodes v WHERE {used_values_sql(conn, ALL_SOURCES)}", ALL_SOURCES
        ).fetchone()[0],
        categories=one("SELECT COUNT(*) FROM categories"),
        products_with_title=one("SELECT COUNT(*) FROM products WHERE title != ''"),
        products_with_description=one("SELECT COUNT(*) FROM products WHERE description != ''"),
        products_with_image=one("SELECT COUNT(*) FROM products WHERE image_status = 'ok'"),
        images_missing=one("SELECT COUNT(*) FROM products WHERE image_status = 'missing'"),
        runs=one("SELECT COUNT(*) FROM runs"),
    )
    stats.edges_by_source = {
        SOURCE_NAME[s]: n for s, n in conn.execute("SELECT source, COUNT(*) FROM edges GROUP BY source")
    }
    stats.behaviour_edges = dict(conn.execute("SELECT kind, COUNT(*) FROM behaviour GROUP BY kind"))
    per_attribute = conn.execute(
        "SELECT v.attribute, COUNT(DISTINCT e.product_pk), COUNT(DISTINCT e.value_pk) "
        "FROM edges e JOIN value_nodes v ON v.pk = e.value_pk GROUP BY v.attribute ORDER BY 2 DESC, 1"
    ).fetchall()
    stats.attributes = len(per_attribute)
    stats.top_attributes = [tuple(r) for r in per_attribute[:top]]
    stats.top_categories = [
        tuple(r)
        for r in conn.execute(
            "SELECT CASE WHEN instr(c.path, ' > ') > 0 THEN substr(c.path, 1, instr(c.path, ' > ') - 1) "
            "ELSE c.path END AS root, COUNT(*) FROM products p JOIN categories c ON c.pk = p.category_pk "
            "GROUP BY root ORDER BY 2 DESC, 1 LIMIT ?",
            (top,),
        )
    ]
    return stats
