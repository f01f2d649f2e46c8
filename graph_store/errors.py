"""Errors raised by graph stores.

Every error carries a message meant for a person: the CLI prints ``str(err)`` as
one line and exits non-zero, so messages name the store and what to do. No driver
exception (``sqlite3.Error``, ``neo4j.exceptions.*``) leaves graph_store: each backend
turns them into these classes, so callers catch one family whatever the backend.
"""

from __future__ import annotations


class StoreError(Exception):
    """A store could not be opened, read or written."""


class StoreUnavailableError(StoreError):
    """The store's server cannot be reached, refused the credentials, or the store is locked."""


class StoreReadOnlyError(StoreError):
    """A write was asked of a store that can only be read (read-only media or permissions)."""


class ForeignStoreError(StoreError):
    """The location holds data that is not a kgmm store; it is refused before anything is written."""


class ContractError(StoreError, ValueError):
    """A caller passed data that violates the GraphStore contract."""
