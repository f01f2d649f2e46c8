"""`kgmm build-kg`: catalog -> product knowledge graph."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from graph_store import StoreSpec, open_store
from kg_builder import BuildReport, ColumnMapping, build_graph, open_catalog, open_pairs
from kg_builder.readers import FORMATS, PRESETS
from kg_builder.records import printable

from .errors import EXIT_REJECTED_ROWS, fail, guarded
from .options import DEFAULT_STORE_VALUE, DatabaseOption, PasswordOption, StoreOption, UserOption

console = Console(highlight=False, soft_wrap=True)


def _pairs(items: list[str], flag: str, allow_bare: bool) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep and not allow_bare:
            raise fail(f"{flag} {item!r}: expected ROLE=COLUMN")
        pairs[key.strip()] = (value if sep else key).strip()
    return pairs


@guarded
def build_kg(
    catalog: Annotated[Path, typer.Argument(help="Catalog file: .jsonl, .csv/.tsv, or RDF (.ttl, .nt, .jsonld, .rdf).")],
    format: Annotated[str, typer.Option("--format", help=f"Catalog format: {' | '.join(FORMATS)}.")] = "auto",
    preset: Annotated[Optional[str], typer.Option("--preset", help=f"Named catalog format: {', '.join(sorted(PRESETS))}.")] = None,
    mapping: Annotated[Optional[Path], typer.Option("--mapping", help="YAML column mapping for CSV catalogs.")] = None,
    column: Annotated[list[str], typer.Option("--column", help="CSV role mapping ROLE=COLUMN (roles: id, title, description, category, image); repeatable.")] = [],  # noqa: B006
    attribute: Annotated[list[str], typer.Option("--attribute", help="CSV attribute column COLUMN or COLUMN=NAME; repeatable (other columns become properties).")] = [],  # noqa: B006
    store: StoreOption = DEFAULT_STORE_VALUE,
    user: UserOption = None,
    password: PasswordOption = None,
    database: DatabaseOption = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Products per write transaction.")] = 2000,
    report: Annotated[Optional[Path], typer.Option("--report", help="Write the JSON build report here (default: next to an embedded store).")] = None,
    no_text: Annotated[bool, typer.Option("--no-text", help="Do not extract attribute values from titles and descriptions.")] = False,
    behaviour: Annotated[list[Path], typer.Option("--behaviour", help="CSV of product pairs (product_a, product_b[, weight][, kind]) loaded after the catalog as behaviour edges; repeatable.")] = [],  # noqa: B006
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="Processes that parse, normalise and extract while this one writes (default: one per core, at most 8, for catalogs over 4 MiB; 1 = all in this process). The result is the same whatever the count.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Build (or update) the product knowledge graph from a catalog.

    Rows with problems (in the catalog or a --behaviour pairs file) are reported with file,
    line and field while the rest loads; a problem with a whole file stops before anything
    is written. Exit codes:
    0 loaded, 1 nothing loaded (file or store error), 3 loaded but some rows rejected.
    """
    column_mapping = None
    if mapping is not None or column or attribute:
        base = ColumnMapping.from_yaml(mapping) if mapping is not None else ColumnMapping()
        column_mapping = base.with_overrides(_pairs(column, "--column", False), _pairs(attribute, "--attribute", True))
    source = open_catalog(catalog, format=format, preset=preset, mapping=column_mapping)
    pairs = [open_pairs(path) for path in behaviour]  # a bad pairs file stops before anything is written
    with open_store(store, create=True, user=user, password=password, database=database) as graph, _progress(quiet) as bar:
        tasks: dict[str, int] = {}

        def progress(phase: str, done: int, total: int, rows: int) -> None:
            label = "reading" if phase == "read" else "extracting"
            if phase not in tasks:
                tasks[phase] = bar.add_task(label, total=total)
            bar.update(tasks[phase], completed=done, description=f"{label} ({rows:,} rows)")

        result = build_graph(
            source, graph, batch_size=batch_size, extract_text=not no_text, progress=progress, behaviour=pairs,
            workers=workers,
        )
    report_path = report or _default_report_path(store, database)
    report_path.write_text(json.dumps(result.as_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _summary(result, report_path)
    if result.any_rejected:
        raise typer.Exit(EXIT_REJECTED_ROWS)


def _default_report_path(store: str, database: Optional[str]) -> Path:
    """Next to an embedded store; a server store has no folder, so the working directory, under a
    name that says which server and database it describes (builds into two servers never share
    one ./kgmm-build-report.json). The summary prints the path either way."""
    spec = StoreSpec(store, database=database)
    if spec.is_file:
        return Path(f"{store}.build-report.json")
    return Path(f"kgmm-build-report-{spec.slug()}.json")


def _progress(quiet: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=quiet,
        transient=True,
    )


def _summary(report: BuildReport, report_path: Path) -> None:
    by_source = ", ".join(f"{name} {count:,}" for name, count in sorted(report.triples_by_source.items()))
    reasons = ", ".join(f"{reason}: {n}" for reason, n in report.image_reasons.most_common())
    lines = [
        f"Built {report.store} from {report.catalog} in {report.seconds:.1f} s",
        f"  products    {report.products:>10,}   rows read {report.rows_read:,}, rejected {report.rows_rejected:,}, "
        f"warnings {report.warnings:,}, duplicate ids {report.duplicates:,}",
        f"  triples     {report.triples:>10,}   ({by_source}) at {report.triples_per_second:,.0f} triples/s",
        f"  attributes  {len(report.attributes):>10,}   values {len(report.values):,}",
        f"  images      {report.images_ok:>10,}   ok, {report.images_missing:,} missing" + (f" ({reasons})" if reasons else ""),
    ]
    for pairs in report.behaviour:
        kinds = ", ".join(f"{kind} {n:,}" for kind, n in sorted(pairs.edges_by_kind.items())) or "none"
        lines.append(
            f"  behaviour   {pairs.edges:>10,}   pairs ({kinds}) from {pairs.file}: rows read {pairs.rows_read:,}, "
            f"rejected {pairs.rows_rejected:,}, duplicates {pairs.duplicates:,}"
        )
    lines.append(f"  report      {report_path}")
    for line in lines:
        console.print(line, markup=False)
    _problems(report.problems, report.rows_rejected + report.warnings)
    for pairs in report.behaviour:
        _problems(pairs.problems, pairs.rows_rejected + pairs.warnings)


def _problems(problems: list, total: int) -> None:
    shown = problems[:10]
    if shown:
        console.print(f"  problems (first {len(shown)} of {total:,}):", markup=False)
        for problem in shown:  # catalog text may hold terminal escapes: print it escaped
            console.print(f"    {problem.severity}: {printable(str(problem), 400)}", markup=False)
