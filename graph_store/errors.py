"""Errors raised by graph stores.

Every error carries a message meant for a person: the CLI prints ``str(err)`` as
one line and exits non-zero, so messages name the store and what to do.
"""

from __future__ import annotations


class StoreError(Exception):
    """A store could not be opened, read or written."""


class StoreUnavailableError(StoreError):
    """The store's server cannot be reached or refused the credentials."""


class ContractError(StoreError, ValueError):
    """A caller passed data that violates the GraphStore contract."""
