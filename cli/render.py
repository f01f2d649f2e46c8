"""Rendering rows as a rich table, JSON or CSV, the same way for every command.

This is the boundary where catalog text meets a terminal. Product titles, values, category
paths, model directory names and run ids are data from whoever wrote the catalog or ran a
command, and an ESC or OSC sequence in them would retitle the window, clear the screen or
plant a hyperlink if printed raw; ``[link=...]`` would do the same through rich's markup. So
everything shown to a person goes through :func:`safe` (control characters written as
``\\xNN``) and is printed as plain :class:`rich.text.Text`, never as markup. JSON stays exact
(every control character is a JSON escape, so a parser reads back the same string) and CSV
stays exact when it goes to a file or a pipe; CSV written straight to a terminal is escaped
like a table.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from typing import Any, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from kg_builder.records import printable

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

_UNBOUNDED = sys.maxsize
_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\u2028\u2029]")  # json.dumps escapes C0 already; DEL and C1 it leaves raw


def safe(value: object) -> str:
    """``value`` as text a terminal shows literally: control characters and bad bytes escaped."""
    return printable("" if value is None else str(value), _UNBOUNDED)


def plain(value: object, style: str = "") -> Text:
    """``value`` escaped (:func:`safe`) as a Text, so rich reads no markup in it."""
    return Text(safe(value), style=style)


def say(*parts: object, stderr: bool = False) -> None:
    """Print a line made of ``parts`` (each escaped, no markup) on stdout or ``err_console``."""
    (err_console if stderr else console).print(Text.assemble(*(plain(p) for p in parts)))



def dump_json(data: Any) -> None:
    """Write ``data`` as indented JSON; every control character escaped, the data exact."""
    text = json.dumps(data, ensure_ascii=False, indent=2)
    sys.stdout.write(_JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n")


def render_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str, title: str | None = None) -> None:
    """Print ``rows`` (dicts keyed by ``columns``) as a table, JSON lines array, or CSV."""
    if fmt == "json":
        dump_json(list(rows))
    elif fmt == "csv":
        _write_csv(rows, columns)
    else:
        table = Table(title=plain(title) if title is not None else None, title_justify="left", show_lines=False)
        for column in columns:
            table.add_column(safe(column), overflow="fold")
        for row in rows:
            table.add_row(*(plain(_cell(row.get(c))) for c in columns))
        console.print(table)


def _write_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    if not sys.stdout.isatty():
        writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    sys.stdout.write("\n".join(safe(line) for line in buffer.getvalue().split("\n")))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
