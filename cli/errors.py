"""Domain errors become one line on stderr and a non-zero exit, here and only here."""

from __future__ import annotations

import functools
import sqlite3
from typing import Callable, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from graph_store import StoreError
from kg_builder import CatalogError

F = TypeVar("F", bound=Callable)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)
DEBUG = {"on": False}
EXIT_ERROR = 1
EXIT_REJECTED_ROWS = 3


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    """Print ``error: message`` and return the Exit to raise."""
    stderr.print(Text.assemble(("error: ", "bold red"), message))
    return typer.Exit(code)


def guarded(command: F) -> F:
    """Run a command so that expected failures print one line and tracebacks need --debug."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except (CatalogError, StoreError) as err:
            if DEBUG["on"]:
                raise
            raise fail(str(err)) from None
        except (OSError, sqlite3.Error) as err:
            if DEBUG["on"]:
                raise
            raise fail(f"{type(err).__name__}: {err}") from None
        except Exception as err:  # noqa: BLE001 - the boundary where bugs meet users
            if DEBUG["on"]:
                raise
            raise fail(f"internal error ({type(err).__name__}: {err}); rerun with --debug for the traceback") from None

    return wrapper  # type: ignore[return-value]
