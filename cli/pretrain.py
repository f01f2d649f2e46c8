"""`kgmm pretrain`: train the knowledge-aware multimodal model on a store's graph."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from kgmm.errors import KgmmError

from .errors import DEBUG, fail, guarded
from .options import DEFAULT_STORE_VALUE, DatabaseOption, PasswordOption, StoreOption, UserOption, store_spec

console = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def _domain_errors(command):
    """kgmm's own errors (config, data, checkpoint, training) become one line, exit 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except KgmmError as err:
            if DEBUG["on"]:
                raise
            raise fail(str(err)) from None

    return wrapper


class ProgressBar:
    """Rich progress bar with each loss term and the last validation MRR."""

    def __init__(self, quiet: bool) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[terms]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=stderr,
            disable=quiet,
            transient=True,
        )
        self.task: Any = None
        self.stage: Any = None
        self.terms = ""
        self.mrr = ""

    def __enter__(self) -> ProgressBar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def on_start(self, start_step: int, max_steps: int) -> None:
        self.task = self.progress.add_task("pretraining", total=max_steps, completed=start_step, terms="")

    def on_step(self, step: int) -> None:
        self.progress.update(self.task, completed=step)

    def on_stage(self, name: str, step: int, steps: int, loss: float) -> None:
        """A stage before the trainer's steps (stage 0): its own bar, removed when it ends."""
        if self.stage is None:
            self.stage = self.progress.add_task(name, total=steps, terms="")
        self.progress.update(self.stage, completed=step, terms=f"{name} loss {loss:.3f}")
        if step >= steps:
            self.progress.remove_task(self.stage)
            self.stage = None

    def on_log(self, record: dict) -> None:
        from kgmm.training.metrics import loss_terms  # the objectives' terms, whatever they are

        self.terms = "  ".join(f"{k} {record[k]:.3f}" for k in loss_terms(record))
        self.progress.update(self.task, terms=self.terms + self.mrr)

    def on_eval(self, record: dict) -> None:
        self.mrr = f"  val MRR {record['val_mrr']:.3f}"
        self.progress.update(self.task, terms=self.terms + self.mrr)


@guarded
@_domain_errors
def pretrain(
    store: StoreOption = DEFAULT_STORE_VALUE,
    user: UserOption = None,
    password: PasswordOption = None,
    database: DatabaseOption = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config (see examples/tiny.yaml); default: the tiny CPU model.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run directory (default runs/pretrain; with --resume, the checkpoint's run).")] = None,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", min=1, help="Optimizer steps (overrides train.max_steps).")] = None,
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Continue from a checkpoint directory or a run directory (its newest checkpoint).")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", min=1, help="Products per device and micro-batch (overrides train.batch_size).")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps (overrides train.device).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Pretrain the K3M model (text + image + knowledge; MLM, MOM, LPM) on the graph.

    Checkpoints go to RUN/checkpoints, the final model to RUN/model, the best by validation
    MRR to RUN/best, metrics to RUN/metrics.jsonl and RUN/loss.png. Several GPUs: run the
    same command under `torchrun --nproc_per_node N -m cli.main pretrain ...`.
    """
    import warnings

    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*is deprecated", category=FutureWarning)
    from kgmm.config import load_config
    from kgmm.training import pretrain as run_pretrain

    main = os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 talks
    chosen = load_config(config) if config is not None else None
    try:
        with ProgressBar(quiet or not main) as bar:
            result = run_pretrain(
                store_spec(store, user, password, database), chosen, out, max_steps=max_steps, batch_size=batch_size, device=device, resume=resume,
                callbacks=[bar], notes_callback=lambda text: main and stderr.print(f"note: {text}", markup=False),
            )
    except KeyboardInterrupt:
        run = out or (resume if resume is not None and (resume / "checkpoints").is_dir() else None) or Path("runs/pretrain")
        if main and any((run / "checkpoints").glob("step-*[0-9]")):
            stderr.print(f"interrupted; continue from the last checkpoint with: kgmm pretrain --store {store} --resume {run}", markup=False)
        elif main:
            stderr.print("interrupted before the first checkpoint (see train.checkpoint_every); nothing to resume", markup=False)
        raise typer.Exit(130) from None
    if main:
        report(result)


def report(result) -> None:
    """Print what the run did and what the model learned."""
    resumed = f", resumed from step {result.resumed_from}" if result.resumed_from is not None else ""
    early = " (stopped early: validation MRR stopped improving)" if result.stopped_early else ""
    console.print(
        f"Pretrained {result.steps} steps in {result.seconds:.1f} s on {result.device} "
        f"({result.samples_per_second:.1f} products/s{resumed}){early}",
        markup=False,
    )
    if result.first_terms and result.last_terms:
        terms = ", ".join(
            f"{k} {result.first_terms[k]:.3f} -> {result.last_terms[k]:.3f}" for k in result.last_terms if k != "loss" and k in result.first_terms
        )
        console.print(f"  losses (first -> last logged)  {terms}", markup=False)
    link = result.link
    if link:
        console.print(
            f"  link prediction on {link['val_facts']} held-out facts: MRR {link['val_mrr']:.3f}, "
            f"Hits@1 {link['val_hits@1']:.3f}, Hits@10 {link['val_hits@10']:.3f} "
            f"(random {link['random_mrr']:.3f}, most frequent value {link['popular_mrr']:.3f}; best MRR {result.best_mrr:.3f} at step {result.best_step})",
            markup=False,
        )
    if result.completions:
        console.print("  predicted values for attributes these products lack:", markup=False)
        for item in result.completions:
            values = ", ".join(f"{_short(value, 40)} ({prob:.2f})" for value, prob in item.values)
            title = _short(item.title, 50)
            console.print(f"    {title} [{item.product_id[:8]}]  {item.attribute}: {values}", markup=False)
    console.print(f"  model {result.model_dir}   metrics {result.run_dir / 'metrics.jsonl'}   curve {result.run_dir / 'loss.png'}", markup=False)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
