"""``complete_store``: a model's predictions written back to a graph store as one undoable run.

It streams over the store's products in batches; each batch's predicted values (and the
values suggested in place of suspect catalog values) are written in one
``write_predictions`` call, i.e. one transaction, under one run id. The store keeps catalog
facts untouched (a prediction the catalog already asserts is skipped by the contract), and
``GraphStore.delete_run`` removes exactly the run's edges again. Only the GraphStore
contract is used, so it works on every backend.

A run id names one run for good: asking for an id the store already holds is refused before
anything is written (its edges and settings would otherwise mix with the new run's), unless
``replace_run`` says to delete that run first. A run stopped part way (Ctrl-C, SIGTERM, an
error) is rewritten with ``params["status"] = "partial"`` and how many products it covered,
so ``kgmm runs`` shows it as such and ``kgmm complete --undo`` removes it like any other.

A run may be split over processes (``shard``, :mod:`.shards`): each completes a batch-aligned
share of the products into the one run every shard is given, joining it only when the store's
run record has the shard's model and settings; N shards write what one process writes.

Probabilities are calibrated with the temperature stored next to the model
(``calibration.json``, written by ``kgmm evaluate``). A model from ``kgmm pretrain`` has
none yet: when the store still holds the graph the model was trained on, the temperature
is fitted on the pretraining run's own validation facts (which that model never trained
on) and saved next to the model; otherwise probabilities are left uncalibrated, and the
report says so.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch

from graph_store import AttributeEdge, GraphStore, RunInfo, Snapshot, StoreSpec, opened
from graph_store.reviews import FLAG_KEY, unwanted

from ..data.split import split_edges, training_snapshot
from ..data.views import ViewData
from ..errors import DataError
from ..ranking import Calibration, RankingTask, calibrate, fact_scores, load_calibration
from ..model import K3M
from .alignment import align_snapshot
from .engine import Completer, CompletionOptions, NoiseFlag, Prediction
from .feedback import refit_on_reviews
from .shards import Shard

SAMPLE = 1000  # predictions kept in the report (a dry run prints them)
PARTIAL = "partial"  # params["status"] of a run stopped part way


class RunExistsError(DataError):
    """The run id asked for is already in the store (and replacing it was not asked for)."""


@dataclass
class CompletionReport:
    """What a completion run did."""

    run: RunInfo
    dry_run: bool
    products: int = 0
    pairs: int = 0
    predictions: int = 0
    checked: int = 0
    written: int = 0
    skipped: int = 0  # predictions an earlier run already proposed (kept there, not written twice)
    seconds: float = 0.0
    calibration: Calibration = field(default_factory=Calibration)
    notes: list[str] = field(default_factory=list)
    sample: list[Prediction] = field(default_factory=list)
    rule: dict[tuple[str, str], str] = field(default_factory=dict)  # (product id, attribute) of the sample -> the rule's value
    flags: list[NoiseFlag] = field(default_factory=list)
    shard: str = ""  # "i/N" when this process completed one shard of the run, else ""


def model_version(model_dir: Path) -> str:
    """``<directory name>@<first 12 hex of the weights' SHA-256>``: names the exact weights."""
    digest = hashlib.sha256()
    with open(model_dir / "model.safetensors", "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"{model_dir.name}@{digest.hexdigest()[:12]}"


def new_run_id(store: GraphStore, version: str, now: datetime) -> str:
    """``run-YYYYMMDD-HHMMSS-<weights hash>``, with a suffix if that id is taken."""
    base = f"run-{now:%Y%m%d-%H%M%S}-{version.rsplit('@', 1)[-1][:6]}"
    taken = {run.run_id for run in store.list_runs()}
    run_id, n = base, 1
    while run_id in taken:
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def resolve_calibration(model: K3M, model_dir: Path, snapshot: Snapshot, device: torch.device, note: Callable[[str], None]) -> Calibration:
    """The stored calibration, else one fitted on the pretraining run's validation facts."""
    stored = load_calibration(model_dir)
    if stored is not None:
        return stored
    if model.snapshot_hash != snapshot.content_hash():
        note("the store's graph is not the one this model was trained on and the model has no calibration.json: "
             "probabilities are uncalibrated (kgmm evaluate writes one)")
        return Calibration()
    train = model.config.train
    split = split_edges(snapshot, train.val_fraction, train.max_val, train.seed, train.min_val)
    if split.num_val == 0:
        note("no validation facts to calibrate on: probabilities are uncalibrated")
        return Calibration()
    data = ViewData(training_snapshot(snapshot, split.train_mask), model.tokenizer, model.config, model.num_patches)
    task = RankingTask.build(snapshot, split.val)
    scores = fact_scores(model, data, task, device, train.eval_batch_size)
    calibration = calibrate(scores, task.truth, f"{len(task)} validation facts of the pretraining run", snapshot.content_hash())
    try:
        calibration.save(model_dir)
        where = f", saved to {model_dir / 'calibration.json'}"
    except OSError:
        where = " (model directory not writable: not saved)"
    note(f"calibrated on {calibration.facts} held-out validation facts of the pretraining run: temperature "
         f"{calibration.temperature:.2f} (their log-loss {calibration.nll_before:.2f} -> {calibration.nll_after:.2f}){where}")
    return calibration


def complete_store(store: GraphStore | StoreSpec | str, model_dir: str | Path, options: CompletionOptions = CompletionOptions(),
                   **kwargs) -> CompletionReport:
    """:func:`complete` on a store given like every kgmm entry point takes one: an open
    :class:`GraphStore`, a :class:`StoreSpec` (URI and credentials) or a path / URI string."""
    with opened(store) as graph:
        return complete(graph, model_dir, options, **kwargs)


def complete(
    store: GraphStore,
    model_dir: str | Path,
    options: CompletionOptions = CompletionOptions(),
    *,
    dry_run: bool = False,
    run_id: str | None = None,
    replace_run: bool = False,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
    note: Callable[[str], None] | None = None,
    shard: Shard = Shard(),
) -> CompletionReport:
    """Predict values for the store's products with the model in ``model_dir`` and write them.

    Args:
        store: an open graph store (any backend).
        model_dir: a directory written by ``save_pretrained`` (``runs/pretrain/model``).
        options: what to predict and keep.
        dry_run: compute and report, write nothing.
        run_id: the run's id (default: made from the time and the weights' hash).
        replace_run: when ``run_id`` is already in the store, delete that run (just before
            the first write) instead of refusing.
        device: where the model runs.
        progress: called with (products done, products) after each batch.
        note: called with remarks for the user (calibration, dropped facts) as they arise.
        shard: complete only this shard's products (:mod:`.shards`), joining the run
            ``run_id`` that the other shards write too; it needs ``run_id``, and
            ``replace_run`` is refused (another shard may already be writing the run).

    Raises:
        CheckpointError: the model directory is missing or corrupt.
        RunExistsError: ``run_id`` is taken and ``replace_run`` is off (nothing written); for a
            shard: the run ``run_id`` exists with another model or other settings.
        DataError: the store holds no products.
        StoreError: the store cannot be read or written.
    """
    start = time.perf_counter()
    notes: list[str] = []

    def remark(text: str) -> None:
        notes.append(text)
        if note:
            note(text)

    check_shard(shard, run_id, replace_run, dry_run)
    existing = None if shard.split else check_run_id(store, run_id, replace_run)
    model_dir = resolve_model_dir(Path(model_dir))
    device = torch.device(device)
    model = K3M.from_pretrained(model_dir, map_location=device).eval()
    snapshot = store.snapshot(include_predicted=False)
    if snapshot.num_products == 0:
        raise DataError(f"{store.uri} holds no products; build a graph first: kgmm build-kg CATALOG --store {store.uri}")
    calibration = resolve_calibration(model, model_dir, snapshot, device, remark)
    if calibration.warning:
        remark(f"calibration: {calibration.warning}")
    aligned, dropped = align_snapshot(snapshot, model.id_maps)
    if dropped:
        remark(f"{dropped:,} facts have values this model has never seen; they are left out of its input")
    completer = Completer(model, aligned, calibration, options, device)
    refitted, said = refit_on_reviews(completer, store.reviews(), calibration)
    if said:
        remark(said)
    if refitted is not None:  # reviewers' decisions are the labels closest to what this run proposes
        calibration = completer.calibration = refitted
    applicability = completer.applicability
    if applicability.measured:
        m = applicability.measured
        remark(f"an attribute applies where about {m['threshold']:.0%} of its category has it (measured on "
               f"{m['held_out_products']} held-out products: precision {m['precision']:.2f}, recall {m['recall']:.2f})")
    version = model_version(model_dir)
    now = datetime.now(timezone.utc)
    run = RunInfo(
        run_id=run_id or new_run_id(store, version, now),
        model_version=version,
        created_at=now.isoformat(timespec="seconds"),
        params={"model": str(model_dir), "temperature": round(calibration.temperature, 6), "calibrated_on": calibration.fitted_on,
                "top_k": options.top_k,
                "min_score": options.min_score, "seed": options.seed, "min_coverage": applicability.min_coverage,
                "applicability": applicability.measured or "given",
                "check_noise": options.check_noise, "error_rate": options.error_rate,
                "flag_min": options.flag_min, **({"shards": shard.count} if shard.split else {})},
    )
    report = CompletionReport(run=run, dry_run=dry_run, calibration=calibration, notes=notes, shard=str(shard) if shard.split else "")
    proposed = earlier_proposals(store, run.run_id if shard.split else None if existing is None else existing.run_id)
    closed = reviewed_closed(store)
    if not dry_run:
        if existing is not None:
            store.delete_run(existing.run_id)
            remark(f"replaced run {existing.run_id} ({existing.edges:,} edges, model {existing.model_version})")
        store.write_predictions(run, [])  # the run exists from now on, so a killed run can be undone
        if shard.split:
            join_run(store, run, shard)
    starts = shard.batch_starts(aligned.num_products, options.batch_size)
    total = min(starts.stop, aligned.num_products) - starts.start if starts else 0
    try:
        _write_batches(store, run, completer, options, report, starts, total, dry_run, progress, proposed, closed)
    except BaseException:  # Ctrl-C, SIGTERM turned into an exception, a failing batch: say what is left
        if dry_run:
            raise
        if shard.split:  # rewriting the run would race with the other shards' writes
            remark(f"shard {shard} of run {run.run_id} stopped after {report.products:,} of its {total:,} products: rerun the "
                   f"same command to finish it (it rewrites this shard's values), or undo the whole run: kgmm complete --undo {run.run_id}")
        else:
            mark_partial(store, run, report.products, total, remark)
        raise
    if options.check_noise and "detector" in vars(completer):  # learnt when the first check needed it
        learnt, planted = completer.detector.examples
        remark(f"noise flags: learnt from {learnt:,} catalog values and {planted:,} wrong ones planted in their place; "
               f"P(wrong) assumes {options.error_rate:.1%} of values wrong (--error-rate), a flag needs {options.flag_min:.2f}"
               if completer.detector.model is not None else
               f"noise flags: too few checked values ({learnt:,}) to learn what a wrong one looks like; nothing flagged")
    report.rule = rule_values(aligned, report.sample)
    report.seconds = time.perf_counter() - start
    return report


def rule_values(snapshot: Snapshot, sample: list[Prediction]) -> dict[tuple[str, str], str]:
    """What the most-common-value-in-the-category rule would fill in for the sampled pairs,
    so a user sees the model's values next to the baseline a data team would write first."""
    from ..ranking.rule import MajorityPerCategory

    if not sample:
        return {}
    rule = MajorityPerCategory(snapshot)
    index = {pid: i for i, pid in enumerate(snapshot.product_ids)}
    attributes = {name: i for i, name in enumerate(snapshot.attributes)}
    out = {}
    for prediction in sample:
        key = (prediction.product_id, prediction.attribute)
        if key not in out:
            value = rule.best(index[prediction.product_id], attributes[prediction.attribute])
            out[key] = snapshot.values[value][1] if value is not None else ""
    return out


def check_shard(shard: Shard, run_id: str | None, replace_run: bool, dry_run: bool) -> None:
    """A shard writes into a run the other shards share: it must be named, and not replaced
    (one shard deleting it would delete what the others have already written)."""
    if not shard.split or dry_run:
        return
    if run_id is None:
        raise DataError(f"shard {shard} needs --run-id: every shard of one run is given the same id, and the first to start creates it")
    if replace_run:
        raise DataError(f"shard {shard}: --replace-run cannot go with --shard (it would delete what other shards wrote); "
                        f"undo the old run first: kgmm complete --undo {run_id}")


def join_run(store: GraphStore, run: RunInfo, shard: Shard) -> None:
    """Check that the run in the store (created by whichever shard came first) was made with this
    shard's model and settings, so values of different models or options never share a run.

    Raises:
        RunExistsError: it was not (nothing of this shard is written).
    """
    found = next((r for r in store.list_runs() if r.run_id == run.run_id), None)
    if found is None:  # deleted between our write and this read: an undo raced the shards
        raise RunExistsError(f"run {run.run_id!r} vanished from {store.uri} while shard {shard} joined it (undone?)")
    ours = json.loads(json.dumps(dict(run.params), sort_keys=True))
    if found.model_version != run.model_version or dict(found.params) != ours:
        differ = sorted(k for k in set(ours) | set(found.params) if ours.get(k) != found.params.get(k))
        what = f"model {found.model_version}" if found.model_version != run.model_version else f"settings {', '.join(differ)}"
        raise RunExistsError(
            f"shard {shard}: run {run.run_id!r} in {store.uri} was made with {what} different from this shard's; "
            f"every shard of a run needs the same model and options (or choose another --run-id)")


def check_run_id(store: GraphStore, run_id: str | None, replace_run: bool) -> RunInfo | None:
    """The run ``run_id`` names if it exists and may be replaced; None if the id is free.

    Raises:
        RunExistsError: it exists and ``replace_run`` is off. Checked before the model is
            loaded, so nothing is written and no time is spent.
    """
    if run_id is None:
        return None
    found = next((r for r in store.list_runs() if r.run_id == run_id), None)
    if found is not None and not replace_run:
        raise RunExistsError(
            f"run {run_id!r} already exists in {store.uri} ({found.edges:,} edges, model {found.model_version}, "
            f"{found.created_at}); choose another --run-id, or pass --replace-run to delete it and write this one"
        )
    return found


def mark_partial(store: GraphStore, run: RunInfo, done: int, total: int, remark: Callable[[str], None]) -> None:
    """Rewrite ``run`` as partial (``params["status"]``, products covered), keeping its edges.

    A run's settings are fixed when it is created (``write_predictions`` keeps the first
    ones), so its edges so far are read back, the run deleted and written again, marked, in
    one transaction. Best effort: if the store fails too, the run stays as it was, listed
    and undoable, and the original error is the one raised.
    """
    try:
        kept = [e for e in store.iter_triples(["model"]) if e.run_id == run.run_id]
        marked = replace(run, params={**run.params, "status": PARTIAL, "products_done": done, "products": total})
        store.delete_run(run.run_id)
        store.write_predictions(marked, kept)
    except Exception:  # noqa: BLE001 - the first failure is the one to report
        remark(f"run {run.run_id} stopped after {done:,} of {total:,} products and could not be marked partial; "
               f"undo it with: kgmm complete --undo {run.run_id}")
        return
    remark(f"run {run.run_id} stopped after {done:,} of {total:,} products: its {len(kept):,} edges are kept, marked partial; "
           f"undo it with: kgmm complete --undo {run.run_id}")


def resolve_model_dir(path: Path) -> Path:
    """``path`` itself when it holds a saved model, else the final model of the run directory
    ``path`` (``path/model``, as ``kgmm pretrain`` writes it); missing ones fail when loaded."""
    if not (path / "model.safetensors").is_file() and (path / "model" / "model.safetensors").is_file():
        return path / "model"
    return path


def earlier_proposals(store: GraphStore, replaced_run: str | None) -> set[tuple[str, str, str]]:
    """(product, attribute, value) of every prediction already in the store, but those of
    ``replaced_run``: a rerun skips them instead of proposing the same value twice."""
    if not any(run.run_id != replaced_run for run in store.list_runs()):  # none: no pass over the store's edges (20 s at 1M)
        return set()
    return {(e.product_id, e.attribute, e.value) for e in store.iter_triples(["model"]) if e.run_id != replaced_run}


def reviewed_closed(store: GraphStore) -> set[tuple[str, str, str]]:
    """What reviewers closed (:func:`graph_store.reviews.unwanted`): a value decided on is not proposed
    again, a catalog value said to be right is not flagged again. The store refuses to write them
    anyway; leaving them out here keeps the run's counts and its flags file honest."""
    return set().union(*(unwanted(r) for r in store.reviews()))


def _write_batches(store: GraphStore, run: RunInfo, completer: Completer, options: CompletionOptions, report: CompletionReport,
                   starts: range, total: int, dry_run: bool, progress: Callable[[int, int], None] | None,
                   proposed: set[tuple[str, str, str]] = frozenset(), closed: set[tuple[str, str, str]] = frozenset()) -> None:
    """Predict and write the batches starting at ``starts`` (``total`` products); ``report``
    counts what is done as it goes."""
    end = completer.snapshot.num_products
    for start_index in starts:
        products = list(range(start_index, min(start_index + options.batch_size, end)))
        predictions, pairs = completer.predictions(products)
        flags, checked = completer.flags(products) if options.check_noise else ([], 0)
        if closed:
            predictions = [p for p in predictions if (p.product_id, p.attribute, p.value) not in closed]
            flags = [f for f in flags if (f.product_id, f.attribute, FLAG_KEY + f.value) not in closed
                     and (f.product_id, f.attribute, f.suggestion) not in closed]
        report.products += len(products)
        report.pairs += pairs
        report.predictions += len(predictions)
        report.checked += checked
        report.flags.extend(flags)
        report.sample.extend(predictions[: max(0, SAMPLE - len(report.sample))])
        new = edges(run.run_id, predictions, flags, options.min_score)
        fresh = [e for e in new if (e.product_id, e.attribute, e.value) not in proposed]
        report.skipped += len(new) - len(fresh)
        if not dry_run:
            report.written += store.write_predictions(run, fresh)
        if progress:
            progress(report.products, total)


def edges(run_id: str, predictions: list[Prediction], flags: list[NoiseFlag], min_score: float) -> list[AttributeEdge]:
    """Predicted edges: one per prediction, and one per suggestion replacing a suspect value."""
    out = [AttributeEdge(p.product_id, p.attribute, p.value, "model", None, round(p.score, 6), run_id) for p in predictions]
    out += [
        AttributeEdge(f.product_id, f.attribute, f.suggestion, "model", f.note(), round(f.suggestion_score, 6), run_id)
        for f in flags
        if f.suggestion_score >= min_score
    ]
    return out
