"""Whole runs of ``pretrain`` on real stores: exact resume, determinism, refusals, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.kgmm.k3m_testing import one_thread_per_module, EXAMPLES, build_store, tiny_config  # noqa: F401 (autouse fixture)

from graph_store import open_store
from kgmm.errors import CheckpointError, DataError, TrainingError
from kgmm.model import K3M
from kgmm.training import pretrain


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return build_store(tmp_path_factory.mktemp("store") / "example.db")


class StopAt:
    """Interrupts a run after ``step`` (a crash between checkpoints)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_start(self, start: int, total: int) -> None: ...

    def on_step(self, step: int) -> None:
        if step == self.step:
            raise KeyboardInterrupt

    def on_log(self, record: dict) -> None: ...

    def on_eval(self, record: dict) -> None: ...


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model" / "model.safetensors"))


def test_a_resumed_run_ends_with_the_same_parameters(store: str, tmp_path: Path) -> None:
    config = tiny_config(max_steps=8, checkpoint_every=4, eval_every=3)
    full = pretrain(store, config, tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        pretrain(store, config, tmp_path / "part", callbacks=[StopAt(6)])  # dies after step 6; last checkpoint: 4
    resumed = pretrain(store, None, resume=tmp_path / "part")
    assert resumed.resumed_from == 4 and resumed.steps == full.steps == 8
    a, b = weights(tmp_path / "full"), weights(tmp_path / "part")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    strip = lambda path: [{k: v for k, v in r.items() if k not in ("samples_per_s", "seconds")} for r in map(json.loads, path.read_text().splitlines())]  # noqa: E731
    assert strip(tmp_path / "full" / "metrics.jsonl") == strip(tmp_path / "part" / "metrics.jsonl")
    assert (tmp_path / "full" / "loss.png").stat().st_size > 1000
    assert resumed.link["val_facts"] > 0 and len(resumed.completions) == 3
    assert sorted(p.name for p in (tmp_path / "full" / "checkpoints").iterdir()) == ["step-000004", "step-000008"]
    assert (tmp_path / "full" / "best" / "model.safetensors").is_file()


def test_worker_processes_build_the_same_batches(store: str, tmp_path: Path) -> None:
    config = tiny_config(max_steps=3, eval_every=100, checkpoint_every=100)
    pretrain(store, config, tmp_path / "main")
    pretrain(store, config.replace("train", num_workers=2), tmp_path / "workers")
    a, b = weights(tmp_path / "main"), weights(tmp_path / "workers")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_another_graph_or_config(store: str, tmp_path: Path) -> None:
    config = tiny_config(max_steps=2, checkpoint_every=2, eval_every=100)
    pretrain(store, config, tmp_path / "run")
    subset = tmp_path / "subset.jsonl"
    subset.write_text("".join((EXAMPLES / "catalog.jsonl").read_text().splitlines(keepends=True)[:40]))
    shutil.copytree(EXAMPLES / "images", tmp_path / "images")
    other = build_store(tmp_path / "other.db", subset)
    with pytest.raises(CheckpointError, match="was trained on graph snapshot .* but .* now holds"):
        pretrain(other, None, resume=tmp_path / "run", max_steps=4)
    with pytest.raises(CheckpointError, match="--config differs"):
        pretrain(store, config.replace("model", fusion="mean"), resume=tmp_path / "run", max_steps=4)
    extended = pretrain(store, config, resume=tmp_path / "run", max_steps=3)  # more steps is fine
    assert extended.steps == 3 and extended.resumed_from == 2


def test_corrupt_and_foreign_checkpoints(store: str, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such directory"):
        pretrain(store, None, resume=tmp_path / "missing")
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(CheckpointError, match="not a kgmm checkpoint"):
        pretrain(store, None, resume=tmp_path / "hf")
    pretrain(store, tiny_config(max_steps=1, eval_every=100), tmp_path / "run")
    state = next((tmp_path / "run" / "checkpoints").iterdir()) / "training_state.pt"
    state.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="training_state.pt is corrupt"):
        pretrain(store, None, resume=tmp_path / "run")


def test_an_empty_graph_is_refused(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "empty.db"), create=True):
        pass
    with pytest.raises(DataError, match="holds no products; build a graph first"):
        pretrain(str(tmp_path / "empty.db"), tiny_config(), tmp_path / "run")


def test_a_graph_without_images_trains_with_the_image_branch_masked(tmp_path: Path) -> None:
    lines = [json.loads(line) for line in (EXAMPLES / "catalog.jsonl").read_text().splitlines()[:30]]
    for row in lines:
        row.pop("image", None)
    catalog = tmp_path / "no-images.jsonl"
    catalog.write_text("".join(json.dumps(row) + "\n" for row in lines))
    store = build_store(tmp_path / "no-images.db", catalog)
    notes: list[str] = []
    result = pretrain(store, tiny_config(max_steps=3, eval_every=100), tmp_path / "run", notes_callback=notes.append)
    assert any("has an image: training with the image branch masked" in n for n in notes)
    assert "mom" not in result.last_terms and {"mlm", "lpm"} <= set(result.last_terms)
    assert torch.isfinite(torch.tensor(result.last_terms["loss"]))


def test_out_of_memory_on_the_first_batch_suggests_a_smaller_batch(store: str, tmp_path: Path, monkeypatch) -> None:
    def exhausted(self, batch, heads=True):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(K3M, "forward", exhausted)
    with pytest.raises(TrainingError, match=r"out of memory on the first batch \(train.batch_size 16 on cpu\); try a smaller batch, e.g. --batch-size 8"):
        pretrain(store, tiny_config(evidence_epochs=0), tmp_path / "run")
    # after stage 0 the model is validated before its first step: that forward says which batch to shrink
    with pytest.raises(TrainingError, match=r"out of memory validating before the first step \(train.eval_batch_size 64 on cpu\)"):
        pretrain(store, tiny_config(evidence_epochs=1), tmp_path / "run2")


def test_early_stopping_when_validation_mrr_stalls(store: str, tmp_path: Path) -> None:
    config = tiny_config(max_steps=40, eval_every=1, patience=2, lr=1e-12, warmup_steps=0, checkpoint_every=100)
    result = pretrain(store, config, tmp_path / "run")
    assert result.stopped_early and result.steps < 40
    assert (tmp_path / "run" / "checkpoints" / f"step-{result.steps:06d}").is_dir()  # the stop is checkpointed
