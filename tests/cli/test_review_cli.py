"""`kgmm review`: list, accept, reject, keep, bulk accept, undo and export against a real store.

One store per module (the example catalog plus a completion run, tests/review_data.py); each test
decides on products the others leave alone, so the order does not matter.
"""

from __future__ import annotations

import csv
import os
import io
import json
from pathlib import Path

import pytest

from graph_store import AttributeEdge, RunInfo, open_store
from tests.cli.helpers import invoke
from tests.review_data import RUN, TAWA, build_review_store


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    path = str(tmp_path_factory.mktemp("review") / "g.db")
    with open_store(path, create=True) as store:
        proposals = build_review_store(store)
    return path, proposals


def run(*args: str, store: str):
    return invoke("review", *args, "--store", store, env={"KGMM_REVIEWER": "ann"})


def sources(store: str, pid: str, attribute: str) -> set[tuple[str, str]]:
    with open_store(store) as graph:
        return {(e.value, e.source) for e in graph.get_product(pid).edges if e.attribute == attribute}


def test_list_filters_and_formats(scene) -> None:
    store, proposals = scene
    rows = json.loads(run("list", "--format", "json", store=store).stdout)
    assert len(rows) >= 33 and {r["kind"] for r in rows} == {"proposal", "suspect"}
    colour = json.loads(run("list", "--attribute", "Colour", "--min-score", "0.9", "-f", "json", store=store).stdout)
    assert colour and all(r["attribute"] == "color" and r["score"] >= 0.9 for r in colour)
    [flag] = json.loads(run("list", "--suspect", "-f", "json", store=store).stdout)
    assert (flag["product_id"], flag["value"], flag["catalog_value"]) == (TAWA, "silver", "black")
    table = run("list", "--suspect", store=store).stdout
    assert "1 suspect-value suggestions" in table and "silver" in table
    listed = list(csv.DictReader(io.StringIO(run("list", "-f", "csv", "--attribute", "material", store=store).stdout)))
    assert len(listed) == len([p for p in proposals["material"]]) and listed[0]["run_id"] == RUN


def test_accept_and_reject_one_value_then_undo(scene) -> None:
    store, proposals = scene
    first, second = proposals["material"][0], proposals["material"][1]
    accepted = run("accept", first.product_id, "Material", first.value, "--note", "photo", store=store)
    assert accepted.exit_code == 0, accepted.stderr
    assert "accepted" in accepted.stdout and "undo with" in accepted.stdout
    assert sources(store, first.product_id, "material") == {(first.value, "reviewed"), (second.value, "model")}
    assert run("reject", second.product_id, "material", second.value, store=store).exit_code == 0
    assert sources(store, first.product_id, "material") == {(first.value, "reviewed")}
    again = run("accept", first.product_id, "material", first.value, store=store)
    assert again.exit_code == 1 and "already decided" in again.stderr
    undone = run("undo", store=store)  # the latest: the rejection
    assert undone.exit_code == 0 and "undid reject" in undone.stdout
    assert run("undo", first.product_id, "material", first.value, store=store).exit_code == 0
    assert sources(store, first.product_id, "material") == {(first.value, "model"), (second.value, "model")}
    missing = run("undo", first.product_id, "material", first.value, store=store)
    assert missing.exit_code == 1 and "no decision" in missing.stderr


def test_suspect_value_decisions(scene) -> None:
    store, _ = scene
    used = run("accept", TAWA, "color", "silver", store=store)
    assert used.exit_code == 0 and "used the suggestion" in used.stdout and "'black'" in used.stdout
    assert sources(store, TAWA, "color") == {("silver", "reviewed")}
    assert run("undo", TAWA, "color", "silver", store=store).exit_code == 0
    kept = run("keep", TAWA, "color", "silver", store=store)
    assert kept.exit_code == 0 and "kept the catalog value" in kept.stdout
    assert sources(store, TAWA, "color") == {("black", "catalog")}
    with open_store(store) as graph:  # a later run's flag on black is not raised again
        again = AttributeEdge(TAWA, "color", "grey", "model", "suspect catalog value 'black' (p=0.010)", 0.9, "run-2")
        assert graph.write_predictions(RunInfo("run-2"), [again]) == 0
        graph.delete_run("run-2")
    assert run("undo", store=store).exit_code == 0


def test_bulk_accept_dry_run_then_for_real(scene) -> None:
    store, proposals = scene
    high = {e.product_id for e in proposals["color"] if e.score >= 0.95}
    dry = run("accept", "--attribute", "color", "--min-score", "0.95", "--dry-run", store=store)
    assert dry.exit_code == 0 and f"would accept {len(high)} proposals" in dry.stdout
    assert sum(1 for p in high if ("black", "reviewed") in sources(store, p, "color")) == 0
    done = run("accept", "--attribute", "color", "--min-score", "0.95", store=store)
    assert f"accepted {len(high)} proposals" in done.stdout
    assert all(("black", "reviewed") in sources(store, p, "color") for p in high)
    exported = list(csv.DictReader(io.StringIO(run("export", store=store).stdout)))
    assert {r["decision"] for r in exported} >= {"accept"} and all(r["reviewer"] == "ann" for r in exported)
    assert {r["run_id"] for r in exported} == {RUN} and any("bulk accept" in r["note"] for r in exported)


def test_errors_are_one_line_naming_the_thing(scene, tmp_path: Path) -> None:
    store, _ = scene
    ghost = run("accept", "no-such-product", "color", "red", store=store)
    assert ghost.exit_code == 1 and "no product 'no-such-product'" in ghost.stderr
    both = run("accept", TAWA, "color", "red", "--min-score", "0.9", store=store)
    assert both.exit_code == 1 and "bulk accept" in both.stderr
    unbounded = run("accept", "--attribute", "color", store=store)
    assert unbounded.exit_code == 1 and "--min-score" in unbounded.stderr
    keep_plain = run("keep", TAWA, "type", "tawa", store=store)
    assert keep_plain.exit_code == 1 and "suspect catalog value" in keep_plain.stderr
    assert run("list", store=str(tmp_path / "none.db")).exit_code == 1


def test_export_neutralises_formulas_and_writes_jsonl(scene, tmp_path: Path) -> None:
    store, proposals = scene
    target = proposals["material"][4]
    assert run("reject", target.product_id, "material", target.value, "--note", "=HYPERLINK(\"x\")", store=store).exit_code == 0
    rows = list(csv.DictReader(io.StringIO(run("export", store=store).stdout)))
    assert any(r["note"] == "'=HYPERLINK(\"x\")" for r in rows)
    out = tmp_path / "decisions.jsonl"
    assert run("export", "--format", "jsonl", "--out", str(out), store=store).exit_code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert any(r["note"] == "=HYPERLINK(\"x\")" for r in lines)  # exact in JSON


def test_serve_refuses_other_hosts_without_a_token_and_serves_loopback(scene) -> None:
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    from tests.cli.helpers import ROOT

    store, _ = scene
    refused = invoke("serve", "--host", "0.0.0.0", "--store", store)
    assert refused.exit_code == 1 and "--token" in refused.stderr and "0.0.0.0" in refused.stderr
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("KGMM_SERVE_TOKEN", None)
    server = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--store", store, "--port", str(port)], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, page = time.monotonic() + 60, None
        while page is None and time.monotonic() < deadline and server.poll() is None:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
            except OSError:
                time.sleep(0.3)
        assert page is not None and "open proposals left" in page, server.stderr.read() if server.poll() is not None else ""
    finally:
        server.terminate()
        server.wait(timeout=30)
