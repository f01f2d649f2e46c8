"""Schema of the embedded store, kept apart so it reads as the graph model it encodes.

(:Product)-[:HAS {source, run_id, raw, score}]->(:Value {attribute, value}) is the
``edges`` table; (:Product)-[:IN_CATEGORY]->(:Category) is ``products.category_pk``;
(:Category)-[:CHILD_OF]->(:Category) is ``categories.parent_pk``;
(:Product)-[:BEHAVIOUR {kind, weight}]->(:Product) is ``behaviour`` (one row per undirected
pair, ``a_pk`` the product with the smaller id).
"""

SCHEMA_VERSION = "2"
"""2 added the ``reviewed`` source (code 3) and the ``reviews`` table. A version-1 store is
migrated when opened writable (:data:`REVIEWS_DDL` is purely additive) and read as it is when
read-only; an older kgmm refuses a version-2 store, since it cannot name source 3."""
READABLE_VERSIONS = ("1", SCHEMA_VERSION)

SOURCE_CODE = {"catalog": 0, "text": 1, "model": 2, "reviewed": 3}
SOURCE_NAME = {code: name for name, code in SOURCE_CODE.items()}

DDL = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS categories (
    pk INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    parent_pk INTEGER REFERENCES categories(pk)
);
CREATE TABLE IF NOT EXISTS products (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    category_pk INTEGER REFERENCES categories(pk),
    image TEXT,
    image_status TEXT NOT NULL,
    image_reason TEXT,
    properties TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS value_nodes (
    pk INTEGER PRIMARY KEY,
    attribute TEXT NOT NULL,
    value TEXT NOT NULL,
    UNIQUE (attribute, value)
);
-- source: 0 catalog, 1 text, 2 model, 3 reviewed; run_id is '' for every source but model.
CREATE TABLE IF NOT EXISTS edges (
    product_pk INTEGER NOT NULL,
    value_pk INTEGER NOT NULL,
    source INTEGER NOT NULL,
    run_id TEXT NOT NULL DEFAULT '',
    raw TEXT,
    score REAL,
    PRIMARY KEY (product_pk, value_pk, source, run_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS edges_by_value ON edges (value_pk);
CREATE INDEX IF NOT EXISTS edges_by_run ON edges (run_id) WHERE run_id != '';
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    model_version TEXT NOT NULL,
    created_at TEXT NOT NULL,
    params TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS builds (
    pk INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    report TEXT NOT NULL
);
"""

BEHAVIOUR_DDL = """
CREATE TABLE IF NOT EXISTS behaviour (
    a_pk INTEGER NOT NULL REFERENCES products(pk),
    b_pk INTEGER NOT NULL REFERENCES products(pk),
    kind TEXT NOT NULL,
    weight REAL NOT NULL,
    PRIMARY KEY (a_pk, b_pk, kind)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS behaviour_by_b ON behaviour (b_pk);
"""
"""Added after schema version 1 shipped, without bumping it: the table is purely additive, so
stores made before it get it when next opened, and an older kgmm still reads a newer store."""

BEHAVIOUR_STAND_IN = """
CREATE TEMP TABLE IF NOT EXISTS behaviour (
    a_pk INTEGER NOT NULL,
    b_pk INTEGER NOT NULL,
    kind TEXT NOT NULL,
    weight REAL NOT NULL,
    PRIMARY KEY (a_pk, b_pk, kind)
) WITHOUT ROWID;
"""
"""An empty, connection-private ``behaviour`` table for a read-only store made before the table
existed: reads see no behaviour edges, and the file is not written."""

REVIEWS_DDL = """
CREATE TABLE IF NOT EXISTS reviews (
    seq INTEGER PRIMARY KEY,
    product_id TEXT NOT NULL,
    attribute TEXT NOT NULL,
    value TEXT NOT NULL,
    decision TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    note TEXT,
    run_id TEXT,
    score REAL,
    raw TEXT,
    catalog_value TEXT,
    UNIQUE (product_id, attribute, value)
);
"""
"""Decisions of reviewers, keyed by the product's catalog id (not its row key), so that they
outlive anything a rebuild does to the product rows; ``seq`` orders them for undo."""

REVIEWS_STAND_IN = REVIEWS_DDL.replace("CREATE TABLE IF NOT EXISTS reviews", "CREATE TEMP TABLE IF NOT EXISTS reviews")
"""An empty, connection-private ``reviews`` table for a read-only version-1 store."""
