"""Measuring the review loop on a catalog, the held-out truth standing in for a reviewer.

``python -m kgmm.review.loop CATALOG --out DIR [--preset flipkart] [--steps N] [--reviews 200]``

1. Build the catalog; hold out 10% of every attribute's facts (``held_out_split``, seed 0) and
   remove them from a copy of the store, catalog and text alike.
2. Pretrain a model on that store (``examples/eval.yaml`` unless ``--config``) and complete it:
   proposals, top 3 per missing (product, attribute).
3. Of the held-out (product, attribute) pairs that got proposals, a reviewer decides on ``--reviews``
   of them, chosen two ways: the most uncertain (top probability nearest 0.5: the queue's order
   within an attribute) and at random. The reviewer knows the held-out truth: a proposal that is
   a true value is accepted, the others rejected, and a true value nobody proposed is typed in.
4. Both arms are measured on the pairs neither reviewed: Hits@1 of the top proposal and the
   calibration of its probability (expected calibration error, 10 bins), with the model's own
   calibration and after ``kgmm complete``'s refit on the decisions. No retraining: reviewed facts
   reach the model only as input (its knowledge of neighbours) and through the calibration.

Imports torch and the trainer: run it as a script, never import it from the light modules.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from graph_store import GraphStore, Review, open_store
from kg_builder import build_graph, open_catalog

from ..completion import CompletionOptions, complete_store
from ..completion.alignment import align_snapshot
from ..completion.complete import resolve_calibration
from ..completion.engine import Completer
from ..completion.feedback import refit_on_reviews
from ..config import load_config
from ..evaluation.splits import held_out_split
from ..model import K3M
from ..training import pretrain

Pair = tuple[str, str]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def remove_facts(store: GraphStore, facts: set[tuple[str, str, str]]) -> None:
    """Delete ``facts`` (product, attribute, value) from the catalog and text edges of ``store``."""
    by_source: dict[str, dict[str, list]] = {"catalog": defaultdict(list), "text": defaultdict(list)}
    for edge in store.iter_triples(["catalog", "text"]):
        by_source[edge.source][edge.product_id].append(edge)
    products = {p.id: p for p in store.iter_products()}
    touched = sorted({pid for pid, _, _ in facts})
    keep = lambda source: [e for pid in touched for e in by_source[source][pid] if e[:3] not in facts]  # noqa: E731
    store.upsert_products([products[pid] for pid in touched], keep("catalog"))
    store.replace_edges(touched, "text", keep("text"))


def top_proposals(store: GraphStore) -> dict[Pair, list[tuple[str, float]]]:
    found: dict[Pair, list[tuple[str, float]]] = defaultdict(list)
    for e in store.iter_triples(["model"]):
        found[(e.product_id, e.attribute)].append((e.value, float(e.score)))
    return {pair: sorted(values, key=lambda item: -item[1]) for pair, values in found.items()}


def review(store: GraphStore, pairs: list[Pair], proposals: dict, truth: dict[Pair, set[str]]) -> dict:
    """The held-out truth decides on ``pairs``; returns counts of what it did."""
    counts = {"accepted": 0, "rejected": 0, "typed": 0}
    for pair in pairs:
        right = truth[pair]
        hit = False
        for value, _ in proposals[pair]:
            verdict = "accept" if value in right else "reject"
            hit |= verdict == "accept"
            store.review(Review(*pair, value, verdict, "held-out truth"))
            counts["accepted" if verdict == "accept" else "rejected"] += 1
        if not hit:
            store.review(Review(*pair, sorted(right)[0], "accept", "held-out truth", note="typed: nobody proposed it"))
            counts["typed"] += 1
    return counts


def measure(store: GraphStore, model_dir: Path, pairs: set[Pair], truth: dict[Pair, set[str]], refit: bool) -> dict:
    """Hits@1 and calibration of the top proposal on ``pairs``, as ``kgmm complete`` would score them now."""
    device = torch.device("cpu")
    model = K3M.from_pretrained(model_dir, map_location=device).eval()
    snapshot = store.snapshot()
    notes: list[str] = []
    calibration = resolve_calibration(model, model_dir, snapshot, device, notes.append)
    aligned, _ = align_snapshot(snapshot, model.id_maps)
    completer = Completer(model, aligned, calibration, CompletionOptions(top_k=1, min_score=0.0, check_noise=False), device)
    if refit:
        refitted, said = refit_on_reviews(completer, store.reviews(), calibration)
        notes.append(said)
        if refitted is not None:
            completer.calibration = refitted
    index = aligned.product_index()
    rows = sorted({index[p] for p, _ in pairs if p in index})
    top: dict[Pair, tuple[str, float]] = {}
    for start in range(0, len(rows), 64):
        predictions, _ = completer.predictions(rows[start:start + 64])
        for p in predictions:
            top[(p.product_id, p.attribute)] = (p.value, p.score)
    scored = [(top[pair][1], top[pair][0] in truth[pair]) for pair in sorted(pairs) if pair in top]
    confidence = np.array([c for c, _ in scored])
    correct = np.array([ok for _, ok in scored], dtype=float)
    bins = np.minimum((confidence * 10).astype(int), 9)
    ece = sum(abs(confidence[bins == b].mean() - correct[bins == b].mean()) * (bins == b).sum() for b in range(10) if (bins == b).any())
    return {"pairs": len(scored), "hits_at_1": round(float(correct.mean()), 4), "mean_confidence": round(float(confidence.mean()), 4),
            "ece": round(float(ece / max(len(scored), 1)), 4), "temperature": round(completer.calibration.temperature, 4),
            "notes": [n for n in notes if n]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("catalog")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--preset")
    parser.add_argument("--config", type=Path, default=EXAMPLES / "eval.yaml")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--reviews", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse", action="store_true", help="Reuse DIR's store, model and proposals (steps 1-2 done before).")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    base_path, held_path = args.out / "base.db", args.out / "held_out.json"
    model_dir = args.out / "run" / "model"
    if not args.reuse:
        with open_store(str(base_path), create=True) as store:
            build_graph(open_catalog(args.catalog, preset=args.preset), store)
            snapshot = store.snapshot()
            split = held_out_split(snapshot, 0.1, 0.0, args.seed)
            held = {(snapshot.product_ids[p], snapshot.attributes[a], snapshot.values[v][1]) for p, a, v in split.test.tolist()}
            held_path.write_text(json.dumps(sorted(held)), encoding="utf-8")
            remove_facts(store, held)
        pretrain(str(base_path), load_config(args.config), args.out / "run", max_steps=args.steps, device="cpu")
        with open_store(str(base_path)) as store:
            complete_store(store, model_dir, CompletionOptions(top_k=3, min_score=0.0, check_noise=False), run_id="proposals")
    held = {tuple(fact) for fact in json.loads(held_path.read_text(encoding="utf-8"))}
    truth: dict[Pair, set[str]] = defaultdict(set)
    for pid, attribute, value in held:
        truth[(pid, attribute)].add(value)
    with open_store(str(base_path)) as store:
        proposals = top_proposals(store)
    candidates = sorted(pair for pair in proposals if pair in truth)
    arms = {
        # the queue's measure: the top probability nearest 0.5
        "nearest_half": sorted(candidates, key=lambda pair: (abs(proposals[pair][0][1] - 0.5), pair))[: args.reviews],
        # least confident: the lowest top probability (the classic active-learning choice)
        "least_confident": sorted(candidates, key=lambda pair: (proposals[pair][0][1], pair))[: args.reviews],
        "random": random.Random(args.seed).sample(candidates, min(args.reviews, len(candidates))),
    }
    evaluated = set(candidates).difference(*arms.values())
    results: dict = {"held_out_facts": len(held), "pairs_with_proposals": len(candidates), "evaluated_pairs": len(evaluated),
                     "steps": args.steps, "config": str(args.config)}
    with open_store(str(base_path)) as store:
        results["before"] = measure(store, model_dir, evaluated, truth, refit=False)
    for arm, pairs in arms.items():
        path = args.out / f"{arm}.db"
        shutil.copy(base_path, path)
        with open_store(str(path)) as store:
            decided = review(store, pairs, proposals, truth)
            reviewed_hits = float(np.mean([proposals[p][0][0] in truth[p] for p in pairs]))
            results[arm] = {"reviewed": decided, "hits_at_1_of_reviewed_pairs": round(reviewed_hits, 4),
                            "facts_only": measure(store, model_dir, evaluated, truth, refit=False),
                            "refit": measure(store, model_dir, evaluated, truth, refit=True)}
    results["seconds"] = round(time.perf_counter() - start, 1)
    (args.out / "review_loop.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
