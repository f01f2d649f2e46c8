"""Rendering rows as a rich table, JSON or CSV, the same way for every command."""

from __future__ import annotations

import csv
import json
import sys
from typing import Any, Sequence

from rich.console import Console
from rich.table import Table

console = Console(highlight=False)


def render_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str, title: str | None = None) -> None:
    """Print ``rows`` (dicts keyed by ``columns``) as a table, JSON lines array, or CSV."""
    if fmt == "json":
        sys.stdout.write(json.dumps(list(rows), ensure_ascii=False, indent=2) + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    else:
        table = Table(title=title, title_justify="left", show_lines=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(_cell(row.get(c)) for c in columns))
        console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
