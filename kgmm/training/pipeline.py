"""``pretrain``: store -> snapshot -> tokenizer, split, model, batches -> trained model.

The one function behind ``kgmm pretrain``; it returns a :class:`PretrainResult` that says
what the model learned. Run directory::

    config.yaml  metrics.jsonl  loss.png  summary.json  startup.json (seconds and memory to the first step)
    checkpoints/step-000100/     save_pretrained files + training_state.pt
    best/                        model with the best validation MRR
    model/                       the final model
"""

from __future__ import annotations

import json
import random
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graph_store import GraphStore, Snapshot, StoreLike, opened

from ..config import Config, save_config
from ..data.batches import PretrainData
from ..data.split import split_edges, training_snapshot
from ..errors import CheckpointError, ConfigError, DataError
from ..model import K3M
from ..model.factory import new_model
from ..model.io import read_meta
from ..ranking import Applicability, RankingTask, Validator, example_gaps
from ..ranking.scoring import top_values
from ..text import load_tokenizer, train_wordpiece
from . import distributed
from .behaviour import run_behaviour_stage
from .evidence_stage import run_evidence_stage
from .checkpoint import (
    RunLock,
    TrainingState,
    load_training_state,
    resolve_checkpoint,
    restore_rng,
    run_directory_of,
)
from .metrics import MetricsLog
from .optim import build_optimizer, build_scheduler
from .plot import plot_losses
from .startup import StartupClock
from .trainer import Callback, Trainer


@dataclass
class Completion:
    """The model's top values for an attribute a product lacks (a taste of ``kgmm complete``)."""

    product_id: str
    title: str
    attribute: str
    values: list[tuple[str, float]]  # (value, probability among the attribute's values)


@dataclass
class PretrainResult:
    """What a run did and learned."""

    run_dir: Path
    model_dir: Path
    steps: int
    seconds: float
    samples_per_second: float
    device: str
    resumed_from: int | None
    stopped_early: bool
    first_terms: dict[str, float]
    last_terms: dict[str, float]
    link: dict[str, float]
    best_mrr: float
    best_step: int
    completions: list[Completion] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    link_alone: dict[str, dict[str, float]] = field(default_factory=dict)  # each modality alone (MBSD's measure)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["run_dir"], data["model_dir"] = str(self.run_dir), str(self.model_dir)
        return data


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def load_snapshot(store: GraphStore | StoreLike) -> Snapshot:
    """The store's snapshot; an empty graph is a DataError.

    ``store`` is a :class:`graph_store.StoreSpec` (URI and credentials), a path or URI string,
    or an open store (left open).
    """
    with opened(store) as graph:
        snapshot = graph.snapshot()
    if snapshot.num_products == 0:
        raise DataError(f"{store} holds no products; build a graph first: kgmm build-kg CATALOG --store {store}")
    return snapshot


def pretrain(
    store: GraphStore | StoreLike,
    config: Config | None = None,
    out_dir: str | Path | None = None,
    *,
    max_steps: int | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    resume: str | Path | None = None,
    callbacks: list[Callback] | None = None,
    notes_callback=None,
) -> PretrainResult:
    """Pretrain K3M on the graph in ``store``.

    Args:
        store: a :class:`graph_store.StoreSpec` (URI plus Neo4j credentials), a path or URI
            string (credentials from ``NEO4J_*``), or an open store.
        config: the config; with ``resume``, if given it must match the checkpoint's.
        out_dir: run directory (default ``runs/pretrain``; with ``resume``, the checkpoint's run).
        max_steps, batch_size, device: overrides of ``train.*``.
        resume: a checkpoint directory or a run directory (its newest checkpoint).
        callbacks: progress hooks.
        notes_callback: called with each note (no images, no facts, ...) as it arises.

    Raises:
        DataError, ConfigError, CheckpointError, TrainingError: one-line problems for the user.
    """
    notes: list[str] = []

    def note(text: str) -> None:
        notes.append(text)
        if notes_callback:
            notes_callback(text)

    clock = StartupClock()
    clock.phases["imports_s"] = round(time.time() - clock.process_start, 3)  # process start -> here: Python and the imports
    checkpoint = resolve_checkpoint(resume) if resume else None
    payload = None
    if checkpoint is not None:
        saved = Config.from_dict(read_meta(checkpoint)["config"], source=f"{checkpoint}/config.json")
        payload = load_training_state(checkpoint)
        if config is not None and config.hash(training_only=True) != saved.hash(training_only=True):
            raise CheckpointError(f"--config differs from the config of {checkpoint} (only run-length settings may change on resume)")
        config = saved
    config = config or Config()
    overrides = {k: v for k, v in (("max_steps", max_steps), ("batch_size", batch_size), ("device", device)) if v is not None}
    if overrides:
        config = config.replace("train", **overrides)
    if checkpoint is not None and payload["config_hash"] != config.hash(training_only=True):
        raise CheckpointError(f"{checkpoint}: its training state belongs to another config (--batch-size cannot change on resume)")

    with clock.phase("snapshot_s"):
        snapshot = load_snapshot(store)
    config = config.sized(snapshot.num_products)  # train.max_steps 0: epochs over this catalog
    with clock.phase("snapshot_hash_s"):
        snapshot_hash = snapshot.content_hash()
    if checkpoint is not None and payload["snapshot_hash"] != snapshot_hash:
        raise CheckpointError(
            f"{checkpoint} was trained on graph snapshot {str(payload['snapshot_hash'])[:12]} but {store} now holds "
            f"{snapshot_hash[:12]}; resume on the same graph or start a new run"
        )
    if not snapshot.has_image().any():
        note(f"no product in {store} has an image: training with the image branch masked (no MOM loss)")
    if snapshot.num_edges == 0:
        note(f"{store} has no (attribute, value) facts: link prediction and validation are off")

    threads = torch.get_num_threads()
    runtime = distributed.setup(config.train.device, config.train.precision, config.train.cpu_threads)
    try:
        run_dir = Path(out_dir) if out_dir else (run_directory_of(checkpoint) if checkpoint else Path("runs/pretrain"))
        return _run(store, snapshot, snapshot_hash, config, run_dir, runtime, checkpoint, payload, callbacks, note, notes, clock)
    finally:
        distributed.teardown()
        torch.set_num_threads(threads)


