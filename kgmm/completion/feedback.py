"""Calibration refitted on reviewers' decisions: the best labels a catalog will ever have.

Each decision says whether a value is right for a product: ``accept`` and ``replace`` say the
value is right (``replace`` also says the catalog value it superseded is wrong), ``reject`` says
it is wrong, ``keep`` says the catalog value is right and the suggestion wrong. With enough of
them, of both kinds, :func:`refit_on_reviews` asks the model about each labelled value as it
asked when proposing it (the product's facts of that attribute hidden, so an accepted value
that is now a fact does not vouch for itself) and fits the temperature that makes the
probabilities agree with the labels (minimum binary log-loss of p(value) against right/wrong,
on the same log-spaced grid as :func:`kgmm.ranking.calibration.fit_temperature`).

Why binary log-loss rather than the usual softmax likelihood of the true value: a rejection names
only a wrong value, and rejections are exactly what says a model is over-confident.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch

from graph_store import Review

from ..ranking import Calibration, value_scores
from .engine import Completer

MIN_LABELS = 30  # labelled values needed to refit ...
MIN_EACH = 5  # ... with at least this many right and this many wrong


@dataclass(frozen=True)
class Label:
    product_id: str
    attribute: str
    value: str
    right: bool


def labels(reviews: Iterable[Review]) -> list[Label]:
    """What each decision says is right or wrong (a flag decision says it of two values)."""
    out = []
    for r in reviews:
        if r.decision in ("accept", "replace"):
            out.append(Label(r.product_id, r.attribute, r.value, True))
        elif r.decision in ("reject", "keep"):
            out.append(Label(r.product_id, r.attribute, r.value, False))
        if r.catalog_value and r.decision in ("keep", "replace"):
            out.append(Label(r.product_id, r.attribute, r.catalog_value, r.decision == "keep"))
    return out


def scored_labels(completer: Completer, found: list[Label]) -> tuple[list[torch.Tensor], list[int], list[bool]]:
    """(scores over the attribute's candidates, the value's position, right) for each label the model can score."""
    snap = completer.snapshot
    product_pos = snap.product_index()
    attribute_pos = {a: i for i, a in enumerate(snap.attributes)}
    value_pos = {v: i for i, v in enumerate(snap.values)}
    jobs: list[tuple[int, int, int, bool]] = []
    for label in found:
        p, a = product_pos.get(label.product_id), attribute_pos.get(label.attribute)
        v = value_pos.get((label.attribute, label.value))
        if p is None or a is None or v is None:
            continue  # a product, attribute or value this model has never seen: it cannot be scored
        candidates = completer.data.candidates[a].tolist()
        if v in candidates and len(candidates) > 1:
            jobs.append((p, a, candidates.index(v), label.right))
    rounds: list[list[tuple[int, int, int, bool]]] = []
    asked: dict[int, int] = {}
    for job in jobs:  # each round asks about distinct products (the subgraph sampler needs distinct seeds)
        n = asked[job[0]] = asked.get(job[0], -1) + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(job)
    scores, positions, rights = [], [], []
    for number, now in enumerate(rounds):
        rows = [p for p, *_ in now]
        hidden = {i: torch.tensor([v for v, _ in completer.facts[p][a]]) for i, (p, a, *_) in enumerate(now) if completer.facts[p].get(a)}
        vectors = completer._encode(rows, (2, rows[0], number), hidden)
        for vector, (_, a, position, right) in zip(vectors, now):
            scores.append(value_scores(completer.model, vector, a, completer.data.candidates[a], completer.device).cpu())
            positions.append(position)
            rights.append(right)
    return scores, positions, rights


def binary_nll(scores: list[torch.Tensor], positions: list[int], rights: list[bool], temperature: float) -> float:
    """Mean log-loss of p(value) at ``temperature`` against right / wrong."""
    total = 0.0
    for s, i, right in zip(scores, positions, rights):
        p = float(torch.softmax(s.float() / temperature, 0)[i].clamp(1e-7, 1 - 1e-7))
        total -= math.log(p if right else 1.0 - p)
    return total / max(len(scores), 1)


def refit_on_reviews(completer: Completer, reviews: list[Review], current: Calibration) -> tuple[Calibration | None, str]:
    """A calibration fitted on reviewed decisions, or None with the reason; the second item is the note to show."""
    found = labels(reviews)
    if not found:
        return None, ""
    right = sum(label.right for label in found)
    wrong = len(found) - right
    if len(found) < MIN_LABELS or right < MIN_EACH or wrong < MIN_EACH:
        return None, (f"{len(found)} reviewed values ({right} right, {wrong} wrong): calibration not refitted on them "
                      f"(needs {MIN_LABELS}, with {MIN_EACH} of each)")
    scores, positions, rights = scored_labels(completer, found)
    if len(scores) < MIN_LABELS or sum(rights) < MIN_EACH or len(rights) - sum(rights) < MIN_EACH:
        return None, (f"only {len(scores)} of {len(found)} reviewed values can be scored by this model: calibration not "
                      "refitted on them")
    loss = lambda t: binary_nll(scores, positions, rights, t)  # noqa: E731
    grid = np.exp(np.linspace(math.log(0.05), math.log(20.0), 121))
    best = float(grid[int(np.argmin([loss(t) for t in grid]))])
    fine = np.exp(np.linspace(math.log(best) - 0.06, math.log(best) + 0.06, 41))
    temperature = float(fine[int(np.argmin([loss(t) for t in fine]))])
    before, after = loss(current.temperature), loss(temperature)
    refitted = Calibration(
        temperature=temperature, facts=len(scores), fitted_on=f"{len(scores)} reviewed values ({sum(rights)} right)",
        nll_before=before, nll_after=after, snapshot_hash=current.snapshot_hash,
    )
    return refitted, (f"calibration refitted on {len(scores)} reviewed values ({sum(rights)} right, {len(rights) - sum(rights)} "
                      f"wrong): temperature {current.temperature:.2f} -> {temperature:.2f} (their log-loss {before:.3f} -> "
                      f"{after:.3f}); the model's calibration.json is left as it is")
