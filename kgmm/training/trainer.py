"""The training loop: micro-batches by position, accumulation, clipping, eval, checkpoints.

Micro-batch ``m`` of a run is built from the seed and ``m`` alone (product order of its
epoch, every random choice inside it), so resuming at step ``s`` only needs to start the
loader at micro-batch ``s * grad_accumulation``; with the optimizer, scheduler and global
RNG states restored, the resumed run takes the very same steps as an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ..config import Config
from ..data.batches import PretrainData, batch_generator
from ..errors import TrainingError
from ..objectives import ObjectiveStep
from .checkpoint import (
    CHECKPOINTS,
    TrainingState,
    prune_checkpoints,
    save_checkpoint,
    save_model_atomically,
)
from .blend import fit_blend
from .distributed import Runtime, barrier
from .metrics import MetricsLog


class Callback(Protocol):
    """Progress reporting hooks (the CLI's progress bar implements them)."""

    def on_start(self, start_step: int, max_steps: int) -> None: ...

    def on_step(self, step: int) -> None: ...

    def on_log(self, record: dict[str, Any]) -> None: ...

    def on_eval(self, record: dict[str, Any]) -> None: ...


class StepBatches(Dataset):
    """Item ``m`` is micro-batch ``m`` of the run, for this process's rank.

    Every epoch is a fresh permutation of the products (seeded by the epoch); global batch
    ``j`` of an epoch covers positions ``[j * B * W, (j + 1) * B * W)`` (wrapping around), and
    rank ``r`` takes its ``r``-th slice of ``B``.
    """

    def __init__(self, data: PretrainData, batch_size: int, runtime: Runtime, seed: int) -> None:
        self.data, self.seed = data, seed
        self.world, self.rank = runtime.world_size, runtime.rank
        products = data.num_products
        self.batch_size = min(batch_size, max(1, products // self.world))
        self.per_epoch = max(1, math.ceil(products / (self.batch_size * self.world)))
        self._order: tuple[int, Tensor] | None = None

    def __len__(self) -> int:
        return 2**62

    def order(self, epoch: int) -> Tensor:
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, torch.randperm(self.data.num_products, generator=batch_generator(self.seed, 1, epoch)))
        return self._order[1]

    def __getitem__(self, micro: int):
        epoch, position = divmod(micro, self.per_epoch)
        order = self.order(epoch)
        start = (position * self.world + self.rank) * self.batch_size
        indices = order[(start + torch.arange(self.batch_size)) % order.numel()]
        return self.data.build(indices, batch_generator(self.seed, 0, micro, self.rank), train=True)


def _worker_init(worker_id: int) -> None:
    torch.set_num_threads(1)  # workers build batches; the main process owns the cores


@dataclass
class FitResult:
    """How a ``fit`` ended."""

    state: TrainingState
    first_terms: dict[str, float]
    last_terms: dict[str, float]
    samples_per_second: float


class Trainer:
    """Runs optimisation for one model on one process (DDP-wrapped when distributed).

    Args:
        model: the K3M model, already on ``runtime.device``.
        data: batch tables.
        config: the run's config.
        runtime: device, rank, precision.
        run_dir: where checkpoints, ``best/`` and logs go.
        optimizer, scheduler: built (and restored when resuming) by the caller.
        state: counters to continue from.
        log: the metrics log.
        evaluator: validation ranking (:class:`kgmm.ranking.Validator`), or None without validation facts.
        callbacks: progress hooks.
        validate_first: validate before the first step of a fresh run (when the model already
            learnt something, e.g. in stage 0), so early stopping can keep that start.
    """

    def __init__(self, model, data: PretrainData, config: Config, runtime: Runtime, run_dir: Path, optimizer, scheduler,
                 state: TrainingState, log: MetricsLog, evaluator, callbacks: list[Callback] | None = None,
                 validate_first: bool = False) -> None:
        self.model, self.data, self.config, self.runtime = model, data, config, runtime
        self.run_dir, self.optimizer, self.scheduler = run_dir, optimizer, scheduler
        self.state, self.log, self.evaluator = state, log, evaluator
        self.callbacks = callbacks or []
        self.validate_first = validate_first
        self.config_hash = config.hash(training_only=True)
        self.step_module = ObjectiveStep(model, config)  # model + objectives: what DDP wraps
        self.terms = self.step_module.terms  # the loss terms logged, whatever the objectives are

    def _loader(self, start_micro: int, end_micro: int) -> DataLoader:
        t = self.config.train
        dataset = StepBatches(self.data, t.batch_size, self.runtime, t.seed)
        self.samples_per_step = dataset.batch_size * t.grad_accumulation * self.runtime.world_size
        workers = t.num_workers
        return DataLoader(
            dataset,
            batch_size=None,
            sampler=range(start_micro, end_micro),
            num_workers=workers,
            pin_memory=self.runtime.device.type == "cuda",
            worker_init_fn=_worker_init if workers else None,
            prefetch_factor=4 if workers else None,
            generator=torch.Generator(),  # keeps the loader from drawing on the global RNG
        )

    def fit(self) -> FitResult:
        """Train from ``state.step`` to ``train.max_steps`` (or an early stop)."""
        t, rt, state = self.config.train, self.runtime, self.state
        model = self.step_module
        if rt.distributed:
            from torch.nn.parallel import DistributedDataParallel

            model = DistributedDataParallel(self.step_module, device_ids=[rt.device.index] if rt.device.type == "cuda" else None,
                                            find_unused_parameters=True)
        model.train()
        accum = t.grad_accumulation
        loader = iter(self._loader(state.step * accum, t.max_steps * accum))
        autocast = rt.autocast()
        for callback in self.callbacks:
            callback.on_start(state.step, t.max_steps)
        sums: dict[str, Tensor] = {}
        counts: dict[str, int] = defaultdict(int)
        first_terms: dict[str, float] = {}
        last_terms: dict[str, float] = {}
        window_start, window_steps = time.perf_counter(), 0
        first_step = True
        if self.validate_first and self.evaluator is not None and state.step == 0 and t.max_steps > 0:
            # the model as it enters training (stage 0 fitted) is a candidate too: when
            # training only makes validation worse, best/ keeps the start
            try:
                self._evaluate()
            except Exception as err:
                if _is_out_of_memory(err):
                    raise TrainingError(f"out of memory validating before the first step (train.eval_batch_size {t.eval_batch_size} "
                                        f"on {rt.device.type}); try a smaller train.eval_batch_size") from None
                raise
        while state.step < t.max_steps and not state.stopped_early:
            step_start = time.perf_counter()
            try:
                grad_norm = self._step(model, loader, accum, autocast, sums, counts)
            except Exception as err:
                if first_step and _is_out_of_memory(err):
                    raise TrainingError(
                        f"out of memory on the first batch (train.batch_size {t.batch_size} on {rt.device.type}); "
                        f"try a smaller batch, e.g. --batch-size {max(1, t.batch_size // 2)}"
                    ) from None
                raise
            first_step = False
            state.step += 1
            window_steps += 1
            state.seconds += time.perf_counter() - step_start
            for callback in self.callbacks:
                callback.on_step(state.step)
            done = state.step >= t.max_steps
            if state.step % t.log_every == 0 or done:
                elapsed = time.perf_counter() - window_start
                terms = self._mean_terms(sums, counts)
                first_terms = first_terms or terms
                last_terms = terms
                record = {"kind": "train", "step": state.step, **{k: round(v, 5) for k, v in terms.items()},
                          "lr": self.scheduler.get_last_lr()[0], "grad_norm": round(grad_norm, 4),
                          "samples_per_s": round(window_steps * self.samples_per_step / max(elapsed, 1e-9), 2),
                          "seconds": round(state.seconds, 2)}
                self.log.write(record)
                for callback in self.callbacks:
                    callback.on_log(record)
                sums, counts = {}, defaultdict(int)
                window_start, window_steps = time.perf_counter(), 0
            if self.evaluator is not None and (state.step % t.eval_every == 0 or done):
                self._evaluate()
            if state.step % t.checkpoint_every == 0 or done or state.stopped_early:
                self._checkpoint()
        self._end_at_best()
        rate = self.samples_per_step * state.step / max(state.seconds, 1e-9)
        return FitResult(state, first_terms, last_terms, rate)

    def _end_at_best(self) -> None:
        """Leave the model at its best validation checkpoint, with the deep score and the
        evidence terms blended on the validation facts (:mod:`.blend`), and save that as
        ``best/``. Why: early stopping's promise is the best model, and ``kgmm complete
        --model RUN`` reads ``RUN/model``, which the caller saves from this model."""
        best = self.run_dir / "best"
        if self.evaluator is None or not best.is_dir():
            return
        barrier(self.runtime)
        saved = type(self.model).from_pretrained(best, map_location=self.runtime.device)
        self.model.load_state_dict(saved.state_dict())
        self.model.train()
        blend = fit_blend(self.model, self.evaluator.data, self.evaluator.task, self.runtime.device, self.config.train.eval_batch_size)
        if blend is not None:
            self.log.write({"kind": "blend", "step": self.state.best_step, **blend})
            if self.runtime.is_main:
                save_model_atomically(self.model, best)
        barrier(self.runtime)

    def _mean_terms(self, sums: dict[str, Tensor], counts: dict[str, int]) -> dict[str, float]:
        """Mean of each loss term since the last log, over micro-batches and ranks."""
        present = [name for name in self.terms if counts.get(name)]
        if not self.runtime.distributed:
            return {name: float(sums[name]) / counts[name] for name in present}
        import torch.distributed as dist

        terms = self.terms  # the same list on every rank, whatever terms each rank's batches had
        totals = torch.tensor([[float(sums[n]) if n in present else 0.0 for n in terms], [float(counts.get(n, 0)) for n in terms]],
                              device=self.runtime.device)
        dist.all_reduce(totals)
        return {name: float(totals[0, i] / totals[1, i]) for i, name in enumerate(terms) if totals[1, i] > 0}

    def _step(self, model, loader, accum: int, autocast, sums: dict[str, Tensor], counts: dict[str, int]) -> float:
        """One optimizer step over ``accum`` micro-batches; returns the gradient norm."""
        rt, t = self.runtime, self.config.train
        for micro in range(accum):
            batch = next(loader).to(rt.device, non_blocking=True)
            sync = nullcontext() if not rt.distributed or micro == accum - 1 else model.no_sync()
            with sync:
                with autocast():
                    _, losses = model(batch)
                (losses["loss"] / accum).backward()
            for name, value in losses.items():
                sums[name] = sums.get(name, 0) + value.detach().float()
                counts[name] += 1
        parameters = [p for p in self.model.parameters() if p.grad is not None]
        if t.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(parameters, t.grad_clip)
        else:
            norm = torch.norm(torch.stack([p.grad.detach().float().norm() for p in parameters])) if parameters else torch.zeros(())
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(norm)

    def _evaluate(self) -> None:
        t, state = self.config.train, self.state
        metrics = self.evaluator.evaluate(self.model, self.runtime.device, t.eval_batch_size, self.runtime.autocast() if self.runtime.bf16 else None)
        record = {"kind": "eval", "step": state.step, **{k: round(v, 5) if isinstance(v, float) else v for k, v in metrics.as_dict().items()}}
        self.log.write(record)
        for callback in self.callbacks:
            callback.on_eval(record)
        if metrics.mrr > state.best_mrr + 1e-6:
            state.best_mrr, state.best_step, state.evals_without_improvement = metrics.mrr, state.step, 0
            if self.runtime.is_main:
                save_model_atomically(self.model, self.run_dir / "best")
        else:
            state.evals_without_improvement += 1
            if t.patience and state.evals_without_improvement >= t.patience:
                state.stopped_early = True
        barrier(self.runtime)

    def _checkpoint(self) -> None:
        if self.runtime.is_main:
            directory = self.run_dir / CHECKPOINTS / f"step-{self.state.step:06d}"
            directory.parent.mkdir(parents=True, exist_ok=True)
            save_checkpoint(directory, self.model, self.optimizer, self.scheduler, self.state, self.config_hash)
            prune_checkpoints(self.run_dir, self.config.train.keep_checkpoints)
        barrier(self.runtime)


def _is_out_of_memory(err: BaseException) -> bool:
    if isinstance(err, (getattr(torch, "OutOfMemoryError", MemoryError), MemoryError)):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)
