"""Completion split over shards writes exactly what one process writes, into one run (on the
example catalog with a tiny model really trained on it, ``trained_model``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kgmm.completion.trained_model import store_copy, trained_model
from tests.kgmm.k3m_testing import one_thread

from graph_store import open_store
from kgmm.completion import CompletionOptions, complete_store
from kgmm.completion.complete import RunExistsError
from kgmm.completion.shards import Shard, parse_shard, shard_from_env
from kgmm.errors import DataError

# small batches so that each of 2 or 3 shards gets several; noise checks on, so flags are compared too
OPTIONS = CompletionOptions(top_k=2, min_score=0.05, batch_size=16, check_noise=True, error_rate=0.1, flag_min=0.1)


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return trained_model()[1]



def written(uri: str) -> tuple[set[tuple], list[str]]:
    """Every predicted edge but its run id, and the run ids."""
    with open_store(uri) as store:
        edges = {(e.product_id, e.attribute, e.value, e.score, e.raw) for e in store.iter_triples(["model"])}
        return edges, [r.run_id for r in store.list_runs()]


def test_shards_write_the_values_of_one_process_into_one_run(model_dir: Path, tmp_path: Path) -> None:
    single, sharded = store_copy(tmp_path, "one.db"), store_copy(tmp_path, "shards.db")
    with one_thread():
        whole = complete_store(single, model_dir, OPTIONS, run_id="whole")
        parts = [complete_store(sharded, model_dir, OPTIONS, run_id="split", shard=Shard(i, 3)) for i in (2, 0, 1)]  # any order
    one, ids_one = written(single)
    three, ids_three = written(sharded)
    assert one and any(raw for *_, raw in one)  # predictions and noise suggestions both present
    assert three == one and ids_one == ["whole"] and ids_three == ["split"]
    assert sum(p.products for p in parts) == whole.products and all(p.products for p in parts)
    assert sorted((f.product_id, f.attribute, f.value) for p in parts for f in p.flags) == \
        sorted((f.product_id, f.attribute, f.value) for f in whole.flags)
    with open_store(sharded) as store:
        [run] = store.list_runs()
    assert run.params["shards"] == 3 and run.edges == len(three)


def test_a_shard_needs_a_run_id_and_may_not_replace_a_run(model_dir: Path, tmp_path: Path) -> None:
    uri = store_copy(tmp_path, "g.db")
    with pytest.raises(DataError, match="needs --run-id"):
        complete_store(uri, model_dir, OPTIONS, shard=Shard(0, 2))
    with pytest.raises(DataError, match="--replace-run cannot go with --shard"):
        complete_store(uri, model_dir, OPTIONS, run_id="r", replace_run=True, shard=Shard(0, 2))
    assert written(uri) == (set(), [])


def test_a_shard_refuses_to_join_a_run_made_with_other_settings(model_dir: Path, tmp_path: Path) -> None:
    uri = store_copy(tmp_path, "g.db")
    with one_thread():
        complete_store(uri, model_dir, OPTIONS, run_id="r", shard=Shard(0, 2))
        before = written(uri)
        with pytest.raises(RunExistsError, match="settings top_k"):
            complete_store(uri, model_dir, CompletionOptions(**{**OPTIONS.__dict__, "top_k": 1}), run_id="r", shard=Shard(1, 2))
        with pytest.raises(RunExistsError, match="settings shards"):  # a shard of 3 is not a shard of 2
            complete_store(uri, model_dir, OPTIONS, run_id="r", shard=Shard(1, 3))
    assert written(uri) == before


@pytest.mark.parametrize("count", [1, 2, 3, 7])
@pytest.mark.parametrize("total", [0, 1, 15, 16, 17, 100])
def test_shards_cover_every_batch_once_in_order(count: int, total: int) -> None:
    starts = [s for i in range(count) for s in Shard(i, count).batch_starts(total, 16)]
    assert starts == list(range(0, total, 16))


def test_shard_specs_and_torchrun_ranks() -> None:
    assert parse_shard("1/4") == Shard(1, 4) and parse_shard(" 0 / 1 ") == Shard()
    for bad in ("2/2", "1", "-1/2", "a/b", "0/0"):
        with pytest.raises(DataError, match="--shard|shard"):
            parse_shard(bad)
    assert shard_from_env({"RANK": "1", "WORLD_SIZE": "2"}) == Shard(1, 2)
    assert shard_from_env({}) == Shard() and not shard_from_env({"RANK": "0", "WORLD_SIZE": "1"}).split
