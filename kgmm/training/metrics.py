"""Metrics of a run, one JSON object per line in ``metrics.jsonl``.

Records are ``{"kind": "train", "step", "loss", <each objective's terms>, "lr", ...}`` every
``log_every`` steps and ``{"kind": "eval", "step", "val_mrr", ...}`` at each evaluation.
A resumed run first drops the records after its checkpoint's step, so the file always
describes one continuous run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


BOOKKEEPING = frozenset({"kind", "step", "lr", "grad_norm", "samples_per_s", "seconds"})
"""Keys of a train record that are not loss terms."""


def loss_terms(record: dict[str, Any]) -> list[str]:
    """The loss terms of a train record, in logged order (``loss`` first): whatever the
    run's objectives returned, so a new objective shows up without a change here."""
    return [key for key, value in record.items() if key not in BOOKKEEPING and isinstance(value, (int, float))]


class MetricsLog:
    """Append-only JSONL log (written by rank 0 only).

    Args:
        path: the log file.
        resume_step: when resuming, records with a larger step are removed first.
        enabled: False on non-zero ranks.
    """

    def __init__(self, path: Path, resume_step: int | None = None, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled
        if not enabled:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            path.write_text("", encoding="utf-8")
        elif path.exists():
            kept = [r for r in read_metrics(path) if r.get("step", 0) <= resume_step]
            path.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Every record of a ``metrics.jsonl`` (a torn last line is skipped)."""
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
