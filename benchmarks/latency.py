"""Benchmark inference latency per product: the light image encoder against the default one.

Issue 7 asks for MBSD's latency-sized image encoder with per-product inference latency. Two
models are built the way the tests build them (``tests/kgmm/k3m_testing.tiny_setup``: the
example catalog's 126 products with their real JPEGs, a WordPiece vocabulary, ``K3M``), one
from ``examples/tiny.yaml`` (``image.backbone: mobilenetv3_small_050``, the default) and
one from ``examples/light.yaml`` (``image.backbone: light``), identical otherwise. On the
same batches of products that have a photo, in eval mode under ``torch.inference_mode``:

* **image encoder**: ``model.image(pixels)``, photos already decoded and normalised;
* **K3M forward**: ``model(batch, heads=False)``, what ``kgmm complete`` runs per batch
  (text, image, pairs, subgraph GNN, interaction, fusion); building the batch (sampling,
  tokenising, decoding photos) is not timed.

at batch 1 and batch 32, on the CPU and, when ``torch.cuda.is_available()``, on the GPU
(fp32). The machine is shared and noisy, so the two backbones alternate inside every
repeat and each number is the median over repeats of the mean time per call; the ratio
default / light is what to compare across runs. Parameter counts come with the table.

Usage::

    python benchmarks/latency.py [--quick] [--json PATH] [--repeats N] [--threads N]
                                 [--config tiny|base]

``--config base`` compares ``examples/base.yaml`` (ResNet-18 at 224 px) with the same
config on the light backbone instead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "kgmm"))  # the tests' model builder: one way to build a model
warnings.filterwarnings("ignore")

import torch  # noqa: E402

BATCHES = (1, 32)
CALLS = {1: 20, 32: 2}  # calls per repeat: about the same time per repeat for both sizes
QUICK_CALLS = {1: 5, 32: 1}


def build(config_name: str) -> dict[str, tuple[torch.nn.Module, object]]:
    """``{"default": (model, data), "light": (model, data)}`` on the example catalog."""
    from k3m_testing import tiny_setup

    from kgmm.config import load_config

    base = load_config(ROOT / "examples" / f"{config_name}.yaml")
    configs = {"default": base, "light": base.replace("image", backbone="light")}
    if config_name == "tiny":  # the shipped example, so the benchmark measures what users run
        configs["light"] = load_config(ROOT / "examples" / "light.yaml")
    out = {}
    for name, config in configs.items():
        model, data, _ = tiny_setup(config.replace("train", cpu_threads=1))
        out[name] = (model.eval(), data)
    return out


def timed(fn: Callable[[], object], calls: int, device: torch.device) -> float:
    """Mean seconds per call of ``fn`` over ``calls`` calls."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / calls


def measure(models: dict, device: torch.device, batch_size: int, repeats: int, calls: int) -> list[dict]:
    """Rows for one device and batch size: both backbones, image encoder and whole forward."""
    from kgmm.data.batches import batch_generator

    work = {}
    for name, (model, data) in models.items():
        model.to(device)
        products = data.with_image[:batch_size]  # the same products for both models
        batch = data.build(products, batch_generator(0, batch_size), train=False).to(device)
        assert bool(batch.image_present.all()), "every benchmarked product has a photo"
        pixels = batch.pixels
        work[name] = {
            "image encoder": lambda m=model, p=pixels: m.image(p),
            "K3M forward": lambda m=model, b=batch: m(b, heads=False),
        }
    times: dict[tuple[str, str], list[float]] = {}
    with torch.inference_mode():
        for parts in work.values():  # warm-up: allocator, kernels, caches
            for fn in parts.values():
                for _ in range(3):
                    fn()
        for _ in range(repeats):
            for part in ("image encoder", "K3M forward"):
                for name, parts in work.items():  # alternate, so drift hits both alike
                    times.setdefault((part, name), []).append(timed(parts[part], calls, device))
    rows = []
    for part in ("image encoder", "K3M forward"):
        median = {name: statistics.median(times[(part, name)]) for name in work}
        for name in work:
            seconds = median[name]
            rows.append({
                "device": device.type,
                "part": part,
                "backbone": models[name][0].config.image.backbone,
                "batch_size": batch_size,
                "ms_per_call": seconds * 1e3,
                "ms_per_product": seconds * 1e3 / batch_size,
                "products_per_s": batch_size / seconds,
                "spread": (max(times[(part, name)]) - min(times[(part, name)])) / seconds,  # (max - min) / median
                "speedup_vs_default": median["default"] / seconds,
            })
    for model, _ in models.values():
        model.to("cpu")
    return rows


def parameters(models: dict) -> list[dict]:
    """Parameter counts: CNN backbone, image encoder (backbone + projection + positions), K3M."""
    def count(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    rows = []
    for model, _ in models.values():
        rows.append({"backbone": model.config.image.backbone, "grid": list(model.image.grid), "cnn": count(model.image.backbone),
                     "image_encoder": count(model.image), "k3m": count(model)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats of fewer calls (about 20 s on a CPU)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per case (default 9, 3 with --quick)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, as training uses on 2 cores)")
    parser.add_argument("--config", choices=("tiny", "base"), default="tiny")
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 9)
    calls = QUICK_CALLS if args.quick else CALLS
    torch.set_num_threads(args.threads)

    models = build(args.config)
    sizes = parameters(models)
    for row in sizes:
        print(f"{row['backbone']:<22} grid {row['grid'][0]}x{row['grid'][1]}  CNN {row['cnn']:>10,} params  "
              f"image encoder {row['image_encoder']:>10,}  K3M {row['k3m']:>10,}")
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        for batch_size in BATCHES:
            for row in measure(models, device, batch_size, repeats, calls[batch_size]):
                rows.append(row)
                print(_line(row), flush=True)
    if not torch.cuda.is_available():
        print("gpu: not measured: no GPU on this machine")
    if args.json:
        meta = {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(), "threads": args.threads,
                "config": args.config, "repeats": repeats, "calls": calls, "quick": args.quick,
                "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
                "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
        args.json.write_text(json.dumps({"meta": meta, "parameters": sizes, "rows": rows}, indent=2))


def _line(row: dict) -> str:
    return (
        f"{row['device']:<4} {row['part']:<13} {row['backbone']:<22} batch {row['batch_size']:>2}  "
        f"{row['ms_per_product']:8.3f} ms/product  {row['ms_per_call']:8.2f} ms/call  "
        f"{row['products_per_s']:9.1f} products/s  x{row['speedup_vs_default']:.2f} vs default  (spread {row['spread']:.0%})"
    )


if __name__ == "__main__":
    main()
