"""``complete_store`` and run ids: a taken id is refused before any work, replacing deletes the
old run only once the new one is about to be written, and a run stopped part way is kept,
marked partial, on every backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kgmm.completion.test_completion import OPTIONS, built, example_store, run  # noqa: F401 - example_store is a fixture
from tests.kgmm.completion.trained_model import trained_model
from tests.kgmm.k3m_testing import one_thread

from graph_store import GraphStore
from kgmm.completion import complete_store
from kgmm.completion.complete import PARTIAL, RunExistsError
from kgmm.errors import CheckpointError


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return trained_model()[1]


def test_reused_run_id_raises_before_loading_the_model(example_store: GraphStore, model_dir: Path, tmp_path: Path) -> None:
    run(example_store, model_dir, "dup")
    before = example_store.list_runs()
    with pytest.raises(RunExistsError, match="'dup' already exists"):
        complete_store(example_store, tmp_path / "no-model-here", OPTIONS, run_id="dup")  # refused before the model is read
    assert example_store.list_runs() == before


def test_replace_run_keeps_the_old_run_when_the_new_one_cannot_start(example_store: GraphStore, model_dir: Path, tmp_path: Path) -> None:
    run(example_store, model_dir, "dup")
    before = example_store.list_runs()
    with pytest.raises(CheckpointError):
        complete_store(example_store, tmp_path / "no-model-here", OPTIONS, run_id="dup", replace_run=True)
    assert example_store.list_runs() == before  # nothing deleted for a run that never started


def test_interrupted_run_is_kept_marked_partial(empty_store: GraphStore, model_dir: Path) -> None:
    store = built(empty_store)
    notes: list[str] = []

    def stop_after_two_batches(done: int, total: int) -> None:
        if done >= 2 * 16:
            raise KeyboardInterrupt

    with one_thread(), pytest.raises(KeyboardInterrupt):
        complete_store(store, model_dir, OPTIONS.__class__(**{**OPTIONS.__dict__, "batch_size": 16}), run_id="cut",
                       progress=stop_after_two_batches, note=notes.append)
    [listed] = store.list_runs()
    assert listed.params["status"] == PARTIAL and listed.params["products_done"] == 32
    assert listed.params["products"] == 126 and listed.params["top_k"] == OPTIONS.top_k  # its settings kept
    assert listed.edges == sum(e.run_id == "cut" for e in store.iter_triples(["model"])) > 0
    assert any("marked partial" in n and "--undo cut" in n for n in notes)
    assert store.delete_run("cut") == listed.edges and not list(store.iter_triples(["model"]))
