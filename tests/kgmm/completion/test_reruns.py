"""A second completion run never proposes again what the first proposed; a run directory is a model."""

from __future__ import annotations

from pathlib import Path

from graph_store import GraphStore
from kgmm.completion import CompletionOptions, complete_store
from kgmm.completion.complete import resolve_model_dir
from tests.kgmm.completion.test_completion import example_store, model_dir  # noqa: F401  (fixtures)


def test_rerun_skips_values_an_earlier_run_proposed(example_store: GraphStore, model_dir: Path) -> None:  # noqa: F811
    options = CompletionOptions(top_k=2, min_score=0.0, check_noise=False)
    first = complete_store(example_store, model_dir, options, run_id="first")
    second = complete_store(example_store, model_dir, options, run_id="second")
    assert first.written > 0 and second.written == 0 and second.skipped == first.written
    triples = [(e.product_id, e.attribute, e.value) for e in example_store.iter_triples(["model"])]
    assert len(triples) == len(set(triples)) == first.written  # no value proposed twice
    example_store.delete_run("second")
    example_store.delete_run("first")


def test_run_directory_resolves_to_its_final_model(model_dir: Path) -> None:  # noqa: F811
    run_dir = model_dir.parent  # trained_model() saves the pretraining run's final model in run/model
    assert resolve_model_dir(run_dir) == model_dir
    assert resolve_model_dir(model_dir) == model_dir


def test_complete_store_takes_a_store_the_way_pretrain_does(example_store: GraphStore, model_dir: Path) -> None:  # noqa: F811
    from graph_store import StoreSpec

    uri = example_store.uri
    report = complete_store(StoreSpec(uri), model_dir, CompletionOptions(check_noise=False), dry_run=True)
    assert report.products > 0 and report.written == 0
    assert complete_store(uri, model_dir, CompletionOptions(check_noise=False), dry_run=True).predictions == report.predictions
