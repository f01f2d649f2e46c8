"""Benchmark: how kgmm's commands grow with the catalog (issue 15).

For synthetic catalogs of 10k, 100k and 1M products (``kg_builder.synthetic``; 10k and 30k
with ``--quick``) it runs the CLI as a user would, each command a child process, and measures:

* ``kgmm build-kg``: triples/s end to end (process start to exit) and peak RSS;
* the snapshot the model reads: seconds to read it from the store, bytes as ``.npz``;
* ``kgmm pretrain --config examples/tiny.yaml --max-steps N``: seconds from process start to
  the first optimizer step and peak RSS at that step (the run's ``startup.json``, with the
  seconds of each start-up phase), peak RSS of the whole command, and training products/s;
* ``kgmm complete`` on one shard (``--shard 0/K``, about ``--complete-products`` products,
  ``--dry-run``): products/s of the completion loop and the command's wall seconds.

Peak RSS of a command is the largest sum of resident memory over the child and its own
children (build-kg's worker processes), sampled every 0.1 s with psutil. The growth exponent
of each metric is the least-squares slope of log(metric) against log(products): 1 is linear,
0 flat. Printed as a table, written as JSON (``benchmarks/results/scale.json``) and as a
log-log plot (``docs/scale.png``).

Usage: python benchmarks/scale.py [--quick] [--sizes 10000 100000 1000000] [--steps 10]
                                  [--evidence-epochs N] [--workdir DIR] [--json PATH] [--png PATH]
       python benchmarks/scale.py --merge A.json B.json   # one table, exponents and plot from earlier runs
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kg_builder.synthetic import write_synthetic_catalog  # noqa: E402

TINY = ROOT / "examples" / "tiny.yaml"
METRICS = {  # key -> (label, unit, "time" | "memory" | "rate" | "bytes")
    "build_triples_per_s": ("build-kg triples/s", "triples/s", "rate"),
    "build_seconds": ("build-kg seconds", "s", "time"),
    "build_peak_rss_mb": ("build-kg peak RSS", "MiB", "memory"),
    "snapshot_seconds": ("snapshot read seconds", "s", "time"),
    "snapshot_bytes": ("snapshot .npz bytes", "B", "bytes"),
    "pretrain_first_evidence_step_s": ("pretrain: first optimizer step (stage 0's)", "s", "time"),
    "pretrain_first_evidence_step_rss_mb": ("pretrain: peak RSS at that step", "MiB", "memory"),
    "pretrain_stage0_s": ("pretrain: stage 0", "s", "time"),
    "pretrain_first_step_s": ("pretrain: first joint step", "s", "time"),
    "pretrain_first_step_rss_mb": ("pretrain: peak RSS at first joint step", "MiB", "memory"),
    "pretrain_peak_rss_mb": ("pretrain: peak RSS, whole command", "MiB", "memory"),
    "pretrain_products_per_s": ("pretrain: training products/s", "products/s", "rate"),
    "complete_products_per_s": ("complete: products/s (loop)", "products/s", "rate"),
    "complete_wall_s": ("complete: one shard, wall", "s", "time"),
}


def run(command: list[str], log: Path, timeout: float) -> dict:
    """Run ``command``; wall seconds, exit code and the peak RSS of its process tree (MiB)."""
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        child = psutil.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        peak = 0
        while child.poll() is None:
            peak = max(peak, tree_rss(child))
            if time.perf_counter() - started > timeout:
                child.kill()
                break
            time.sleep(0.1)
    return {"seconds": time.perf_counter() - started, "rc": child.wait(), "peak_rss_mb": peak / 2**20}


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of a process and its descendants (0 for those gone meanwhile)."""
    total = 0
    try:
        for p in [process, *process.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return total


def kgmm(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli.main", *args]


def measure(products: int, workdir: Path, steps: int, complete_products: int, timeout: float, config: Path = TINY) -> dict:
    """Every metric for one catalog size (a failed command leaves its metrics out, with its log named)."""
    row: dict = {"products": products, "failures": []}
    catalog = workdir / f"catalog-{products}.jsonl"
    if not catalog.exists():
        write_synthetic_catalog(catalog, products)
    store = workdir / f"store-{products}.db"
    for leftover in workdir.glob(f"store-{products}.db*"):
        leftover.unlink()

    build = run(kgmm("build-kg", str(catalog), "--store", str(store)), workdir / f"build-{products}.log", timeout)
    if build["rc"] != 0:
        row["failures"].append(f"build-kg exit {build['rc']} (see {workdir / f'build-{products}.log'})")
        return row
    report = json.loads(Path(f"{store}.build-report.json").read_text(encoding="utf-8"))
    row.update(triples=report["triples"], build_seconds=build["seconds"], build_peak_rss_mb=build["peak_rss_mb"],
               build_triples_per_s=report["triples"] / build["seconds"])

    snapshot_json = workdir / f"snapshot-{products}.json"
    code = ("import json, sys, time; from graph_store import open_store; t = time.perf_counter()\n"
            f"with open_store({str(store)!r}) as s: snap = s.snapshot()\n"
            f"seconds = time.perf_counter() - t; snap.save({str(workdir / 'snapshot.npz')!r})\n"
            f"json.dump({{'seconds': seconds}}, open({str(snapshot_json)!r}, 'w'))")
    snap = run([sys.executable, "-c", code], workdir / f"snapshot-{products}.log", timeout)
    if snap["rc"] == 0:
        row.update(snapshot_seconds=json.loads(snapshot_json.read_text())["seconds"],
                   snapshot_bytes=(workdir / "snapshot.npz").stat().st_size, snapshot_peak_rss_mb=snap["peak_rss_mb"])
        (workdir / "snapshot.npz").unlink()
    else:
        row["failures"].append(f"snapshot exit {snap['rc']}")

    out = workdir / f"run-{products}"
    pretrain = run(kgmm("pretrain", "--store", str(store), "--config", str(config), "--max-steps", str(steps), "--out", str(out), "-q"),
                   workdir / f"pretrain-{products}.log", timeout)
    startup = json.loads((out / "startup.json").read_text(encoding="utf-8")) if (out / "startup.json").exists() else None
    if startup:
        row.update(pretrain_first_step_s=startup["first_step_s"], pretrain_first_step_rss_mb=startup["peak_rss_mb"],
                   pretrain_phases=startup["phases"], pretrain_peak_rss_after_mb=startup.get("peak_rss_after_mb"),
                   pretrain_stage0_s=startup["phases"].get("stage0_s"),
                   # stage 0 (the evidence terms alone) is the run's first training: its first step is the first optimizer step
                   pretrain_first_evidence_step_s=startup.get("first_evidence_step_s", startup["first_step_s"]),
                   pretrain_first_evidence_step_rss_mb=startup.get("first_evidence_step_peak_rss_mb", startup["peak_rss_mb"]))
    if pretrain["rc"] != 0:
        row["failures"].append(f"pretrain exit {pretrain['rc']} (see {workdir / f'pretrain-{products}.log'})")
        return row
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    row.update(pretrain_seconds=pretrain["seconds"], pretrain_peak_rss_mb=pretrain["peak_rss_mb"],
               pretrain_products_per_s=summary["samples_per_second"])

    shards = max(1, round(products / complete_products))
    done = run(kgmm("complete", "--model", str(out / "model"), "--store", str(store), "--shard", f"0/{shards}", "--run-id", "scale",
                    "--dry-run", "-q"), workdir / f"complete-{products}.log", timeout)
    text = (workdir / f"complete-{products}.log").read_text(encoding="utf-8", errors="replace")
    found = re.search(r"Completed ([\d,]+) products.*? in ([\d.]+) s", text)
    if done["rc"] != 0 or not found:
        row["failures"].append(f"complete exit {done['rc']} (see {workdir / f'complete-{products}.log'})")
        return row
    completed, seconds = int(found.group(1).replace(",", "")), float(found.group(2))
    row.update(complete_shards=shards, complete_products=completed, complete_wall_s=done["seconds"],
               complete_peak_rss_mb=done["peak_rss_mb"], complete_products_per_s=completed / max(seconds, 1e-9))
    return row


def exponents(rows: list[dict]) -> dict[str, float]:
    """Least-squares slope of log(metric) against log(products), per metric measured at two sizes or more."""
    slopes = {}
    for key in METRICS:
        points = [(r["products"], r[key]) for r in rows if r.get(key)]
        if len(points) >= 2:
            x, y = np.log([p for p, _ in points]), np.log([v for _, v in points])
            slopes[key] = float(np.polyfit(x, y, 1)[0])
    return slopes


def table(rows: list[dict], slopes: dict[str, float]) -> str:
    sizes = [r["products"] for r in rows]
    lines = ["| metric | " + " | ".join(f"{p:,} products" for p in sizes) + " | growth exponent |",
             "|---|" + "---:|" * (len(sizes) + 1)]
    for key, (label, unit, _) in METRICS.items():
        cells = [_cell(r.get(key), unit) for r in rows]
        slope = f"{slopes[key]:.2f}" if key in slopes else "-"
        lines.append(f"| {label} ({unit}) | " + " | ".join(cells) + f" | {slope} |")
    return "\n".join(lines)


def targets(rows: list[dict]) -> str:
    """Issue 15's targets at the largest catalog measured, each met or not."""
    row = max(rows, key=lambda r: r["products"], default=None)
    if row is None:
        return ""
    checks = [("first optimizer step within 90 s", row.get("pretrain_first_evidence_step_s"), lambda v: v <= 90, "{:.1f} s"),
              ("peak RSS at that step under 4 GiB", row.get("pretrain_first_evidence_step_rss_mb"), lambda v: v < 4096, "{:,.0f} MiB"),
              ("peak RSS of the whole pretrain command under 4 GiB", row.get("pretrain_peak_rss_mb"), lambda v: v < 4096, "{:,.0f} MiB"),
              ("build-kg at least 100k triples/s", row.get("build_triples_per_s"), lambda v: v >= 100_000, "{:,.0f} triples/s")]
    lines = [f"targets at {row['products']:,} products (issue 15):"]
    for label, value, met, shown in checks:
        lines.append(f"  {label}: " + ("not measured" if value is None else f"{'met' if met(value) else 'NOT met'} ({shown.format(value)})"))
    return "\n".join(lines)


def _cell(value, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "B":
        return f"{value / 2**20:,.1f} MiB"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"


def plot(rows: list[dict], path: Path) -> None:
    """Log-log plot of every metric against products, one panel per kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [("time", "seconds"), ("memory", "peak RSS (MiB)"), ("rate", "per second")]
    figure, axes = plt.subplots(1, len(kinds), figsize=(15, 4.5))
    for axis, (kind, ylabel) in zip(axes, kinds):
        for key, (label, _, k) in METRICS.items():
            points = [(r["products"], r[key]) for r in rows if r.get(key)]
            if k == kind and points:
                axis.plot(*zip(*points), marker="o", label=label)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("products")
        axis.set_ylabel(ylabel)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle("kgmm on synthetic catalogs (benchmarks/scale.py)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k and 30k products")
    parser.add_argument("--sizes", type=int, nargs="+", help="catalog sizes (default 10k 100k 1M)")
    parser.add_argument("--steps", type=int, default=10, help="pretrain --max-steps")
    parser.add_argument("--complete-products", type=int, default=512, help="products in the completed shard")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds a command may run")
    parser.add_argument("--evidence-epochs", type=int, help="pretrain with train.evidence_epochs set to this (0: no stage 0)")
    parser.add_argument("--merge", type=Path, nargs="+", help="measure nothing: combine the rows of these earlier JSON results")
    parser.add_argument("--workdir", type=Path, help="where catalogs and stores go (default: a temporary folder)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "scale.json")
    parser.add_argument("--png", type=Path, default=ROOT / "docs" / "scale.png")
    args = parser.parse_args()
    sizes = args.sizes or ([10_000, 30_000] if args.quick else [10_000, 100_000, 1_000_000])
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kgmm-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    config = TINY
    if args.evidence_epochs is not None:  # tiny.yaml with stage 0 changed: what start-up costs without (or with less of) it
        import yaml

        settings = yaml.safe_load(TINY.read_text(encoding="utf-8"))
        settings.setdefault("train", {})["evidence_epochs"] = args.evidence_epochs
        config = workdir / "tiny-evidence.yaml"
        config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    rows = []
    if args.merge:  # sizes measured in separate runs (e.g. the largest queued behind other heavy jobs)
        rows = sorted((row for path in args.merge for row in json.loads(path.read_text(encoding="utf-8"))["rows"]), key=lambda r: r["products"])
        sizes = []
    for products in sizes:
        started = time.perf_counter()
        rows.append(measure(products, workdir, args.steps, args.complete_products, args.timeout, config))
        print(f"{products:,} products measured in {time.perf_counter() - started:.0f} s"
              + (f"; failed: {'; '.join(rows[-1]['failures'])}" if rows[-1]["failures"] else ""), flush=True)
    slopes = exponents(rows)
    print(table(rows, slopes))
    print(targets(rows))
    result = {"benchmark": "scale", "machine": {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
                                               "platform": platform.platform(), "load_average": os.getloadavg()},
              "steps": args.steps, "config": str(TINY.relative_to(ROOT)),
              "evidence_epochs": args.evidence_epochs, "rows": rows, "growth_exponents": slopes}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    plot(rows, args.png)
    print(f"wrote {args.json} and {args.png} (work files in {workdir})")
    if any(math.isnan(v) for v in slopes.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
