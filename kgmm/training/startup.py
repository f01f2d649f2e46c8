"""Where a run's start-up goes: seconds and peak memory of each phase before the first step.

Why: on a large catalog the start-up (imports, the snapshot, the tokenizer, the batch
tables, stage 0) can cost far more than the training itself, and the way to keep it
bounded is to see it. :class:`StartupClock` times each phase of
:func:`kgmm.training.pipeline.pretrain` and, at the first optimizer step of the trainer,
writes ``RUN/startup.json``: seconds from the start of the process (imports included) to
that step, the seconds of each phase, and the peak resident memory so far.
``benchmarks/scale.py`` reads it. It is a file of its own, not a ``metrics.jsonl`` record,
because it describes this process (a resumed run writes its own), not the training curve.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import psutil


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class StartupClock:
    """Times named phases and reports them once, at the first training step (a trainer callback).

    Attributes:
        path: where the record goes (``RUN/startup.json``; None: kept in :attr:`record` only).
    """

    def __init__(self) -> None:
        self.path: Path | None = None
        self.process_start = psutil.Process().create_time()  # wall clock, so imports before us count
        self.phases: dict[str, float] = {}
        self.peaks: dict[str, float] = {}  # peak RSS when each phase ended: which phase raised it
        self.marks: dict[str, float] = {}
        self.record: dict[str, Any] | None = None

    def mark(self, name: str) -> None:
        """Note ``{name}_s`` (seconds from process start) and ``{name}_peak_rss_mb`` now, once:
        stage 0's first step (``first_evidence_step``), an optimizer step that comes before
        the trainer's first."""
        if f"{name}_s" not in self.marks:
            self.marks[f"{name}_s"] = round(time.time() - self.process_start, 3)
            self.marks[f"{name}_peak_rss_mb"] = round(peak_rss_mb(), 1)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block as phase ``name`` (repeated names add up)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = round(self.phases.get(name, 0.0) + time.perf_counter() - start, 3)
            self.peaks[name] = round(peak_rss_mb(), 1)

    # -- trainer callback ----------------------------------------------------------------

    def on_start(self, start_step: int, max_steps: int) -> None:
        self.phases["before_trainer_s"] = round(time.time() - self.process_start, 3)

    def on_step(self, step: int) -> None:
        if self.record is not None:
            return
        self.record = {
            "step": step,
            "first_step_s": round(time.time() - self.process_start, 3),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            **self.marks,
            "phases": dict(self.phases),
            "peak_rss_after_mb": dict(self.peaks),
        }
        if self.path is not None:
            self.path.write_text(json.dumps(self.record, indent=2) + "\n", encoding="utf-8")

    def on_log(self, record: dict) -> None:
        pass

    def on_eval(self, record: dict) -> None:
        pass
