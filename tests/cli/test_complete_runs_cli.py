"""`kgmm complete` fed what issue 13 fed it: a reused --run-id, --flags into a missing folder,
--model with --undo, a SIGTERM part way, escape sequences in run ids and model names. Each
either is refused before anything is written, or leaves a run that `kgmm runs` describes
truthfully and `--undo` removes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.helpers import ROOT, invoke
from tests.cli.test_hostile_cli import assert_no_raw_escapes
from tests.kgmm.completion.trained_model import trained_model

from graph_store import open_store


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return trained_model()[1]


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A fresh copy of the example catalog's store."""
    shutil.copy(trained_model()[0], tmp_path / "g.db")
    return str(tmp_path / "g.db")


def complete(store: str, model_dir: Path, *extra: str):
    return invoke("complete", "--model", str(model_dir), "--store", store, "--no-noise", "--device", "cpu", "-q", *extra)


def runs(store: str) -> list[dict]:
    return json.loads(invoke("runs", "--store", store, "--format", "json").stdout)


def model_edges(store: str) -> list[tuple]:
    with open_store(store) as graph:
        return sorted((e.product_id, e.attribute, e.value, e.score, e.run_id) for e in graph.iter_triples(["model"]))


def test_reused_run_id_is_refused_before_writing(store: str, model_dir: Path) -> None:
    first = complete(store, model_dir, "--run-id", "dup", "--top-k", "3", "--min-score", "0.01")
    assert first.exit_code == 0, first.stderr
    before, listed = model_edges(store), runs(store)
    again = complete(store, model_dir, "--run-id", "dup", "--top-k", "1", "--min-score", "0.3")
    assert again.exit_code == 1 and again.stderr.startswith("error: run 'dup' already exists"), again.stderr
    assert "--replace-run" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    assert "Wrote" not in again.stdout
    assert model_edges(store) == before and runs(store) == listed  # nothing written, settings untouched


def test_replace_run_writes_the_new_run_in_place_of_the_old(store: str, model_dir: Path) -> None:
    assert complete(store, model_dir, "--run-id", "dup", "--top-k", "3", "--min-score", "0.01").exit_code == 0
    old = len(model_edges(store))
    replaced = complete(store, model_dir, "--run-id", "dup", "--top-k", "1", "--min-score", "0.01", "--replace-run")
    assert replaced.exit_code == 0, replaced.stderr
    assert "replaced run dup" in replaced.stderr
    [run] = runs(store)
    assert run["run_id"] == "dup" and run["top_k"] == 1 and run["status"] == "complete"
    assert run["edges"] == len(model_edges(store)) < old  # only the new run's edges
    assert invoke("complete", "--store", store, "--replace-run").exit_code == 1  # without --run-id: refused


def test_flags_into_a_missing_folder_fails_before_the_run_is_written(store: str, model_dir: Path, tmp_path: Path) -> None:
    done = complete(store, model_dir, "--flags", str(tmp_path / "missing_dir" / "x.csv"))
    assert done.exit_code == 1 and "missing_dir does not exist" in done.stderr, done.stderr
    assert runs(store) == [] and model_edges(store) == []
    into_a_folder = complete(store, model_dir, "--flags", str(tmp_path))
    assert into_a_folder.exit_code == 1 and "is a directory" in into_a_folder.stderr
    assert runs(store) == []


def test_model_with_undo_is_refused(store: str, model_dir: Path) -> None:
    assert complete(store, model_dir, "--run-id", "kept").exit_code == 0
    done = invoke("complete", "--model", str(model_dir), "--undo", "kept", "--store", store)
    assert done.exit_code == 1 and "--undo removes a run and uses no model" in done.stderr
    assert [r["run_id"] for r in runs(store)] == ["kept"]  # neither undone nor completed


def test_escape_sequences_in_run_id_and_model_name_are_printed_escaped(store: str, model_dir: Path, tmp_path: Path) -> None:
    odd_model = tmp_path / "model\x1b]0;pwned\x07"
    shutil.copytree(model_dir, odd_model)
    run_id = "r\x1b[2J"
    done = complete(store, odd_model, "--run-id", run_id)
    assert done.exit_code == 0, done.stderr
    assert_no_raw_escapes(done.stdout + done.stderr)
    assert "r\\x1b[2J" in done.stdout
    listed = invoke("runs", "--store", store)
    assert_no_raw_escapes(listed.stdout)
    assert runs(store)[0]["run_id"] == run_id  # JSON keeps the exact id
    undone = invoke("complete", "--undo", run_id, "--store", store)
    assert undone.exit_code == 0 and "\x1b" not in undone.stdout


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_mid_complete_leaves_a_partial_run_that_runs_shows_and_undo_removes(
    store: str, model_dir: Path, signum: signal.Signals
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    env.pop("KGMM_STORE", None)
    args = [sys.executable, "-m", "cli.main", "complete", "--model", str(model_dir), "--store", store, "--run-id", "cut",
            "--batch-size", "1", "--device", "cpu", "-q",
            "--min-score", "0"]  # every proposed value is written, so edges appear from the first products on, long before the end
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            if any(r["run_id"] == "cut" and r["edges"] > 0 for r in _runs_now(store)):
                break
            time.sleep(0.2)
        assert process.poll() is None, "the run finished before it could be interrupted"
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signum, stderr
    assert "marked partial" in stderr and "kgmm complete --undo cut" in stderr
    [run] = runs(store)
    assert run["run_id"] == "cut" and run["status"].startswith("partial (") and run["edges"] > 0
    assert 0 < run["params"]["products_done"] < run["params"]["products"] == 126
    assert run["edges"] == len(model_edges(store))
    shown = invoke("runs", "--store", store).stdout
    assert "partial" in shown
    undone = invoke("complete", "--undo", "cut", "--store", store)
    assert undone.exit_code == 0 and runs(store) == [] and model_edges(store) == []


def _runs_now(store: str) -> list[dict]:
    """The store's runs, read while another process writes them (a locked moment reads as none)."""
    try:
        with open_store(store) as graph:
            return [{"run_id": r.run_id, "edges": r.edges} for r in graph.list_runs()]
    except Exception:  # noqa: BLE001 - the writer holds the lock for a moment
        return []
