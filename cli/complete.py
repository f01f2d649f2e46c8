"""`kgmm complete` (write a model's predictions as an undoable run) and `kgmm runs`."""

from __future__ import annotations

import csv
import os
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .errors import fail, guarded
from .options import (
    DEFAULT_STORE_VALUE,
    DatabaseOption,
    FormatOption,
    PasswordOption,
    StoreOption,
    TableFormat,
    UserOption,
    store_spec,
)
from .pretrain import _domain_errors, _short
from .render import dump_json, err_console as stderr, render_rows, say


def _progress(quiet: bool) -> Progress:
    return Progress(
        TextColumn("completing"), BarColumn(), MofNCompleteColumn(), TextColumn("products"),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=stderr, disable=quiet, transient=True,
    )


@guarded
@_domain_errors
def complete(
    model: Annotated[Optional[Path], typer.Option("--model", "-m", help="Model directory (e.g. runs/pretrain/model, or DIR/models/k3m/best from kgmm evaluate), or a pretraining run directory (its model/).")] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="Values written per missing attribute.")] = 3,
    min_score: Annotated[float, typer.Option("--min-score", min=0.0, max=1.0, help="Calibrated probability a value needs to be written.")] = 0.1,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be written; write nothing.")] = False,
    undo: Annotated[Optional[str], typer.Option("--undo", metavar="RUN_ID", help="Remove exactly the edges of this run (see `kgmm runs`).")] = None,
    noise: Annotated[bool, typer.Option("--noise/--no-noise", help="Also score existing catalog values and flag implausible ones.")] = True,
    error_rate: Annotated[float, typer.Option("--error-rate", min=1e-6, max=1.0, help="Share of catalog values you assume wrong (an assumption, not a measurement): a value's probability of being wrong scales with it.")] = 0.02,
    flag_min: Annotated[float, typer.Option("--flag-min", min=0.0, max=1.0, help="Probability of being wrong a catalog value needs to be flagged: flags are right about this often when --error-rate holds.")] = 0.8,
    min_coverage: Annotated[Optional[float], typer.Option("--min-coverage", min=0.0, max=1.0, help="An attribute applies to a product when about this share of its category has it (default: the threshold with the best F1 on held-out products).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Products per batch and per write transaction.")] = 64,
    seed: Annotated[int, typer.Option("--seed", help="Seeds the neighbour sampling: same model, store and seed give the same values.")] = 0,
    run_id: Annotated[Optional[str], typer.Option("--run-id", help="Id of the new run (default: run-<time>-<weights hash>); an id already in the store is refused.")] = None,
    replace_run: Annotated[bool, typer.Option("--replace-run", help="With --run-id: delete the existing run of that id (edges and settings) just before writing the new one.")] = False,
    flags_out: Annotated[Optional[Path], typer.Option("--flags", help="Write every suspect catalog value to this CSV file.")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    shard: Annotated[Optional[str], typer.Option("--shard", metavar="I/N", help="Complete only the I-th of N disjoint product ranges (from 0), into the run --run-id that every shard is given; N shards write the same values as one process. Under torchrun, RANK/WORLD_SIZE choose it.")] = None,
    store: StoreOption = DEFAULT_STORE_VALUE,
    user: UserOption = None,
    password: PasswordOption = None,
    database: DatabaseOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Fill in missing attribute values with a trained model and flag suspect catalog values.

    For each product and each attribute common in its category that it lacks, the top-k
    values with a calibrated probability are written as predicted edges (source `model`)
    under a new run; catalog facts are never overwritten. `--undo RUN_ID` removes one run.
    To split the work: `--shard 0/2` and `--shard 1/2` with the same `--run-id` (any order,
    at once or not), or `torchrun --nproc_per_node N -m cli.main complete ...`.
    """
    _check_combination(model, undo, run_id, replace_run)
    part = _shard(shard, undo)
    if flags_out is not None:
        _check_writable(flags_out)  # before the run is written, not after
    with store_spec(store, user, password, database).open() as graph:
        if undo is not None:
            if undo not in {run.run_id for run in graph.list_runs()}:
                raise fail(f"no run {undo!r} in {store}; list them with: kgmm runs --store {store}")
            removed = graph.delete_run(undo)
            say(f"Removed run {undo}: {removed:,} predicted edges deleted from {store}")
            return
        with _signals_interrupt() as caught:
            try:
                if part.split and run_id is None and not dry_run and shard is None:
                    run_id = _torchrun_run_id(part)
                report = _run(graph, model, top_k, min_score, dry_run, noise, error_rate, flag_min, min_coverage,
                              batch_size, seed, run_id, replace_run, device, quiet, part)
            except KeyboardInterrupt:
                say("interrupted: ", caught.get("signal", "SIGINT"), stderr=True)
                raise typer.Exit(128 + int(caught.get("number", signal.SIGINT))) from None
    _summary(report, store)
    if flags_out is not None:
        _write_flags(report.flags, flags_out)


def _check_combination(model: Optional[Path], undo: Optional[str], run_id: Optional[str], replace_run: bool) -> None:
    """Options that cannot go together are refused, never silently ignored."""
    if model is None and undo is None:
        raise fail("--model DIR is required (a directory written by kgmm pretrain or kgmm evaluate), or --undo RUN_ID")
    if model is not None and undo is not None:
        raise fail("--undo removes a run and uses no model: drop --model (to undo and then complete, run two commands)")
    if replace_run and run_id is None:
        raise fail("--replace-run needs --run-id (the id of the run to replace)")


def _shard(text: Optional[str], undo: Optional[str]):
    """``--shard I/N``, else this rank's under torchrun (``RANK`` of ``WORLD_SIZE``), else the whole catalog."""
    from kgmm.completion.shards import parse_shard, shard_from_env

    env = shard_from_env()
    if text is None:
        return env
    if undo is not None:
        raise fail("--shard completes part of a run and --undo removes a whole one: drop --shard")
    if env.split:
        raise fail(f"--shard {text} under torchrun (WORLD_SIZE={env.count}): give one or the other")
    return parse_shard(text)


def _torchrun_run_id(shard) -> str:
    """The run id rank 0 makes (``run-<UTC time>-x<N>``), sent to every rank, so torchrun's ranks
    join one run without a --run-id; the process group (Gloo) lives only for this exchange."""
    from datetime import datetime, timezone

    import torch.distributed as dist

    dist.init_process_group(backend="gloo")
    try:
        chosen = [f"run-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-x{shard.count}" if shard.index == 0 else None]
        dist.broadcast_object_list(chosen, src=0)
    finally:
        dist.destroy_process_group()
    return str(chosen[0])


def _check_writable(path: Path) -> None:
    """``--flags PATH`` can be written: its folder exists and is writable, and it is not a folder."""
    folder = path.parent
    if path.is_dir():
        raise fail(f"--flags {path} is a directory; give a file name such as {path / 'flags.csv'}")
    if not folder.is_dir():
        raise fail(f"--flags {path}: the folder {folder} does not exist; create it first (nothing was written)")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise fail(f"--flags {path}: not writable (nothing was written)")


@contextmanager
def _signals_interrupt() -> Iterator[dict]:
    """SIGTERM raises KeyboardInterrupt like Ctrl-C while completing, so the run is marked partial.

    Yields a dict that names the signal caught (for the message and the exit code 128 + N).
    """
    caught: dict = {}

    def interrupt(number: int, _frame) -> None:
        caught.update(signal=signal.Signals(number).name, number=number)
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield caught
        return
    try:
        yield caught
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(graph, model, top_k, min_score, dry_run, noise, error_rate, flag_min, min_coverage, batch_size, seed, run_id,
         replace_run, device, quiet, shard):
    import warnings

    import torch

    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*is deprecated", category=FutureWarning)
    from kgmm.completion import CompletionOptions, complete_store
    from kgmm.training.distributed import choose_device, default_cpu_threads

    chosen = choose_device(device, int(os.environ.get("LOCAL_RANK", "0")))  # torchrun: one GPU per rank
    if chosen.type == "cpu":
        torch.set_num_threads(default_cpu_threads(shard.count))
    options = CompletionOptions(top_k=top_k, min_score=min_score, batch_size=batch_size, seed=seed, min_coverage=min_coverage,
                                check_noise=noise, error_rate=error_rate, flag_min=flag_min)
    with _progress(quiet) as bar:
        task = bar.add_task("complete", total=None)
        return complete_store(
            graph, model, options, dry_run=dry_run, run_id=run_id, replace_run=replace_run, device=chosen,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            note=lambda text: say("note: ", text, stderr=True), shard=shard,
        )


def _summary(report, store: str) -> None:
    run = report.run
    verb = "Would write" if report.dry_run else "Wrote"
    flagged = f"; flagged {len(report.flags):,} of {report.checked:,} catalog values as suspect" if report.run.params.get("check_noise") else ""
    part = f" (shard {report.shard} of run {run.run_id})" if report.shard else ""
    say(
        f"Completed {report.products:,} products{part} in {report.seconds:.1f} s: {report.predictions:,} values for "
        f"{report.pairs:,} missing (product, attribute) pairs at --min-score {run.params['min_score']}{flagged}"
    )
    _versus_rule(report)
    if report.dry_run:
        say(f"  dry run: nothing written to {store}")
        rows = [{"product_id": p.product_id, "attribute": p.attribute, "value": p.value, "score": p.score, "rank": p.rank} for p in report.sample[:20]]
        render_rows(rows, ("product_id", "attribute", "value", "score", "rank"), "table", title="first predictions")
    else:
        say(f"  {verb} {report.written:,} predicted edges to {store} as run {run.run_id} (model {run.model_version}, "
            f"temperature {report.calibration.temperature:.2f})")
    if report.skipped:
        say(f"  skipped {report.skipped:,} values an earlier run already proposed (they stay under that run)")
    if report.flags:
        top = sorted(report.flags, key=lambda f: (-f.suggestion_score, f.value_score, f.product_id))[:10]
        rows = [{"product_id": f.product_id, "attribute": f.attribute, "catalog value": _short(f.value, 30), "p": f.value_score,
                 "suggestion": _short(f.suggestion, 30), "p(suggestion)": f.suggestion_score} for f in top]
        render_rows(rows, ("product_id", "attribute", "catalog value", "p", "suggestion", "p(suggestion)"), "table",
                    title=f"most confident of {len(report.flags):,} suspect catalog values")
    if not report.dry_run:
        say(f"  undo with: kgmm complete --undo {run.run_id} --store {store}")


def _versus_rule(report, shown: int = 10) -> None:
    """The model's top values next to the most-common-value-in-the-category rule's."""
    top = [p for p in report.sample if p.rank == 1 and (p.product_id, p.attribute) in report.rule]
    if not top:
        return
    agree = sum(report.rule[(p.product_id, p.attribute)] == p.value for p in top)
    rows = [{"product_id": _short(p.product_id, 14), "attribute": _short(p.attribute, 24), "model value": _short(p.value, 28), "p": p.score,
             "rule value": _short(report.rule[(p.product_id, p.attribute)], 28)} for p in top[:shown]]
    render_rows(rows, ("product_id", "attribute", "model value", "p", "rule value"), "table",
                title=f"the model's values next to the most common value in the category (they differ on {len(top) - agree:,} of {len(top):,})")


def _write_flags(flags, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["product_id", "attribute", "catalog_value", "catalog_value_score", "suggestion", "suggestion_score"])
        for f in flags:
            writer.writerow([f.product_id, f.attribute, f.value, f"{f.value_score:.6f}", f.suggestion, f"{f.suggestion_score:.6f}"])
    say(f"wrote {len(flags):,} suspect catalog values to {path}", stderr=True)


@guarded
def runs(
    store: StoreOption = DEFAULT_STORE_VALUE,
    user: UserOption = None,
    password: PasswordOption = None,
    database: DatabaseOption = None,
    format: FormatOption = TableFormat.table,
) -> None:
    """List completion runs, oldest first, with their model and current edge count."""
    with store_spec(store, user, password, database).open() as graph:
        found = graph.list_runs()
    rows = [
        {"run_id": r.run_id, "created_at": r.created_at, "model_version": r.model_version, "status": run_status(r.params),
         "edges": r.edges, "top_k": r.params.get("top_k"), "min_score": r.params.get("min_score"),
         "temperature": r.params.get("temperature"), "params": r.params}
        for r in found
    ]
    if format is TableFormat.json:
        dump_json(rows)
        return
    columns = ("run_id", "created_at", "model_version", "status", "edges", "top_k", "min_score", "temperature")
    render_rows(rows, columns, format.value, title=f"{len(rows)} completion runs in {store}")


def run_status(params: dict) -> str:
    """``partial (N of M products)`` for a run stopped part way (see complete_store), else ``complete``."""
    if params.get("status") != "partial":
        return "complete"
    return f"partial ({params.get('products_done', 0):,} of {params.get('products', 0):,} products)"
