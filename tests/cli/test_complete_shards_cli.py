"""`kgmm complete` split over processes: `--shard i/N` with one `--run-id`, and `torchrun` ranks
(RANK / WORLD_SIZE, the run id sent from rank 0), each write the values one process writes, as
one run that `kgmm runs` lists once; a bad split is one clear line and writes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.helpers import ROOT, invoke
from tests.cli.test_complete_runs_cli import runs
from tests.kgmm.completion.trained_model import store_copy, trained_model

from graph_store import open_store

ARGS = ("--batch-size", "16", "--error-rate", "0.1", "--flag-min", "0.1", "--device", "cpu", "-q")


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return trained_model()[1]



def values(store: str) -> set[tuple]:
    with open_store(store) as graph:
        return {(e.product_id, e.attribute, e.value, e.score, e.raw) for e in graph.iter_triples(["model"])}


def complete_once(model_dir: Path, store: str) -> None:
    """The same completion in one process, as run ``whole``."""
    done = invoke("complete", "--model", str(model_dir), "--store", store, "--run-id", "whole", *ARGS)
    assert done.exit_code == 0, done.stderr


def test_two_shards_write_one_run_with_the_values_of_one_process(model_dir: Path, tmp_path: Path) -> None:
    one, split = store_copy(tmp_path, "one.db"), store_copy(tmp_path, "split.db")
    complete_once(model_dir, one)
    for part in ("1/2", "0/2"):
        done = invoke("complete", "--model", str(model_dir), "--store", split, "--run-id", "split", "--shard", part, *ARGS)
        assert done.exit_code == 0, done.stderr
        assert f"(shard {part} of run split)" in done.stdout
    assert values(split) == values(one) and values(one)
    [run] = runs(split)
    assert run["run_id"] == "split" and run["params"]["shards"] == 2 and run["status"] == "complete"


@pytest.mark.parametrize("extra, message", [
    (("--shard", "0/2"), "error: shard 0/2 needs --run-id"),
    (("--shard", "2/2", "--run-id", "r"), "error: shard 2/2: need 0 <= i < N"),
    (("--shard", "half", "--run-id", "r"), "error: --shard 'half': expected i/N"),
    (("--shard", "0/2", "--run-id", "r", "--replace-run"), "error: shard 0/2: --replace-run cannot go with --shard"),
])
def test_a_bad_split_is_one_line_and_writes_nothing(model_dir: Path, tmp_path: Path, extra: tuple, message: str) -> None:
    store = store_copy(tmp_path, "g.db")
    done = invoke("complete", "--model", str(model_dir), "--store", store, *ARGS, *extra)
    assert done.exit_code == 1 and done.stderr.startswith(message), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert runs(store) == [] and values(store) == set()


def test_torchrun_ranks_complete_disjoint_shards_of_one_run(model_dir: Path, tmp_path: Path) -> None:
    """The real launcher: two ranks, no --run-id (rank 0 chooses it), the values of one process."""
    one, split = store_copy(tmp_path, "one.db"), store_copy(tmp_path, "split.db")
    complete_once(model_dir, one)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    env.pop("KGMM_STORE", None)
    launched = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "cli.main", "complete",
         "--model", str(model_dir), "--store", split, *ARGS],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert launched.returncode == 0, launched.stderr[-3000:]
    [run] = runs(split)
    assert run["run_id"].startswith("run-") and run["run_id"].endswith("-x2") and run["params"]["shards"] == 2
    assert values(split) == values(one)
    assert launched.stdout.count(f"of run {run['run_id']})") == 2  # both ranks joined the same run
