"""`kgmm review list|accept|reject|keep|undo|export`: an analyst's decisions, from the terminal.

The same decisions as the web page (`kgmm serve`), through the same store contract, so a
decision taken here shows there and the other way round. Attribute names and values are
normalised like the catalog's (`Colour` = `color`), so what a person types matches the store.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from kg_builder.export_common import csv_safe
from kg_builder.records.normalize import normalize_attribute, normalize_value
from kgmm.review import (
    DECISION_COLUMNS,
    PROPOSAL_COLUMNS,
    Filters,
    best_per_pair,
    decide,
    decision_rows,
    open_proposals,
    reviewer_name,
)

from .errors import KgmmCommand, KgmmGroup, fail, guarded
from .options import (
    DEFAULT_STORE_VALUE, DatabaseOption, LimitOption, PasswordOption, StoreOption, TableFormat, UserOption, store_spec,
)
from .render import render_rows, say

review_app = typer.Typer(
    help="Review what kgmm complete proposed: accept or reject values, clear suspect flags, undo, export.",
    no_args_is_help=True,
    cls=KgmmGroup,
)

NoteOption = Annotated[Optional[str], typer.Option("--note", help="Why, kept with the decision.")]
ReviewerOption = Annotated[
    Optional[str],
    typer.Option("--reviewer", envvar="KGMM_REVIEWER", help="Who decides (default: $KGMM_REVIEWER, else the login name).", show_default=False),
]
ProductArg = Annotated[Optional[str], typer.Argument(help="The product's catalog id.", show_default=False)]
AttributeArg = Annotated[Optional[str], typer.Argument(help="Attribute name (case and spacing do not matter).", show_default=False)]
ValueArg = Annotated[Optional[str], typer.Argument(help="The value, as proposed (normalised like the catalog).", show_default=False)]


class ExportFormat(str, Enum):
    csv = "csv"
    jsonl = "jsonl"


def _csv(rows: list[dict], columns: tuple[str, ...], out) -> None:
    """CSV whose cells a spreadsheet shows as text (formula-like cells neutralised, as `kgmm export` does)."""
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: csv_safe(v) for k, v in row.items()} for row in rows)


@review_app.command("list", cls=KgmmCommand)
@guarded
def review_list(
    attribute: Annotated[Optional[str], typer.Option("--attribute", "-a", help="Only proposals of this attribute.")] = None,
    min_score: Annotated[Optional[float], typer.Option("--min-score", min=0.0, max=1.0, help="Only proposals scoring at least this.")] = None,
    max_score: Annotated[Optional[float], typer.Option("--max-score", min=0.0, max=1.0, help="Only proposals scoring at most this.")] = None,
    suspect: Annotated[bool, typer.Option("--suspect", help="Only suggestions made against suspect catalog values.")] = False,
    store: StoreOption = DEFAULT_STORE_VALUE,
    user: UserOption = None,
    password: PasswordOption = None,
    database: DatabaseOption = None,
    format: Annotated[TableFormat, typer.Option("--format", "-f", help="Output format.")] = TableFormat.table,
    limit: LimitOption = None,
) -> None:
    """List open proposals (values kgmm complete wrote and nobody decided on yet), best score first per value."""
    filters = Filters(attribute=normalize_attribute(attribute) if attribute else None, min_score=min_score,
                      max_score=max_score, suspect=True if suspect else None)
    with store_spec(store, user, password, database).open() as graph:
        found = open_proposals(graph, filters)
    rows = [p.as_row() for p in found[:limit]]
    if format is TableFormat.csv:
        _csv(rows, PROPOSAL_COLUMNS, sys.stdout)
        return
    what = "suspect-value suggestions" if suspect else "open proposals"
    render_rows(rows, PROPOSAL_COLUMNS, format.value, title=f"{len(found):,} {what} in {store}")


@review_app.command("accept", cls=KgmmCommand)
@guarded
def review_accept(
    product: ProductArg = None,
    attribute: AttributeArg = None,
    value: ValueArg = None,
    bulk_attribute: Annotated[Optional[str], typer.Option("--attribute", "-a", help="Bulk: accept the best proposal of this attribute for every product ...")] = None,
    min_score: Annotated[Optional[float], typer.Option("--min-score", min=0.0, max=1.0, help="Bulk: ... when it scores at least this.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Bulk: say how many would be accepted; change nothing.")] = False,
    note: NoteOption = None,
    reviewer: ReviewerOption = None,
    store: StoreOption = DEFAULT_STORE_VALUE,
    user: UserOption = None,
    password: PasswordOption = None,
    database: DatabaseOption = None,
) -> None:
    """Accept a value: it becomes a `reviewed` fact. On a suggestion against a suspect catalog value, use the suggestion.

    Bulk: `kgmm review accept --attribute color --min-score 0.95 [--dry-run]` accepts the best plain
    proposal of that attribute of every product scoring at least 0.95 (suggestions are left to a person).
    """
    if product is None and bulk_attribute is None:
        raise fail("give PRODUCT ATTRIBUTE VALUE, or --attribute A --min-score P for a bulk accept")
    if product is not None and (bulk_attribute is not None or min_score is not None or dry_run):
        raise fail("--attribute, --min-score and --dry-run are for a bulk accept: drop them, or drop PRODUCT ATTRIBUTE VALUE")
    if product is None:
        if min_score is None:
            raise fail("a bulk accept needs --min-score (e.g. --min-score 0.95): accepting every proposal unseen is not review")
        _bulk_accept(normalize_attribute(bulk_attribute), min_score, dry_run, note, reviewer, store, user, password, database)
        return
    _decide_one("accept", product, attribute, value, note, reviewer, store, user, password, database)


def _bulk_accept(attribute: str, min_score: float, dry_run: bool, note: Optional[str], reviewer: Optional[str], store: str,
                 user, password, database) -> None:
    with store_spec(store, user, password, database).open() as graph:
        chosen = best_per_pair(open_proposals(graph, Filters(attribute=attribute, min_score=min_score, suspect=False)))
        if dry_run:
            say(f"would accept {len(chosen):,} proposals of {attribute!r} scoring at least {min_score} (dry run: nothing changed)")
            return
        who = reviewer_name(reviewer)
        for proposal in chosen:
            decide(graph, proposal, "accept", who, note or f"bulk accept at --min-score {min_score}")
    say(f"accepted {len(chosen):,} proposals of {attribute!r} scoring at least {min_score} in {store}")


def _decide_one(verdict: str, product: Optional[str], attribute: Optional[str], value: Optional[str], note: Optional[str],
                reviewer: Optional[str], store: str, user, password, database) -> None:
    if attribute is None or value is None:
        raise fail(f"review {verdict} needs PRODUCT ATTRIBUTE VALUE")
    key = (product, normalize_attribute(attribute), normalize_value(value))
    if not key[1] or not key[2]:
        raise fail(f"attribute {attribute!r} or value {value!r} is empty once normalised")
    with store_spec(store, user, password, database).open() as graph:
        if graph.get_product(product) is None:
            raise fail(f"no product {product!r} in {store}")
        proposed = any(p.value == key[2] for p in open_proposals(graph, Filters(attribute=key[1], product_id=product)))
        done = decide(graph, key, verdict, reviewer_name(reviewer), note)
    what = {"accept": "accepted", "reject": "rejected", "keep": "kept the catalog value of", "replace": "used the suggestion for"}
    extra = "" if proposed else " (no open proposal: recorded as given)"
    if done.catalog_value:
        extra += f" (suspect catalog value {done.catalog_value!r})"
    say(f"{what[done.decision]} {product} {key[1]}={key[2]!r}{extra}; undo with: kgmm review undo {product} {key[1]!r} {key[2]!r}")


def _single(verdict: str, what: str, doc: str):
    """A command that takes one decision on PRODUCT ATTRIBUTE VALUE (reject and keep differ only in the verdict)."""

    def command(
        product: ProductArg = None,
        attribute: AttributeArg = None,
        value: ValueArg = None,
        note: NoteOption = None,
        reviewer: ReviewerOption = None,
        store: StoreOption = DEFAULT_STORE_VALUE,
        user: UserOption = None,
        password: PasswordOption = None,
        database: DatabaseOption = None,
    ) -> None:
        if product is None:
            raise fail(f"review {verdict} needs {what}")
        _decide_one(verdict, product, attribute, value, note, reviewer, store, user, password, database)

    command.__doc__ = doc
    command.__name__ = f"review_{verdict}"
    return guarded(command)


review_app.command("reject", cls=KgmmCommand)(
    _single("reject", "PRODUCT ATTRIBUTE VALUE", "Reject a proposed value: it is removed and no later run proposes it for this product.")
)
review_app.command("keep", cls=KgmmCommand)(
    _single("keep", "PRODUCT ATTRIBUTE SUGGESTION",
            "The catalog value is right: VALUE is the suggestion made against it; the flag goes and is not raised again.")
)


@review_app.command("undo", cls=KgmmCommand)
@guarded
def review_undo(
    product: ProductArg = None,
    attribute: AttributeArg = None,
    value: ValueArg = None,
    store: StoreOption = DEFAULT_STORE_VALUE,
    user: UserOption = None,
    password: PasswordOption = None,
    database: DatabaseOption = None,
) -> None:
    """Take back a decision (the latest one when no PRODUCT ATTRIBUTE VALUE is given) and what it did."""
    with store_spec(store, user, password, database).open() as graph:
        if product is None:
            decided = graph.reviews()
            if not decided:
                raise fail(f"no decisions to undo in {store}")
            key = decided[-1].key
        else:
            if attribute is None or value is None:
                raise fail("review undo takes PRODUCT ATTRIBUTE VALUE, or nothing for the latest decision")
            key = (product, normalize_attribute(attribute), normalize_value(value))
        undone = graph.undo_review(*key)
    if undone is None:
        raise fail(f"no decision on {key[0]} {key[1]}={key[2]!r} in {store}; list them with: kgmm review export --store {store}")
    say(f"undid {undone.decision} of {key[0]} {key[1]}={key[2]!r} (by {undone.reviewer or 'someone'} at {undone.decided_at})")


@review_app.command("export", cls=KgmmCommand)
@guarded
def review_export(
    format: Annotated[ExportFormat, typer.Option("--format", "-f", help="csv (formula-like cells neutralised) or jsonl.")] = ExportFormat.csv,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output file; standard output when omitted.")] = None,
    store: StoreOption = DEFAULT_STORE_VALUE,
    user: UserOption = None,
    password: PasswordOption = None,
    database: DatabaseOption = None,
) -> None:
    """Every decision taken, in order: who, when, what, on which proposal of which run, and why."""
    with store_spec(store, user, password, database).open() as graph:
        rows = decision_rows(graph.reviews())
    buffer = io.StringIO()
    if format is ExportFormat.csv:
        _csv(rows, DECISION_COLUMNS, buffer)
    else:
        buffer.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    if out is None:
        sys.stdout.write(buffer.getvalue())
        return
    try:
        out.write_text(buffer.getvalue(), encoding="utf-8")
    except OSError as err:
        raise fail(f"--out {out}: {err.strerror or err}") from None
    say(f"wrote {len(rows):,} decisions to {out}", stderr=True)
