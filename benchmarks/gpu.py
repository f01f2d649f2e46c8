"""GPU pretraining throughput of a config: products/s, model FLOPs utilisation, peak memory.

Builds the example catalog into a temporary store, pretrains ``--config`` (default
``examples/base.yaml``) for ``--steps`` steps in bf16 on the GPU, counts the FLOPs of one
training step (forward and backward of every objective) with ``torch.utils.flop_counter``,
and prints a table and writes JSON: products/s, achieved TFLOP/s, MFU against the card's
dense bf16 peak (``--peak-tflops``, 989 for an H100/H200 SXM), peak GPU memory.

    python benchmarks/gpu.py --steps 60 --json gpu.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "examples" / "base.yaml"))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from torch.utils.flop_counter import FlopCounterMode

    from graph_store import open_store
    from kg_builder import build_graph, open_catalog
    from kgmm.config import load_config
    from kgmm.data.batches import PretrainData, batch_generator
    from kgmm.data.split import split_edges, training_snapshot
    from kgmm.model.factory import new_model
    from kgmm.objectives import compute_losses
    from kgmm.text import train_wordpiece
    from kgmm.training import pretrain

    device = torch.device("cuda")
    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "g.db")
        with open_store(store, create=True) as graph:
            build_graph(open_catalog(ROOT / "examples" / "catalog.jsonl"), graph)
            snapshot = graph.snapshot()
        config = load_config(args.config).replace("train", max_steps=args.steps, eval_every=args.steps, checkpoint_every=args.steps,
                                                   precision="bf16", device="cuda")
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        result = pretrain(store, config, Path(tmp) / "run")
        wall = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated() / 2**30

        tokenizer = train_wordpiece([t for pair in zip(snapshot.titles, snapshot.descriptions) for t in pair], config.text.vocab_size)
        split = split_edges(snapshot, config.train.val_fraction, config.train.max_val, config.train.seed, config.train.min_val)
        model = new_model(config, snapshot, tokenizer, train_snapshot=training_snapshot(snapshot, split.train_mask)).to(device).train()
        data = PretrainData(snapshot, split, tokenizer, config, model.num_patches)
        batch = data.build(list(range(min(config.train.batch_size, snapshot.num_products))), batch_generator(0, 0), train=True).to(device)
        with FlopCounterMode(display=False) as counter, torch.autocast("cuda", dtype=torch.bfloat16):
            compute_losses(model, model(batch), batch, config)["loss"].backward()
        flops_per_step = counter.get_total_flops()
    steps_per_second = result.samples_per_second / config.train.batch_size
    achieved = flops_per_step * steps_per_second / 1e12
    row = {"config": Path(args.config).name, "gpu": torch.cuda.get_device_name(), "steps": result.steps, "batch_size": config.train.batch_size,
           "products_per_s": round(result.samples_per_second, 1), "gflops_per_step": round(flops_per_step / 1e9, 2),
           "achieved_tflops": round(achieved, 2), "mfu": round(achieved / args.peak_tflops, 5), "peak_gib": round(peak, 2),
           "wall_s": round(wall, 1), "torch": torch.__version__}
    print("| " + " | ".join(row) + " |")
    print("| " + " | ".join(str(v) for v in row.values()) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
