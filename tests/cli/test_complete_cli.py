"""`kgmm complete`, `kgmm runs`, `kgmm query` and `kgmm evaluate` as a user runs them, on
every backend: what the commands print agrees with the store, and undo undoes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import BACKENDS, fresh_neo4j_store
from tests.kgmm.completion.trained_model import trained_model
from tests.cli.helpers import kgmm
from tests.cli.test_pretrain_cli import one_line_error, readme_first_command

from graph_store import open_store

PRODUCT = "189fa66a5fa6f08d2802a62ecf0be298"  # the README's Titan watch: lacks watch features its category has


@pytest.fixture(scope="module")
def model_dir() -> Path:
    """A tiny model trained on the example catalog (shared with the completion tests)."""
    return trained_model()[1]


@pytest.fixture(params=BACKENDS)
def target(request, tmp_path: Path):
    """(store URI, environment for the subprocess, opener) on one backend, holding the example graph."""
    if request.param == "neo4j":
        server = request.getfixturevalue("neo4j_target")
        opened: list = []
        fresh_neo4j_store(server, opened)  # empties the database
        for store in opened:
            store.close()
        uri, env = server.uri, server.env()
        opener = server.open
    else:
        uri, env = str(tmp_path / "g.db"), {}
        opener = lambda: open_store(uri)  # noqa: E731
    built = kgmm("build-kg", "examples/catalog.jsonl", "--store", uri, "--report", str(tmp_path / "r.json"), "-q", env=env)
    assert built.returncode == 0, built.stderr
    return uri, env, opener


def edge_rows(edges) -> list[tuple]:
    return sorted((e.attribute, e.value, e.source, None if e.score is None else round(e.score, 6), e.raw, e.run_id) for e in edges)


def test_complete_query_runs_and_undo(target, model_dir: Path) -> None:
    uri, env, opener = target
    done = kgmm("complete", "--model", str(model_dir), "--store", uri, "--top-k", "2", "--min-score", "0.05", "--run-id", "cli-run", "-q", env=env)
    assert done.returncode == 0, done.stderr
    assert "as run cli-run" in done.stdout and "kgmm complete --undo cli-run" in done.stdout
    runs = json.loads(kgmm("runs", "--store", uri, "--format", "json", env=env).stdout)
    with opener() as graph:
        predicted = list(graph.iter_triples(["model"]))
        assert [r["run_id"] for r in runs] == ["cli-run"] and runs[0]["edges"] == len(predicted) > 0
        assert runs[0]["model_version"].startswith("model@") and runs[0]["params"]["top_k"] == 2

        # query product: every edge of the store, side by side with source and score
        shown = json.loads(kgmm("query", "product", PRODUCT, "--store", uri, "--format", "json", env=env).stdout)["attributes"]
        rows = sorted((r["attribute"], r["value"], r["source"], None if r["score"] is None else round(r["score"], 6), r["raw"], r["run_id"]) for r in shown)
        assert rows == edge_rows(graph.get_product(PRODUCT).edges)
        assert {r["source"] for r in shown} >= {"catalog", "model"}

        # query attribute: with and without predictions, filtered by score
        attribute = max({e.attribute for e in predicted}, key=lambda a: sum(e.attribute == a for e in predicted))
        query = lambda *extra: json.loads(kgmm("query", "attribute", attribute, "--store", uri, "--format", "json", *extra, env=env).stdout)  # noqa: E731
        model_only = query("--source", "model", "--min-score", "0.2")
        expected = graph.products_with_attribute(attribute, sources=["model"], min_score=0.2)
        assert sorted((r["product_id"], r["value"], round(r["score"], 6)) for r in model_only) == sorted((e.product_id, e.value, round(e.score, 6)) for e in expected)
        assert all(r["source"] != "model" for r in query("--no-predicted"))

    undone = kgmm("complete", "--undo", "cli-run", "--store", uri, env=env)
    assert undone.returncode == 0 and f"{len(predicted):,} predicted edges deleted" in undone.stdout
    with opener() as graph:
        assert graph.list_runs() == [] and not list(graph.iter_triples(["model"]))


def test_bad_input_gives_one_clear_line(tmp_path: Path) -> None:
    store = str(trained_model()[0])
    one_line_error(kgmm("complete", "--store", store), "--model DIR is required")
    one_line_error(kgmm("complete", "--store", store, "--undo", "nope"), "no run 'nope'", "kgmm runs")
    one_line_error(kgmm("complete", "--store", store, "--model", str(tmp_path / "missing")), "no such checkpoint directory")
    one_line_error(kgmm("evaluate", "examples/catalog.jsonl", "--models", "bert", "--out", str(tmp_path / "e")), "unknown bert")


def test_readme_first_command_completes_and_shows_the_result() -> None:
    command = readme_first_command()
    assert "kgmm pretrain &&" in command  # the default model, no --config
    tail = command.split("kgmm pretrain", 1)[1]
    assert "kgmm complete --model runs/pretrain " in tail and f"kgmm query product {PRODUCT}" in tail


@pytest.mark.slow
def test_evaluate_quick_writes_report_plots_and_a_calibrated_model(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    done = kgmm("evaluate", "examples/catalog.jsonl", "--out", str(out), "--quick", "-q", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert set(report["models"]) == {"k3m", "k3m-no-knowledge", "text-only", "image-only", "transe", "distmult", "complex", "rotate", "majority", "tfidf"}
    for model in report["models"].values():
        assert set(model["conditions"]) == {"missing_text", "missing_image", "missing_both", "noise_text", "noise_image"}
        assert all(set(v) == {"0.0", "0.5", "1.0"} for v in model["conditions"].values())
        assert 0 <= model["clean"]["mrr"] <= 1
    assert report["models"]["image-only"]["conditions"]["missing_text"]["1.0"] == report["models"]["image-only"]["clean"]
    calibration = report["models"]["k3m"]["calibration"]
    assert calibration["temperature"] > 0 and 0 <= calibration["test"]["ece_after"] <= 1
    assert set(report["targets"]) == {"hits1_vs_best_baseline", "missing_text_50"}
    for name in ("mrr", "hits1", "hits3", "hits10", "accuracy"):
        assert (out / "plots" / f"{name}.png").stat().st_size > 10_000
    assert (out / "reliability.png").stat().st_size > 10_000
    markdown = (out / "report.md").read_text()
    assert "| k3m |" in markdown and "## Calibration" in markdown and "kgmm evaluate examples/catalog.jsonl" in markdown
    # the evaluated model completes a store with the temperature fitted in the evaluation
    store = str(tmp_path / "g.db")
    assert kgmm("build-kg", "examples/catalog.jsonl", "--store", store, "-q").returncode == 0
    completed = kgmm("complete", "--model", str(out / "models" / "k3m" / "best"), "--store", store, "--no-noise", "-q")
    assert completed.returncode == 0, completed.stderr
    assert f"temperature {calibration['temperature']:.2f}" in completed.stdout and "calibrated on" not in completed.stderr
