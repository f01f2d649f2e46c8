"""Domain errors become one line on stderr and a non-zero exit, here and only here."""

from __future__ import annotations

import functools
from typing import Annotated, Any, Callable, TypeVar

import typer
import typer.main
from rich.console import Console
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

from graph_store import StoreError
from kg_builder import CatalogError

from .render import safe

F = TypeVar("F", bound=Callable)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)
DEBUG = {"on": False}
EXIT_ERROR = 1
EXIT_REJECTED_ROWS = 3


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    """Print ``error: message`` and return the Exit to raise."""
    shown = "\n".join(safe(line) for line in message.split("\n"))  # a value in a message never reaches the terminal raw
    stderr.print(Text.assemble(("error: ", "bold red"), shown))
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
        except OSError as err:  # graph_store turns driver errors into StoreError: no sqlite3 here
            if DEBUG["on"]:
                raise
            raise fail(f"{type(err).__name__}: {err}") from None
        except Exception as err:  # noqa: BLE001 - the boundary where bugs meet users
            if DEBUG["on"]:
                raise
            raise fail(f"internal error ({type(err).__name__}: {err}); rerun with --debug for the traceback") from None

    return wrapper  # type: ignore[return-value]


def _debug_on(value: bool) -> None:
    if value:
        DEBUG["on"] = True


def _debug_option() -> Any:
    """A ``--debug`` option for any command, built by typer itself from a one-option probe.

    Its value is not passed to the command (``expose_value`` off): the callback sets
    :data:`DEBUG`, after the root callback has set it from ``kgmm --debug``.
    """
    probe = typer.Typer(add_completion=False)

    @probe.command()
    def _probe(
        debug: Annotated[bool, typer.Option("--debug", callback=_debug_on, help="Show full tracebacks on errors.")] = False,
    ) -> None:
        """Never run."""

    option = typer.main.get_command(probe).params[0]
    option.expose_value = False
    return option


def _as_flag(param: Any) -> Any:
    """A boolean flag shows no ``<bool>`` type in --help (typer's default for flags): it takes no value."""
    if getattr(param, "is_flag", False) and param.metavar is None:
        param.metavar = ""
    return param


class _FlagsAsFlags:
    """Mixed into a typer command or group: its boolean flags, --help included, show no ``<bool>``."""

    params: list

    def _mark_flags(self) -> None:
        for param in self.params:
            _as_flag(param)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        return _as_flag(option) if option is not None else None


class KgmmCommand(_FlagsAsFlags, TyperCommand):
    """Every kgmm command: ``--debug`` works after the command's name too, and flags read as flags in --help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not any(getattr(p, "name", None) == "debug" for p in self.params):
            self.params.append(_debug_option())
        self._mark_flags()


class KgmmGroup(_FlagsAsFlags, TyperGroup):
    """``kgmm`` and ``kgmm query``: flags (--debug, --version, --help) read as flags in --help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mark_flags()