def _run(store, snapshot, snapshot_hash, config, run_dir, runtime, checkpoint, payload, callbacks, note, notes,
         clock: StartupClock) -> PretrainResult:
    seed_everything(config.train.seed)
    with clock.phase("split_s"):
        split = split_edges(snapshot, config.train.val_fraction, config.train.max_val, config.train.seed, config.train.min_val)
    if checkpoint is not None:
        with clock.phase("model_s"):
            model = K3M.from_pretrained(checkpoint)
        tokenizer = model.tokenizer
    else:
        with clock.phase("tokenizer_s"):
            tokenizer = _tokenizer(snapshot, config)
        with clock.phase("model_s"):
            model = new_model(config, snapshot, tokenizer, snapshot_hash, training_snapshot(snapshot, split.train_mask))
    model.to(runtime.device)

    with clock.phase("batch_tables_s"):
        data = PretrainData(snapshot, split, tokenizer, config, model.num_patches)
    with clock.phase("validation_task_s"):
        evaluator = Validator(data, RankingTask.build(snapshot, split.val)) if split.num_val else None
    if evaluator is None and snapshot.num_edges:
        note("no fact could be held out for validation (no attribute has two values): no MRR, no early stopping")

    optimizer = build_optimizer(model, config.train)
    scheduler = build_scheduler(optimizer, config.train)
    state = TrainingState()
    if payload is not None:
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        state = TrainingState(**payload["state"])
        state.stopped_early = False
        restore_rng(payload["rng"])
    resumed_from = state.step if checkpoint is not None else None

    with RunLock(run_dir) if runtime.is_main else nullcontext():
        if runtime.is_main:
            save_config(config, run_dir / "config.yaml")
        log = MetricsLog(run_dir / "metrics.jsonl", resume_step=resumed_from, enabled=runtime.is_main)
        clock.path = run_dir / "startup.json" if runtime.is_main else None
        if checkpoint is None and config.train.behaviour_steps:  # stage 1 runs once, before the first checkpoint
            # --max-steps promises a short run: stage 1 never takes more steps than stage 2 may
            steps = min(config.train.behaviour_steps, config.train.max_steps)
            with clock.phase("stage1_s"):
                stage1 = run_behaviour_stage(model, data, config.replace("train", behaviour_steps=steps), runtime.device, log,
                                             runtime.autocast() if runtime.bf16 else None)
            if stage1.steps:
                capped = f" (train.behaviour_steps {config.train.behaviour_steps} capped at max_steps)" if steps < config.train.behaviour_steps else ""
                note(f"stage 1: {stage1.steps} behaviour contrastive steps{capped} over {data.snapshot.num_behaviour_edges:,} pairs in "
                     f"{stage1.seconds:.1f} s, loss {stage1.first_loss:.3f} -> {stage1.last_loss:.3f}")
            else:
                note("train.behaviour_steps is set but the graph has fewer than two behaviour pairs: stage 1 skipped")
        if checkpoint is None:  # stage 0 runs once, before the first checkpoint
            with clock.phase("stage0_s"):
                stage0 = run_evidence_stage(model, data, config, runtime.device, log, _stage_progress("stage 0", clock, callbacks))
            if stage0.steps:
                sample = f", {stage0.facts:,} of {stage0.offered:,} (train.evidence_facts)" if stage0.facts < stage0.offered else ""
                passes = config.train.evidence_epochs
                note(f"stage 0: the evidence terms alone, {stage0.steps} steps ({passes} pass{'es' * (passes != 1)} over the training "
                     f"facts{sample}) in {stage0.seconds:.1f} s, loss {stage0.first_loss:.3f} -> {stage0.last_loss:.3f}")
        fitted = checkpoint is None and stage0.steps > 0
        trainer = Trainer(model, data, config, runtime, run_dir, optimizer, scheduler, state, log, evaluator, [clock, *(callbacks or [])],
                          validate_first=fitted)
        fit = trainer.fit()
        return _finish(model, data, config, runtime, run_dir, fit, evaluator, resumed_from, notes)


