"""Calibrated probabilities: temperature scaling, expected calibration error, storage.

A softmax over a link-prediction head's scores is not a probability anyone should act on:
a model trained with cross-entropy on sampled negatives is typically over- or
under-confident. Temperature scaling (Guo et al., 2017) divides every score by one
number ``T`` fitted on held-out triples (minimum negative log-likelihood of the true
value); it never changes the ranking, only how sure the top value looks. After it,
"0.9" should mean right about nine times in ten, which is what ``--min-score`` promises.

The temperature is stored next to the model as ``calibration.json`` so that
``kgmm complete`` uses it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

CALIBRATION_FILE = "calibration.json"


@dataclass(frozen=True)
class Calibration:
    """A fitted temperature and how well it calibrates.

    Attributes:
        temperature: divide scores by this before the softmax.
        facts: held-out triples it was fitted on.
        fitted_on: what those triples were, for people.
        ece_before, ece_after: expected calibration error of the top-1 probability on the
            fitting triples, with T = 1 and with the fitted T.
        nll_before, nll_after: mean negative log-likelihood of the true value.
        snapshot_hash: the graph the model was evaluated on.
    """

    temperature: float = 1.0
    facts: int = 0
    warning: str | None = None
    fitted_on: str = "nothing (uncalibrated)"
    ece_before: float | None = None
    ece_after: float | None = None
    nll_before: float | None = None
    nll_after: float | None = None
    snapshot_hash: str | None = None

    def probabilities(self, scores: Tensor) -> Tensor:
        """Softmax of ``scores`` [..., M] over the last dimension at this temperature."""
        return torch.softmax(scores.float() / self.temperature, dim=-1)

    def save(self, directory: Path) -> Path:
        """Write ``calibration.json`` atomically (a temporary file renamed over it): shards of one
        ``kgmm complete`` run may fit and save it at once, and a reader never sees half a file."""
        path = Path(directory) / CALIBRATION_FILE
        partial = path.with_name(f".{CALIBRATION_FILE}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        os.replace(partial, path)
        return path


def load_calibration(directory: Path) -> Calibration | None:
    """The calibration stored with a model, or None."""
    path = Path(directory) / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        calibration = Calibration(**data)
    except (OSError, ValueError, TypeError):
        return None
    if not (math.isfinite(calibration.temperature) and calibration.temperature > 0):
        return None
    return calibration


def nll(scores: list[Tensor], truth: list[int], temperature: float) -> float:
    """Mean negative log-likelihood of the true values at ``temperature``."""
    if not scores:
        return 0.0
    return float(np.mean([-torch.log_softmax(s.float() / temperature, 0)[t].item() for s, t in zip(scores, truth)]))


WIDEN_LIMIT = 1e4
"""How far (a factor either way) the temperature grid may widen before it gives up."""


def fit_temperature(scores: list[Tensor], truth: list[int], low: float = 0.05, high: float = 20.0) -> float:
    """The temperature minimising the NLL of the true values (log-spaced grid, then refined).

    A grid rather than gradient descent: the NLL is one-dimensional and smooth, a grid is
    deterministic and cannot diverge on a handful of triples. When the best temperature lies on
    an edge of the grid, the grid widens tenfold on that side (up to :data:`WIDEN_LIMIT`); one
    still on the edge after that is returned and :func:`at_edge` says so.
    """
    usable = [(s.float(), t) for s, t in zip(scores, truth) if s.numel() > 1]
    if not usable:
        return 1.0
    width = max(s.numel() for s, _ in usable)
    padded = torch.full((len(usable), width), float("-inf"))
    for i, (s, _) in enumerate(usable):
        padded[i, : s.numel()] = s
    target = torch.tensor([t for _, t in usable])

    def loss(t: float) -> float:
        return float(torch.nn.functional.cross_entropy(padded / t, target))

    while True:
        grid = np.exp(np.linspace(math.log(low), math.log(high), 121))
        position = int(np.argmin([loss(t) for t in grid]))
        if position == len(grid) - 1 and high < WIDEN_LIMIT:
            low, high = high / 10, high * 10
        elif position == 0 and low > 1 / WIDEN_LIMIT:
            low, high = low / 10, low * 10
        else:
            break
    best = float(grid[position])
    fine = np.exp(np.linspace(math.log(best) - 0.06, math.log(best) + 0.06, 41))
    return float(np.clip(fine[int(np.argmin([loss(t) for t in fine]))], 1 / WIDEN_LIMIT, WIDEN_LIMIT))


def at_edge(temperature: float) -> str | None:
    """``"hot"`` or ``"cold"`` for a temperature the widened grid could not bracket, else None.

    Hot: the scores carry (almost) no information about the true value, so the best
    probabilities are uniform. Cold: every fitting fact is ranked first by a margin, so the
    fit would make every probability 0 or 1 (too few or too easy facts to calibrate on).
    """
    if temperature >= WIDEN_LIMIT / 2:
        return "hot"
    if temperature <= 2 / WIDEN_LIMIT:
        return "cold"
    return None


def top1(scores: list[Tensor], truth: list[int], temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """(confidence [N] of the top value, correct [N] bool) at ``temperature``."""
    confidence, correct = np.zeros(len(scores)), np.zeros(len(scores), dtype=bool)
    for i, (s, t) in enumerate(zip(scores, truth)):
        probs = torch.softmax(s.float() / temperature, 0)
        best = int(torch.argmax(probs))
        confidence[i] = float(probs[best])
        correct[i] = best == t
    return confidence, correct


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> list[dict]:
    """Per equal-width confidence bin: bounds, count, mean confidence and accuracy."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    out = []
    for b in range(bins):
        chosen = index == b
        n = int(chosen.sum())
        out.append({
            "low": float(edges[b]), "high": float(edges[b + 1]), "count": n,
            "confidence": float(confidence[chosen].mean()) if n else None,
            "accuracy": float(correct[chosen].mean()) if n else None,
        })
    return out


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """ECE: the count-weighted mean |accuracy - confidence| over equal-width bins."""
    if confidence.size == 0:
        return 0.0
    total = confidence.size
    return float(sum(b["count"] / total * abs(b["accuracy"] - b["confidence"]) for b in reliability(confidence, correct, bins) if b["count"]))


