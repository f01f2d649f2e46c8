"""Benchmark ``kgmm pretrain``: samples/s, peak memory and model FLOPs per config and device.

Each case runs the real pipeline (:func:`kgmm.training.pretrain`: batch building, the
model, the three losses, AdamW, checkpoints off the clock) in a fresh subprocess, so peak
memory is the case's own:

* tiny (``examples/tiny.yaml``) and base (``examples/base.yaml``) on the CPU;
* the same on a GPU when one is available, with bf16 autocast, reporting model FLOPs
  utilisation (MFU) against the GPU's dense bf16 peak.

Throughput is products per second over the timed steps (after warm-up steps). Model FLOPs
per product are counted with ``torch.utils.flop_counter`` on one forward + backward pass
of a training batch (matmuls and convolutions; the sampler and data pipeline are not
model FLOPs). Peak memory: resident-set growth on the CPU (``VmHWM`` after resetting it),
``torch.cuda.max_memory_allocated`` on a GPU.

Usage::

    python benchmarks/train.py [--quick] [--json PATH] [--catalog examples|flipkart]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FLIPKART = ROOT.parent / "shared" / "data" / "flipkart-1050" / "flipkart_com-ecommerce_sample_1050.csv"

# Dense bf16 peak of common GPUs, FLOP/s (vendor data sheets, without sparsity).
GPU_PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12, "A10": 125e12, "RTX 4090": 165e12, "V100": 125e12}

CASES = {
    # name: (config, batch size, warm-up steps, timed steps) for full / quick runs
    "tiny": ("tiny.yaml", {"full": (16, 5, 30), "quick": (16, 3, 10)}),
    "base": ("base.yaml", {"full": (64, 2, 5), "quick": (16, 1, 3)}),
}


def rss_reset() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def rss_peak_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_store(directory: Path, catalog: str) -> str:
    from graph_store import open_store
    from kg_builder import build_graph, open_catalog

    uri = str(directory / "bench.db")
    source = open_catalog(FLIPKART, preset="flipkart") if catalog == "flipkart" else open_catalog(ROOT / "examples" / "catalog.jsonl")
    with open_store(uri, create=True) as store:
        build_graph(source, store)
    return uri


class StepClock:
    """Times the steps after ``warmup`` (callbacks run right after each optimizer step)."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end, self.steps = warmup, None, None, 0
        self.threads = 0

    def on_start(self, start: int, total: int) -> None: ...

    def on_step(self, step: int) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
        now = time.perf_counter()
        self.threads = torch.get_num_threads()  # what training ran with
        if step == self.warmup:
            self.start = now
        elif step > self.warmup:
            self.end, self.steps = now, step - self.warmup

    def on_log(self, record: dict) -> None: ...

    def on_eval(self, record: dict) -> None: ...


def count_flops(model_dir: Path, store: str, config) -> float:
    """Model FLOPs of one training forward + backward, per product."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from graph_store import open_store
    from kgmm.data.batches import PretrainData, batch_generator
    from kgmm.data.split import split_edges
    from kgmm.model import K3M
    from kgmm.objectives import compute_losses

    model = K3M.from_pretrained(model_dir)
    with open_store(store) as graph:
        snapshot = graph.snapshot()
    data = PretrainData(snapshot, split_edges(snapshot, 0.0, 0, 0), model.tokenizer, config, model.num_patches)
    size = min(config.train.batch_size, snapshot.num_products)
    batch = data.build(torch.arange(size), batch_generator(0, 0), train=True)
    model.train()
    with FlopCounterMode(display=False) as counter:
        compute_losses(model, model(batch), batch, config)["loss"].backward()
    return counter.get_total_flops() / size


def run_case(name: str, device: str, quick: bool, catalog: str) -> dict:
    """One case, in this process (called in a fresh subprocess by ``main``)."""
    warnings.filterwarnings("ignore")
    import torch

    from kgmm.config import load_config
    from kgmm.training import pretrain

    config_file, sizes = CASES[name]
    batch, warmup, timed = sizes["quick" if quick else "full"]
    with tempfile.TemporaryDirectory() as tmp:
        store = build_store(Path(tmp), catalog)
        config = load_config(ROOT / "examples" / config_file).replace(
            "train", batch_size=batch, max_steps=warmup + timed, device=device, eval_every=10**6, checkpoint_every=10**6,
            log_every=10**6, num_workers=0 if device == "cpu" else 4, val_fraction=0.0,
        )
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        rss_reset()
        before = rss_peak_mib()
        clock = StepClock(warmup)
        result = pretrain(store, config, Path(tmp) / "run", callbacks=[clock])
        peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else rss_peak_mib() - before
        seconds = (clock.end - clock.start) if clock.steps else float("nan")
        products = clock.steps * min(batch, 10**9)
        flops = count_flops(result.model_dir, store, config)
        row = {
            "config": name,
            "device": result.device,
            "batch_size": batch,
            "timed_steps": clock.steps,
            "seconds_per_step": seconds / max(clock.steps, 1),
            "samples_per_s": products / seconds,
            "peak_memory_mib": peak,
            "gflops_per_sample": flops / 1e9,
            "achieved_tflops": flops * products / seconds / 1e12,
            "threads": clock.threads,
        }
        if device == "cuda":
            gpu = torch.cuda.get_device_name()
            peak_flops = next((v for k, v in GPU_PEAK_BF16.items() if k in gpu), None)
            row["mfu"] = row["achieved_tflops"] * 1e12 / peak_flops if peak_flops else None
        return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller base batch and fewer steps (about a minute on a CPU)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--catalog", choices=("examples", "flipkart"), default="examples")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: NAME:DEVICE in this process
    args = parser.parse_args()
    if args.case:
        name, device = args.case.split(":")
        print(json.dumps(run_case(name, device, args.quick, args.catalog)))
        return

    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        for name in CASES:
            command = [sys.executable, __file__, "--case", f"{name}:{device}", "--catalog", args.catalog] + (["--quick"] if args.quick else [])
            done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
            if done.returncode != 0:
                print(f"{name} on {device} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(_line(row), flush=True)
    if not torch.cuda.is_available():
        print("gpu: not measured: no GPU on this machine")
    if args.json:
        meta = {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(), "quick": args.quick, "catalog": args.catalog}
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


def _line(row: dict) -> str:
    mfu = f", MFU {row['mfu']:.1%}" if row.get("mfu") is not None else ""
    return (
        f"{row['config']:<5} {row['device']:<22} batch {row['batch_size']:>3}  {row['samples_per_s']:8.1f} products/s  "
        f"{row['seconds_per_step']:6.2f} s/step  peak {row['peak_memory_mib']:7.0f} MiB  "
        f"{row['gflops_per_sample']:6.2f} GFLOP/product  {row['achieved_tflops'] * 1e3:7.1f} GFLOP/s{mfu}  ({row['threads']} threads)"
    )


if __name__ == "__main__":
    main()
