"""MBSD's behaviour signals on the model side: behaviour edges in the GNN's subgraphs, and
the contrastive stage 1, on the example catalog with its (synthetic) behaviour pairs."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import pytest
import torch

from tests.kgmm.k3m_testing import EXAMPLES, one_thread, tiny_config, tiny_setup

from graph_store import Snapshot, open_store
from kg_builder import build_graph, open_catalog, open_pairs
from kgmm.data.batches import batch_generator
from kgmm.schema import EdgeKind
from kgmm.training.behaviour import behaviour_infonce, behaviour_pairs, run_behaviour_stage, sample_pairs


@functools.cache
def behaviour_snapshot() -> Snapshot:
    """The example catalog with examples/behaviour.csv, built once per test process."""
    with tempfile.TemporaryDirectory() as tmp:
        with open_store(str(Path(tmp) / "g.db"), create=True) as store:
            build_graph(open_catalog(EXAMPLES / "catalog.jsonl"), store, behaviour=[open_pairs(EXAMPLES / "behaviour.csv")])
            return store.snapshot()


def behaviour_config(**train):
    return tiny_config(**train).replace("knowledge", behaviour=True)


def test_a_step_never_pairs_a_product_twice() -> None:
    a = torch.tensor([0, 0, 1, 2, 3, 4, 5])
    b = torch.tensor([1, 2, 2, 3, 4, 5, 0])
    for seed in range(20):
        left, right, weight = sample_pairs(a, b, torch.ones(7), 16, torch.Generator().manual_seed(seed))
        ends = torch.cat([left, right]).tolist()
        assert len(ends) == len(set(ends)) >= 4 and weight.numel() == left.numel()


def test_infonce_is_low_for_matching_pairs_and_weights_only_reweight() -> None:
    x = torch.nn.functional.one_hot(torch.arange(8), 8).float()
    matched = behaviour_infonce(x, x, torch.ones(8), 0.1)
    shuffled = behaviour_infonce(x, x.roll(1, 0), torch.ones(8), 0.1)
    assert matched < 0.01 < 5 < shuffled
    assert torch.allclose(behaviour_infonce(x, x.roll(1, 0), torch.full((8,), 3.0), 0.1), shuffled)


def test_behaviour_edges_reach_the_gnn_only_when_switched_on() -> None:
    snapshot = behaviour_snapshot()
    assert snapshot.num_behaviour_edges > 100
    linked = sorted(set(snapshot.behaviour_src.tolist()))[:16]
    with one_thread():
        for on in (False, True):
            config = behaviour_config() if on else tiny_config()
            model, data, _ = tiny_setup(config, snapshot)
            batch = data.build(linked, batch_generator(0, 0, 0), train=False)
            kinds = set(batch.edge_kind.tolist())
            assert (EdgeKind.BEHAVIOUR in kinds) is on
            assert model.knowledge.edge_kind.num_embeddings == (7 if on else 6)
            assert torch.isfinite(model(batch, heads=False).product).all()


def test_stage_one_pulls_linked_products_together_and_zero_steps_change_nothing() -> None:
    snapshot = behaviour_snapshot()
    with one_thread():
        model, data, _ = tiny_setup(behaviour_config(), snapshot)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        assert run_behaviour_stage(model, data, data.config, torch.device("cpu")).steps == 0
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())

        config = behaviour_config(behaviour_steps=30, batch_size=8)
        model, data, _ = tiny_setup(config, snapshot)
        a, b, _ = behaviour_pairs(data)
        probe = sample_pairs(a, b, torch.ones(a.numel()), 8, torch.Generator().manual_seed(123))

        def linked_loss() -> float:
            model.eval()
            with torch.no_grad():
                u = model(data.build(probe[0], batch_generator(9, 9), train=False), heads=False).fused
                v = model(data.build(probe[1], batch_generator(9, 9), train=False), heads=False).fused
            return float(behaviour_infonce(u, v, probe[2], config.objectives.behaviour_temperature))

        start = linked_loss()
        result = run_behaviour_stage(model, data, config, torch.device("cpu"))
        assert result.steps == 30 and result.last_loss < result.first_loss
        assert linked_loss() < start


@pytest.mark.slow
def test_pretrain_runs_stage_one_then_the_objectives(tmp_path: Path) -> None:
    from tests.cli.helpers import kgmm

    store = str(tmp_path / "g.db")
    built = kgmm("build-kg", "examples/catalog.jsonl", "--behaviour", "examples/behaviour.csv", "--store", store, "-q")
    assert built.returncode == 0, built.stderr
    config = tmp_path / "behaviour.yaml"
    config.write_text((EXAMPLES / "tiny.yaml").read_text() + "\n# test overrides\n", encoding="utf-8")
    import yaml

    data = yaml.safe_load(config.read_text())
    data["knowledge"]["behaviour"] = True
    data["train"].update({"behaviour_steps": 4, "max_steps": 4, "eval_every": 2, "checkpoint_every": 2, "cpu_threads": 1})
    config.write_text(yaml.safe_dump(data))
    run = tmp_path / "run"
    done = kgmm("pretrain", "--store", store, "--config", str(config), "--out", str(run), "-q")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "stage 1: 4 behaviour contrastive steps" in done.stdout + done.stderr
    records = [line for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    assert '"kind": "behaviour"' in records[0] and any('"kind": "train"' in r for r in records)
