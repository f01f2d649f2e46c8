"""Opening SQLite files safely, and SQLite's errors in words a person can act on.

Kept apart from :mod:`graph_store.sqlite_store` (the graph operations) because it is about
files and permissions: whether a path can be written (read-only media, permissions), how to
read a store without writing a byte to it, and which :class:`StoreError` each
``sqlite3.Error`` becomes, so that no driver exception leaves graph_store.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from .errors import ForeignStoreError, StoreError, StoreReadOnlyError, StoreUnavailableError


def connect(path: Path) -> sqlite3.Connection:
    """A read-write connection; nothing is written until the schema check has passed."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in ("busy_timeout = 30000", "synchronous = NORMAL", "cache_size = -65536", "temp_store = MEMORY"):
        conn.execute(f"PRAGMA {pragma}")
    return conn


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that never writes: ``mode=ro``; when SQLite cannot even create the WAL
    index next to the file (read-only media), ``immutable=1``, which reads the file as is."""
    base = "file:" + quote(os.path.abspath(path))
    last: sqlite3.Error | None = None
    for flags in ("?mode=ro", "?mode=ro&immutable=1"):
        conn = sqlite3.connect(base + flags, uri=True, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError as err:  # "unable to open database file": try immutable
            conn.close()
            last = err
    assert last is not None
    raise last


def writable(path: Path) -> bool:
    """Whether SQLite can write ``path``: the file and its folder (journal, WAL and index files)."""
    folder = path.parent if str(path.parent) else Path(".")
    return os.access(path, os.W_OK) and os.access(folder, os.W_OK)


def store_error(path: Path, action: str, err: sqlite3.Error, read_only: bool) -> StoreError:
    """One line for a person, by what went wrong rather than by SQLite's wording alone."""
    text = str(err)
    lowered = text.lower()
    if "readonly" in lowered or "read-only" in lowered:
        return StoreReadOnlyError(f"store {path} is read-only: {action} needs a writable store ({text})")
    if "locked" in lowered or "busy" in lowered:
        return StoreUnavailableError(
            f"store {path} is locked by another process (waited 30 s while {action}); retry when it has finished"
        )
    if "not a database" in lowered or "malformed" in lowered or "encrypted" in lowered:
        return ForeignStoreError(f"{path} is not a readable kgmm store ({text}); it was left untouched")
    if "disk is full" in lowered or "disk i/o" in lowered:
        return StoreError(f"store {path}: {text} while {action} (a write in progress is rolled back whole)")
    if "unable to open" in lowered:
        hint = " (read-only media?)" if read_only else ""
        return StoreError(f"cannot open store {path}{hint}: {text}")
    if isinstance(err, sqlite3.ProgrammingError) and "closed" in lowered:
        return StoreError(f"store {path} is closed: open it again before {action}")
    return StoreError(f"store {path} failed while {action}: {text}")


def check_creatable(path: Path) -> None:
    """Fail early, in words, when a new store cannot be made at ``path`` (SQLite would only
    say "unable to open database file")."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise StoreError(f"cannot create store {path}: directory {parent} does not exist")
    probe = parent / f".kgmm-write-test-{os.getpid()}"
    try:
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise StoreError(f"cannot create store {path}: directory {parent} is not writable ({err.strerror})") from None
