"""Backends by URI scheme: the one place that says which class serves which store URI.

``open_store`` (and :meth:`graph_store.StoreSpec.open`) look the URI's scheme up here instead
of branching on it, so a new backend is one module with an opener plus one line in
:data:`BUILTIN`, or one :func:`register_backend` call from code outside graph_store (a plugin,
a test). Openers are named as ``"module:attribute"`` strings and imported on first use, so
importing graph_store never imports a driver the user does not need (and no import cycle runs
through this registry).

An opener is called as ``opener(spec, create=..., **options)`` with the
:class:`~graph_store.StoreSpec` (URI and credentials) and returns an open :class:`GraphStore`;
it raises :class:`StoreError` (never a driver exception) when it cannot.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Union

from .errors import StoreError

if TYPE_CHECKING:
    from .base import GraphStore

Opener = Callable[..., "GraphStore"]
"""``opener(spec: StoreSpec, *, create: bool, **options) -> GraphStore``."""

FILE_SCHEME = ""
"""The scheme of a plain file path (no ``scheme://``): the embedded store."""


@dataclass(frozen=True)
class Backend:
    """A named backend: the URI schemes it serves and its opener.

    ``opener`` is a callable, or ``"module:attribute"`` imported on first use.
    """

    name: str
    schemes: tuple[str, ...]
    opener: Union[str, Opener]

    def load(self) -> Opener:
        """The opener itself (importing its module when it is named by a string)."""
        if not isinstance(self.opener, str):
            return self.opener
        module, _, attribute = self.opener.partition(":")
        try:
            return getattr(importlib.import_module(module), attribute)
        except ImportError as err:
            raise StoreError(
                f"the {self.name} backend ({', '.join(s + '://' for s in self.schemes if s)}) cannot be loaded: "
                f"{err}; reinstall kgmm (pip install -e .) to get its dependencies"
            ) from err


BUILTIN: tuple[Backend, ...] = (
    Backend("sqlite", (FILE_SCHEME,), "graph_store.sqlite_store:open_sqlite"),
    Backend("neo4j", ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc"), "graph_store.neo4j_store:open_neo4j"),
)
"""The backends that ship with kgmm; one line each."""

_REGISTRY: dict[str, Backend] = {scheme: backend for backend in BUILTIN for scheme in backend.schemes}


def register_backend(name: str, schemes: Iterable[str], opener: Union[str, Opener], *, replace: bool = False) -> Backend:
    """Serve ``schemes`` (e.g. ``["memory"]`` for ``memory://...``) with ``opener``.

    Args:
        name: the backend's name, for messages.
        schemes: lower-case URI schemes, without ``://``.
        opener: ``opener(spec, *, create, **options) -> GraphStore`` or ``"module:attribute"``.
        replace: allow taking over a scheme another backend serves (off, so that two
            plugins cannot silently fight over one scheme).

    Raises:
        ValueError: a scheme is malformed, or already served and ``replace`` is False.
    """
    chosen = tuple(schemes)
    for scheme in chosen:
        if scheme != scheme.lower() or "://" in scheme or not scheme.strip():
            raise ValueError(f"a scheme is lower-case and has no '://', got {scheme!r}")
        if scheme in _REGISTRY and not replace:
            raise ValueError(f"scheme {scheme!r} is already served by the {_REGISTRY[scheme].name} backend")
    backend = Backend(name, chosen, opener)
    _REGISTRY.update(dict.fromkeys(chosen, backend))
    return backend


def unregister_backend(name: str) -> None:
    """Forget every scheme served by the backend ``name``; built-in schemes return to their backend."""
    for scheme in [s for s, b in _REGISTRY.items() if b.name == name]:
        del _REGISTRY[scheme]
    for backend in BUILTIN:
        for scheme in backend.schemes:
            _REGISTRY.setdefault(scheme, backend)


def registered() -> dict[str, Backend]:
    """scheme -> backend, a copy (``""`` is a plain file path)."""
    return dict(_REGISTRY)


def scheme_of(uri: str) -> str:
    """The lower-cased scheme of ``uri``, or ``""`` for a plain path (a path never holds ``://``)."""
    scheme, sep, _ = uri.partition("://")
    return scheme.lower() if sep else FILE_SCHEME


def backend_for(uri: str) -> Backend:
    """The backend serving ``uri``'s scheme.

    Raises:
        StoreError: no backend serves that scheme; the message lists those that do.
    """
    scheme = scheme_of(uri)
    backend = _REGISTRY.get(scheme)
    if backend is None:
        known = ", ".join(sorted(f"{s}://" for s in _REGISTRY if s))
        raise StoreError(f"{uri}: unknown store scheme {scheme + '://'!r}; use a file path or one of {known}")
    return backend