def precision_at(confidence: np.ndarray, correct: np.ndarray, thresholds=(0.5, 0.7, 0.9)) -> list[dict]:
    """For each threshold: how many top values reach it and how many of those are right."""
    out = []
    for threshold in thresholds:
        chosen = confidence >= threshold
        n = int(chosen.sum())
        out.append({"min_score": threshold, "count": n, "coverage": n / max(confidence.size, 1),
                    "accuracy": float(correct[chosen].mean()) if n else None})
    return out


def calibrate(scores: list[Tensor], truth: list[int], fitted_on: str, snapshot_hash: str | None = None) -> Calibration:
    """Fit a temperature on held-out triples and measure it on the same triples."""
    temperature = fit_temperature(scores, truth)
    before, after = top1(scores, truth, 1.0), top1(scores, truth, temperature)
    warning, edge = None, at_edge(temperature)
    if edge == "hot":
        warning = (f"temperature {temperature:.4g} is at the edge of its range: the scores say almost nothing about "
                   f"which value is right (train longer, or on more facts); probabilities are near uniform")
    elif edge == "cold":
        warning = (f"temperature {temperature:.4g} is at the edge of its range: every one of the {len(scores)} fitting "
                   f"facts is ranked first by a margin, so probabilities would all be near 0 or 1; calibrate on more facts")
    elif len(scores) < 30:
        warning = f"calibrated on only {len(scores)} held-out facts: its probabilities are rough"
    return Calibration(
        temperature=temperature, facts=len(scores), fitted_on=fitted_on, warning=warning,
        ece_before=expected_calibration_error(*before), ece_after=expected_calibration_error(*after),
        nll_before=nll(scores, truth, 1.0), nll_after=nll(scores, truth, temperature), snapshot_hash=snapshot_hash,
    )