def _stage_progress(name: str, clock: StartupClock, callbacks):
    """What a stage before the trainer calls after each step: the start-up clock's mark at its
    first, and the callbacks' ``on_stage(name, step, steps, loss)`` where they have one (the
    CLI's progress bar: stage 0 takes minutes on a large catalog)."""
    hooks = [hook for hook in (getattr(c, "on_stage", None) for c in callbacks or []) if hook is not None]

    def on_step(step: int, steps: int, loss: float) -> None:
        clock.mark("first_evidence_step")
        for hook in hooks:
            hook(name, step, steps, loss)

    return on_step


def _finish(model, data, config, runtime, run_dir, fit, evaluator, resumed_from, notes) -> PretrainResult:
    """Final evaluation, completions, the saved model, the curve and the summary."""
    model_dir = run_dir / "model"
    link: dict[str, float] = {}
    completions: list[Completion] = []
    autocast = runtime.autocast() if runtime.bf16 else None
    link_alone: dict[str, dict[str, float]] = {}
    if evaluator is not None:
        link = evaluator.evaluate(model, runtime.device, config.train.eval_batch_size, autocast).as_dict()
        for name in model.stream_names:  # how well each modality alone predicts (distillation's target)
            alone = evaluator.evaluate(model, runtime.device, config.train.eval_batch_size, autocast, (name,))
            link_alone[name] = {"val_mrr": alone.mrr, "val_hits@1": alone.hits1, "val_hits@10": alone.hits10}
    completions = examples(model, data, runtime.device, config.train.seed, autocast)
    result = PretrainResult(
        run_dir=run_dir, model_dir=model_dir, steps=fit.state.step, seconds=fit.state.seconds,
        samples_per_second=fit.samples_per_second, device=runtime.describe(), resumed_from=resumed_from,
        stopped_early=fit.state.stopped_early, first_terms=fit.first_terms, last_terms=fit.last_terms, link=link,
        best_mrr=max(fit.state.best_mrr, 0.0), best_step=fit.state.best_step, completions=completions, notes=notes,
        link_alone=link_alone,
    )
    if runtime.is_main:
        model.save_pretrained(model_dir)
        plot_losses(run_dir / "metrics.jsonl", run_dir / "loss.png")
        (run_dir / "summary.json").write_text(json.dumps(result.to_json(), indent=2, ensure_ascii=False), encoding="utf-8")
    return result


def examples(model, data: PretrainData, device: torch.device, seed: int, autocast=None, count: int = 3) -> list[Completion]:
    """The model's top values for ``count`` attributes that apply to a product that lacks them."""
    snapshot = data.snapshot
    pairs = example_gaps(Applicability(snapshot), count, seed)
    ranked = top_values(model, data, pairs, device, autocast=autocast)
    return [Completion(snapshot.product_ids[p], snapshot.titles[p], snapshot.attributes[a],
                       [(snapshot.values[v][1], prob) for v, prob in best]) for (p, a), best in zip(pairs, ranked)]


def _tokenizer(snapshot: Snapshot, config: Config):
    if config.text.encoder == "pretrained":
        try:
            return load_tokenizer(config.text.pretrained)
        except CheckpointError as err:
            raise ConfigError(f"text.pretrained: {err}") from None
    return train_wordpiece(tokenizer_sample(snapshot), config.text.vocab_size)


TOKENIZER_PRODUCTS = 20_000
"""Products whose title and description train the WordPiece vocabulary (an evenly spaced sample
beyond this). Why: counting words is a Python pass over the text, 19 s at 100k products; a
3,000-piece vocabulary is settled long before 20k products, and a smaller catalog is read whole,
so its vocabulary is the one it always had."""


def tokenizer_sample(snapshot: Snapshot, limit: int = TOKENIZER_PRODUCTS) -> list[str]:
    """Titles and descriptions of at most ``limit`` products, every ``ceil(P / limit)``-th by index:
    deterministic, and spread over the whole (id-sorted) catalog."""
    stride = max(1, -(-snapshot.num_products // limit))
    return [text for p in range(0, snapshot.num_products, stride) for text in (snapshot.titles[p], snapshot.descriptions[p])]


def load_for_inference(directory: str | Path, device: str = "cpu") -> K3M:
    """A saved model (``model/``, ``best/`` or a checkpoint) in eval mode."""
    model = K3M.from_pretrained(directory, map_location=device)
    return model.eval()
