"""Benchmark ``kgmm complete``: products/s for missing values and noise flags, against a tfidf baseline.

In one run, on one synthetic catalog (:mod:`kg_builder.synthetic`, 10,000 products by default):

1. build the graph into a fresh embedded store and pretrain the tiny model
   (``examples/tiny.yaml``) for a few steps (off the clock: only completion is measured);
2. **kgmm complete**: :func:`kgmm.completion.complete_store` with the default options (top 3
   values for every applicable attribute a product lacks, every checkable catalog value scored
   for noise, the run written to the store), timed end to end, calibration included;
3. **tfidf**: the baseline of ``kgmm evaluate`` (:mod:`kgmm.evaluation.tfidf`) asked the same
   questions: TF-IDF features of every product, one logistic regression per attribute that
   completion predicts or checks (fixed ``C``, no validation grid), the top 3 values for the
   same (product, attribute) pairs and the probability of the same catalog values, flagged at
   the same thresholds. Timed from the texts to the last probability (nothing is written).

4. with ``--shards N``: **kgmm complete split** into N processes (``kgmm complete --shard i/N``
   with one ``--run-id``, started together) on a copy of the store taken before step 2, timed
   from the first start to the last exit; the values they write are compared with step 2's.

The table gives wall seconds, CPU seconds (this process's, or the shards' together: on a
shared machine the CPU time moves less with other people's load than the wall time), products/s
and the ratio of wall times to tfidf. The target (issue 12, issue 15) is under 60 s for 10,000
products on this CPU.

Usage::

    python benchmarks/complete.py [--products N] [--steps N] [--shards N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from graph_store import SourceCode, open_store  # noqa: E402
from kg_builder import build_graph, open_catalog  # noqa: E402
from kg_builder.synthetic import write_synthetic_catalog  # noqa: E402

TFIDF_C = 10.0  # the value the validation grid of kgmm evaluate picks most often; fixed here


def prepare(workdir: Path, products: int, steps: int, evidence_epochs: int | None = None) -> tuple[str, Path, dict]:
    """Catalog -> store -> a tiny model pretrained for ``steps`` steps; returns (store, model dir, timings).
    ``evidence_epochs``: stage 0's passes (None: the default); completion's cost does not depend on them."""
    from kgmm.config import load_config
    from kgmm.training import pretrain

    catalog = write_synthetic_catalog(workdir / "catalog.jsonl", products)
    uri = str(workdir / "bench.db")
    started = time.perf_counter()
    with open_store(uri, create=True) as store:
        build_graph(open_catalog(catalog), store)
    built = time.perf_counter() - started
    config = load_config(ROOT / "examples" / "tiny.yaml").replace(
        "train", max_steps=steps, eval_every=steps, checkpoint_every=steps, log_every=steps, keep_checkpoints=1,
        **({} if evidence_epochs is None else {"evidence_epochs": evidence_epochs}))
    started = time.perf_counter()
    result = pretrain(uri, config, workdir / "run")
    return uri, Path(result.model_dir), {"build_s": built, "pretrain_s": time.perf_counter() - started}


def time_complete(uri: str, model_dir: Path) -> dict:
    """``kgmm complete`` with its default options, writing the run."""
    from kgmm.completion import CompletionOptions, complete_store

    options = CompletionOptions()
    with open_store(uri) as store:
        started, cpu = time.perf_counter(), time.process_time()
        report = complete_store(store, model_dir, options, device="cpu")
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"method": "kgmm complete (tiny K3M)", "products": report.products, "pairs": report.pairs,
            "predictions": report.predictions, "checked": report.checked, "flags": len(report.flags), "seconds": seconds,
            "cpu_s": cpu, "threads": torch.get_num_threads()}


def time_shards(uri: str, model_dir: Path, shards: int) -> dict:
    """``kgmm complete --shard i/N --run-id bench-shards`` as N processes at once (CLI defaults,
    the same options as :func:`time_complete`); wall time from the first start to the last exit,
    CPU time of all of them (imports and model loading included: each shard pays its own)."""
    command = [sys.executable, "-m", "cli.main", "complete", "--model", str(model_dir), "--store", uri, "--run-id", "bench-shards",
               "--device", "cpu", "-q"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    running = [subprocess.Popen([*command, "--shard", f"{i}/{shards}"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for i in range(shards)]
    outputs = [p.communicate()[0] for p in running]
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for p, output in zip(running, outputs):
        if p.returncode:
            raise SystemExit(f"a shard failed (exit {p.returncode}):\n{output}")
    with open_store(uri) as store:
        products = store.snapshot(include_predicted=False).num_products
    return {"method": f"kgmm complete, {shards} shards (--shard i/{shards})", "products": products, "pairs": None, "predictions": None,
            "checked": None, "flags": None, "seconds": seconds,
            "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), "threads": 1}


def model_values(uri: str) -> set[tuple]:
    """What a completion run wrote, run id aside: (product, attribute, value, score, note)."""
    with open_store(uri) as store:
        return {(e.product_id, e.attribute, e.value, e.score, e.raw) for e in store.iter_triples(["model"])}


def time_tfidf(uri: str) -> dict:
    """The tfidf baseline answering the same questions as ``kgmm complete`` (defaults: top 3,
    min score 0.1, noise below 0.05 when another value reaches 0.5)."""
    from kgmm.completion import CompletionOptions
    from kgmm.evaluation.noise import hand_rule_flags
    from kgmm.evaluation.tfidf import TextClassifier, product_texts, tfidf_features, training_rows
    from kgmm.ranking import Applicability

    options = CompletionOptions()
    with open_store(uri) as store:
        snapshot = store.snapshot(include_predicted=False)
    started, cpu = time.perf_counter(), time.process_time()
    applicability = Applicability(snapshot, options.min_coverage, seed=options.seed)  # as Completer builds it
    wanted = [(p, applicability.missing(p)) for p in range(snapshot.num_products)]
    checkable = np.bincount(snapshot.value_attribute, minlength=len(snapshot.attributes)) >= 2  # as Completer.checks: two values or more
    checks = [(p, a, v) for p, a, v, s in zip(snapshot.edge_product.tolist(), snapshot.edge_attribute.tolist(),
                                              snapshot.edge_value.tolist(), snapshot.edge_source.tolist())
              if s == SourceCode.CATALOG and checkable[a]]
    attributes = {a for _, missing in wanted for a in missing} | {a for _, a, _ in checks}
    features = tfidf_features(product_texts(snapshot))
    classifier = TextClassifier.fit(features, training_rows(features, snapshot, attributes), TFIDF_C)
    fitted = time.perf_counter() - started
    pairs = predictions = flags = 0
    by_attribute: dict[int, list[int]] = {}
    for p, missing in wanted:
        for a in missing:
            by_attribute.setdefault(a, []).append(p)
    for a, products in by_attribute.items():
        _, logp = classifier.log_probabilities(features.rows[products], a)
        top = np.sort(np.exp(logp), axis=1)[:, ::-1][:, : options.top_k]
        pairs += len(products)
        predictions += int((top >= options.min_score).sum())
    checked_by_attribute: dict[int, list[tuple[int, int]]] = {}
    for p, a, v in checks:
        checked_by_attribute.setdefault(a, []).append((p, v))
    for a, rows in checked_by_attribute.items():
        classes, logp = classifier.log_probabilities(features.rows[[p for p, _ in rows]], a)
        probs = np.exp(logp)
        for row, (_, v) in zip(probs, rows):
            own = np.searchsorted(classes, v)
            value = row[own] if own < classes.size and classes[own] == v else 0.0
            others = np.delete(row, own) if own < classes.size and classes[own] == v else row
            flags += int(others.size > 0 and hand_rule_flags(value, others.max(), True, False))  # the rule kgmm used before its detector
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"method": f"tfidf + logistic regression (C={TFIDF_C:g})", "products": snapshot.num_products, "pairs": pairs,
            "predictions": predictions, "checked": len(checks), "flags": flags, "seconds": seconds, "cpu_s": cpu, "fit_s": fitted,
            "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=10_000, help="synthetic catalog size (default 10,000)")
    parser.add_argument("--steps", type=int, default=20, help="pretraining steps of the tiny model (off the clock)")
    parser.add_argument("--evidence-epochs", type=int, default=None,
                        help="stage 0 passes of the model's pretraining (default: the config's; off the clock either way)")
    parser.add_argument("--shards", type=int, default=0, help="also run kgmm complete split into this many processes (0: not)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "complete.json", help="where the rows go")
    args = parser.parse_args()
    from kgmm.training.distributed import default_cpu_threads

    torch.set_num_threads(default_cpu_threads())
    with tempfile.TemporaryDirectory(prefix="kgmm-bench-complete-") as tmp:
        uri, model_dir, setup = prepare(Path(tmp), args.products, args.steps, args.evidence_epochs)
        print(f"{args.products:,} synthetic products: built in {setup['build_s']:.1f} s, tiny model pretrained "
              f"{args.steps} steps in {setup['pretrain_s']:.1f} s (off the clock)", flush=True)
        split_uri = str(Path(tmp) / "shards.db")
        shutil.copy(uri, split_uri)  # before any run: the shards start from the same store as the single process
        rows = [time_complete(uri, model_dir)]
        print(f"kgmm complete: {rows[0]['seconds']:.1f} s wall, {rows[0]['cpu_s']:.1f} s CPU, {rows[0]['checked']:,} values checked",
              flush=True)  # before the baseline, which may not fit in memory
        if args.shards > 1:
            rows.append(time_shards(split_uri, model_dir, args.shards))
            same = model_values(split_uri) == model_values(uri)
            rows[-1].update(pairs=rows[0]["pairs"], predictions=rows[0]["predictions"], checked=rows[0]["checked"],
                            flags=rows[0]["flags"], same_values_as_one_process=same)
            print(f"{args.shards} shards wrote {'the same values as' if same else 'VALUES DIFFERENT FROM'} one process", flush=True)
        try:
            rows.append(time_tfidf(uri))
        except MemoryError as error:  # one multinomial fit over an attribute with thousands of values
            print(f"tfidf baseline did not fit in memory: {error}", flush=True)
            rows.append({"method": f"tfidf + logistic regression (C={TFIDF_C:g}): did not fit in memory", "products": rows[0]["products"],
                         "pairs": 0, "predictions": 0, "checked": 0, "flags": 0, "seconds": float("nan"), "cpu_s": float("nan")})
    baseline = rows[-1]["seconds"]
    print("\n| method | products | pairs predicted | values checked | flags | wall s | CPU s | products/s (wall) | wall vs tfidf |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        row["products_per_s"] = row["products"] / row["seconds"]
        row["vs_tfidf"] = row["seconds"] / baseline  # NaN when the baseline did not run
        ratio = "-" if baseline != baseline else f"{row['vs_tfidf']:.2f}x"
        print(f"| {row['method']} | {row['products']:,} | {row['pairs']:,} | {row['checked']:,} | {row['flags']:,} | "
              f"{row['seconds']:.1f} | {row['cpu_s']:.1f} | {row['products_per_s']:.0f} | {ratio} |")
    complete = rows[0]
    target = 60.0 * complete["products"] / 10_000
    print(f"\ntarget (issues 12, 15): 10,000 products in under 60 s, i.e. {target:.0f} s here: "
          f"{'met' if complete['seconds'] <= target else 'NOT met'} ({complete['seconds']:.1f} s wall, {complete['cpu_s']:.1f} s CPU)")
    meta = {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(), "products": args.products,
            "steps": args.steps, "evidence_epochs": args.evidence_epochs, "shards": args.shards, "load_average": os.getloadavg(), **setup}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"rows written to {args.json}")


if __name__ == "__main__":
    main()
