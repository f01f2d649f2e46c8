"""Training and scoring the K3M model and its single-modality / ablated variants.

Every variant is the same architecture, config and step budget, trained on the same
training graph (held-out triples removed) and read through a :class:`ModalityView`. The
model kept is the one with the best validation MRR (the trainer's ``best/``), the usual
early-stopping choice; validation triples are ranked exactly like the test triples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from graph_store import Snapshot

from ..config import Config
from ..model import K3M
from ..model.factory import new_model
from ..data.views import ModalityView, ViewData
from ..ranking import RankingTask, Validator
from ..training import distributed
from ..training.behaviour import run_behaviour_stage
from ..training.evidence_stage import run_evidence_stage
from ..training.checkpoint import TrainingState
from ..training.metrics import MetricsLog
from ..training.optim import build_optimizer, build_scheduler
from ..training.pipeline import seed_everything
from ..training.plot import plot_losses
from ..training.trainer import Callback, Trainer

VARIANTS: dict[str, ModalityView] = {
    "k3m": ModalityView(text=True, image=True, knowledge=True),
    "k3m-no-knowledge": ModalityView(text=True, image=True, knowledge=False),
    "text-only": ModalityView(text=True, image=False, knowledge=False),
    "image-only": ModalityView(text=False, image=True, knowledge=False),
}
"""Model name -> what it reads. ``k3m`` is the full model."""


@dataclass
class TrainedVariant:
    """A trained variant with the tables it reads."""

    name: str
    view: ModalityView
    model: K3M
    data: ViewData
    run_dir: Path
    steps: int
    seconds: float
    best_step: int
    best_val_mrr: float
    extra: dict = field(default_factory=dict)  # stage 1 (behaviour) figures, when it ran


def train_variant(
    name: str,
    train_snapshot: Snapshot,
    full_snapshot: Snapshot,
    tokenizer,
    config: Config,
    run_dir: Path,
    val_task: RankingTask,
    callbacks: list[Callback] | None = None,
) -> TrainedVariant:
    """Train variant ``name`` (a key of :data:`VARIANTS`) and load its best model.

    Args:
        train_snapshot: the training graph; its edges never include a held-out triple.
        full_snapshot: the whole graph, for the id maps and the hash saved with the model.
        tokenizer: shared by all variants (learnt from titles and descriptions only).
        config: the run's config (the same for every variant).
        run_dir: where checkpoints, ``best/``, ``metrics.jsonl`` and ``loss.png`` go.
        val_task: validation triples, for model selection.
        callbacks: progress hooks.
    """
    view = VARIANTS[name]
    threads = torch.get_num_threads()
    runtime = distributed.setup(config.train.device, config.train.precision, config.train.cpu_threads)
    try:
        seed_everything(config.train.seed)
        model = new_model(config, full_snapshot, tokenizer, train_snapshot=train_snapshot).to(runtime.device)
        data = ViewData(train_snapshot, tokenizer, config, model.num_patches, view)
        optimizer = build_optimizer(model, config.train)
        scheduler = build_scheduler(optimizer, config.train)
        run_dir.mkdir(parents=True, exist_ok=True)
        log = MetricsLog(run_dir / "metrics.jsonl")
        stage1 = run_behaviour_stage(model, data, config, runtime.device, log, runtime.autocast() if runtime.bf16 else None)
        stage0 = run_evidence_stage(model, data, config, runtime.device, log)
        trainer = Trainer(model, data, config, runtime, run_dir, optimizer, scheduler, TrainingState(), log,
                          Validator(data, val_task) if len(val_task) else None, callbacks, validate_first=stage0.steps > 0)
        fit = trainer.fit()
        model.save_pretrained(run_dir / "model")
        plot_losses(run_dir / "metrics.jsonl", run_dir / "loss.png")
        best_dir = run_dir / "best"
        best = K3M.from_pretrained(best_dir if best_dir.is_dir() else run_dir / "model", map_location=runtime.device).eval()
    finally:
        distributed.teardown()
        torch.set_num_threads(threads)
    return TrainedVariant(name, view, best, data, best_dir if best_dir.is_dir() else run_dir / "model", fit.state.step,
                          fit.state.seconds + stage1.seconds + stage0.seconds, fit.state.best_step, max(fit.state.best_mrr, 0.0),
                          {"behaviour_steps": stage1.steps, "behaviour_loss": [stage1.first_loss, stage1.last_loss]} if stage1.steps else {})
