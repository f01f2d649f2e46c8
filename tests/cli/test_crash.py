"""A build killed with SIGKILL leaves a readable store, and rerunning completes it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.cli.helpers import ROOT, kgmm

from graph_store import open_store
from kg_builder.synthetic import write_synthetic_catalog


def products_in(store: Path) -> int:
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM products").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigkill_mid_build_then_rerun(tmp_path: Path) -> None:
    catalog = write_synthetic_catalog(tmp_path / "big.jsonl", 40_000, seed=3)
    store = tmp_path / "g.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "build-kg", str(catalog), "--store", str(store), "--batch-size", "500", "-q"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while products_in(store) < 2_000 and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "the build finished before it could be killed; use a bigger catalog"
    process.send_signal(signal.SIGKILL)
    process.wait()

    partial = products_in(store)
    assert 0 < partial < 40_000
    with sqlite3.connect(store) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with open_store(str(store)) as graph:  # readable, and every committed batch is whole
        stats = graph.stats()
        assert stats.products == partial and partial % 500 == 0
        assert stats.edges_by_source["catalog"] > 0

    assert kgmm("build-kg", str(catalog), "--store", str(store), "-q").returncode == 0
    clean = tmp_path / "clean.db"
    assert kgmm("build-kg", str(catalog), "--store", str(clean), "-q").returncode == 0
    with open_store(str(store)) as resumed, open_store(str(clean)) as fresh:
        assert resumed.stats().as_dict() | {"runs": 0} == fresh.stats().as_dict() | {"runs": 0}
        assert resumed.snapshot().content_hash() == fresh.snapshot().content_hash()
