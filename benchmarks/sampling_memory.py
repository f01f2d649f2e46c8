"""Memory measurements of ``benchmarks/sampling.py``: peak RSS of a phase, tensor bytes of a
graph, and the memory of a whole synthetic catalog's graph measured in a fresh process.

Kept apart from the timing code so each file has one job (and stays under 500 lines); see
``sampling.py``'s docstring for what is reported and why RSS, not tracemalloc.
"""

from __future__ import annotations

import gc
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch_geometric.data import HeteroData

from kgmm.sampling import TypedNeighborSampler

FANOUT = [10, 5]


def maxrss_mib() -> float:
    """Process high-water RSS in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _proc_status_mib(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


class PeakRSS:
    """Peak RSS growth during a ``with`` block, in MiB.

    The high-water mark is monotonic, so a phase that stays below an earlier
    peak (e.g. the graph build) would read as 0.  On Linux we reset the mark
    first (``echo 5 > /proc/self/clear_refs``) and report ``VmHWM`` minus the
    RSS at entry; elsewhere we fall back to ``ru_maxrss`` growth (a lower
    bound).
    """

    def __enter__(self) -> PeakRSS:
        self.method = "ru_maxrss"
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.method = "VmHWM"
        except OSError:
            pass
        self.rss0 = _proc_status_mib("VmRSS") if self.method == "VmHWM" else maxrss_mib()
        return self

    def __exit__(self, *exc: object) -> None:
        peak = _proc_status_mib("VmHWM") if self.method == "VmHWM" else maxrss_mib()
        self.delta_mib = max(0.0, (peak or 0.0) - (self.rss0 or 0.0))


def tensor_bytes(data: HeteroData) -> int:
    """Exact bytes of every tensor attribute of ``data`` (nodes, edges, graph-level)."""
    return sum(
        value.numel() * value.element_size()
        for store in data.stores
        for value in store.values()
        if isinstance(value, torch.Tensor)
    )


def catalog_graph_memory(num_products: int, seed: int = 0) -> dict[str, Any]:
    """Build a synthetic catalog's store, then measure its graph in a fresh process.

    The measuring process starts clean (only torch, PyG and kgmm imported), as
    a training process would: memory freed by the build or by earlier graphs
    of this benchmark would otherwise be reused and hide the growth.
    """
    import multiprocessing

    from graph_store import open_store
    from kg_builder import build_graph, open_catalog
    from kg_builder.synthetic import write_synthetic_catalog

    with tempfile.TemporaryDirectory() as tmp:
        catalog = write_synthetic_catalog(f"{tmp}/catalog.jsonl", num_products, seed=seed)
        t0 = time.perf_counter()
        with open_store(f"{tmp}/g.db", create=True) as store:
            build_graph(open_catalog(catalog), store)
        build_s = time.perf_counter() - t0
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            result = pool.apply(measure_store_graph, (f"{tmp}/g.db", seed))
    return {"num_products": num_products, "build_graph_s": build_s, **result}


def measure_store_graph(db_path: str, seed: int = 0) -> dict[str, Any]:
    """Snapshot ``db_path`` into a HeteroData; its tensor bytes and RSS growth.

    ``rss_growth_mib`` is what stays resident with the HeteroData alone (the
    store closed, the snapshot dropped); ``peak_rss_growth_mib`` the high-water
    mark while snapshot and HeteroData were both alive.
    """
    from graph_store import open_store
    from kgmm.data import snapshot_to_heterodata

    gc.collect()
    rss_before = _proc_status_mib("VmRSS")
    with PeakRSS() as peak:
        t0 = time.perf_counter()
        with open_store(db_path) as store:
            snapshot = store.snapshot()
        data = snapshot_to_heterodata(snapshot)
        convert_s = time.perf_counter() - t0
        del snapshot
        gc.collect()
    rss_after = _proc_status_mib("VmRSS")
    t0 = time.perf_counter()
    sampler = TypedNeighborSampler(data, FANOUT, seed=seed)
    sampler_s = time.perf_counter() - t0
    nbytes = tensor_bytes(data)
    return {
        "node_types": {nt: int(data[nt].num_nodes) for nt in data.node_types},
        "num_edge_types": len(data.edge_types),
        "num_edges": sum(int(data[et].edge_index.size(1)) for et in data.edge_types),
        "snapshot_to_heterodata_s": convert_s,
        "tensor_bytes": nbytes,
        "tensor_mib": nbytes / 2**20,
        "rss_growth_mib": None if rss_before is None else rss_after - rss_before,
        "peak_rss_growth_mib": peak.delta_mib,
        "memory_method": peak.method,
        "sampler_build_s": sampler_s,
        "sampler_adjacency_mib": sampler.nbytes() / 2**20,
    }


def print_catalog_memory(m: dict[str, Any]) -> None:
    print(
        f"catalog graph ({m['num_products']:,} synthetic products): {m['node_types']}, "
        f"{m['num_edges']:,} edges in {m['num_edge_types']} edge types"
    )
    print(
        f"build {m['build_graph_s']:.1f}s, snapshot + snapshot_to_heterodata "
        f"{m['snapshot_to_heterodata_s']:.2f}s"
    )
    rss = "n/a" if m["rss_growth_mib"] is None else f"{m['rss_growth_mib']:.1f} MiB"
    print(
        f"HeteroData tensors {m['tensor_bytes']:,} bytes ({m['tensor_mib']:.1f} MiB); "
        f"RSS growth {rss} held, {m['peak_rss_growth_mib']:.1f} MiB peak "
        f"({m['memory_method']}); sampler adjacency {m['sampler_adjacency_mib']:.1f} MiB "
        f"built in {m['sampler_build_s']:.2f}s"
    )
