"""`complete_store` on real stores (every backend) with a really trained tiny model:
undo removes exactly one run, the same model and seed write the same values, catalog facts
are never touched, a model's own facts are hidden when it judges them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.kgmm.k3m_testing import EXAMPLES, example_snapshot, one_thread
from tests.kgmm.completion.trained_model import trained_model

from graph_store import AttributeEdge, GraphStore, ProductNode, RunInfo, open_store
from kg_builder import build_graph, open_catalog
from kgmm.schema import EdgeKind
from kgmm.completion import CompletionOptions, complete_store, load_calibration
from kgmm.completion.alignment import align_snapshot
from kgmm.ranking import Applicability
from kgmm.completion.hiding import hide_facts
from kgmm.data.batches import batch_generator
from kgmm.data.views import ViewData
from kgmm.model import K3M

OPTIONS = CompletionOptions(top_k=2, min_score=0.05, batch_size=64, check_noise=False)


@pytest.fixture(scope="module")
def model_dir() -> Path:
    """A tiny model really trained for 12 steps on the example catalog."""
    return trained_model()[1]


@pytest.fixture
def example_store(tmp_path: Path) -> GraphStore:
    """A fresh embedded store holding the example catalog (for tests about the model, not the backend)."""
    shutil.copy(trained_model()[0], tmp_path / "example.db")
    with open_store(str(tmp_path / "example.db")) as store:
        yield store


def built(store: GraphStore) -> GraphStore:
    build_graph(open_catalog(EXAMPLES / "catalog.jsonl"), store)
    return store


def run(store: GraphStore, model_dir: Path, run_id: str, **changes) -> object:
    options = CompletionOptions(**{**OPTIONS.__dict__, **changes})
    with one_thread():
        return complete_store(store, model_dir, options, run_id=run_id)


def test_undo_removes_exactly_its_run_and_nothing_else(empty_store: GraphStore, model_dir: Path) -> None:
    store = built(empty_store)
    before = list(store.iter_triples())
    first = run(store, model_dir, "first")
    assert first.written > 0 and first.written == store.list_runs()[0].edges
    after_first = set(store.iter_triples())
    other = AttributeEdge(before[0].product_id, "occasion", "hand-written", "model", score=0.5, run_id="second")
    store.write_predictions(RunInfo("second", "by hand"), [other])
    assert store.delete_run("first") == first.written
    assert set(store.iter_triples()) == set(before) | {other}
    assert [r.run_id for r in store.list_runs()] == ["second"]
    assert {e for e in after_first if e.run_id == "first"} and not any(e.run_id == "first" for e in store.iter_triples())


def test_completing_twice_with_the_same_model_and_seed_writes_the_same_values(empty_store: GraphStore, model_dir: Path) -> None:
    store = built(empty_store)
    values = {}
    for rid in ("a", "b"):  # one after the other: a rerun beside the first would skip what the first proposed
        run(store, model_dir, rid, check_noise=True)
        values[rid] = {(e.product_id, e.attribute, e.value, round(e.score, 5), e.raw) for e in store.iter_triples(["model"])}
        assert {r.run_id: r.model_version for r in store.list_runs()}[rid].startswith("model@")
        store.delete_run(rid)
    assert values["a"] and values["a"] == values["b"]


def test_predictions_fill_applicable_missing_attributes_only(example_store: GraphStore, model_dir: Path) -> None:
    store = example_store
    facts = {(e.product_id, e.attribute) for e in store.iter_triples(["catalog", "text"])}
    catalog_before = sorted(store.iter_triples(["catalog", "text"]))
    report = run(store, model_dir, "only-missing", top_k=3, min_score=0.2)
    predicted = [e for e in store.iter_triples(["model"])]
    assert predicted and all(e.score >= 0.2 and e.raw is None for e in predicted)
    assert not {(e.product_id, e.attribute) for e in predicted} & facts  # only attributes the product lacks
    per_pair: dict = {}
    for e in predicted:
        per_pair[(e.product_id, e.attribute)] = per_pair.get((e.product_id, e.attribute), 0) + 1
    assert max(per_pair.values()) <= 3
    snapshot = store.snapshot()
    applies = Applicability(snapshot)
    index = snapshot.product_index()
    assert all(snapshot.attributes.index(a) in applies.missing(index[p]) for p, a in per_pair)
    assert sorted(store.iter_triples(["catalog", "text"])) == catalog_before  # catalog and text facts untouched
    assert report.calibration.temperature == load_calibration(model_dir).temperature


def test_noise_flags_are_written_as_explained_suggestions(example_store: GraphStore, model_dir: Path) -> None:
    store = example_store
    # a permissive threshold: every catalog value the model can judge is flagged, so the plumbing is visible
    report = run(store, model_dir, "noise", check_noise=True, flag_min=0.0, min_score=0.0)
    assert report.flags and report.checked >= len(report.flags)
    catalog = {(e.product_id, e.attribute, e.value) for e in store.iter_triples(["catalog"])}
    for flag in report.flags[:50]:
        assert (flag.product_id, flag.attribute, flag.value) in catalog
        assert flag.suggestion != flag.value and 0 <= flag.value_score <= 1
    suggestions = [e for e in store.iter_triples(["model"]) if e.raw and e.raw.startswith("suspect catalog value")]
    assert len(suggestions) == len({(f.product_id, f.attribute, f.suggestion) for f in report.flags})
    said = [n for n in report.notes if n.startswith("noise flags:")]
    assert len(said) == 1 and "learnt from" in said[0] and "2.0% of values wrong" in said[0]  # the run says what its flags rest on


def test_dry_run_writes_nothing(empty_store: GraphStore, model_dir: Path) -> None:
    store = built(empty_store)
    before = sorted(store.iter_triples())
    with one_thread():
        report = complete_store(store, model_dir, OPTIONS, dry_run=True)
    assert report.predictions > 0 and report.written == 0 and report.sample
    assert sorted(store.iter_triples()) == before and store.list_runs() == []


def test_hidden_facts_leave_the_input_and_nothing_else(model_dir: Path) -> None:
    model = K3M.from_pretrained(model_dir).eval()
    snapshot = example_snapshot()
    data = ViewData(snapshot, model.tokenizer, model.config, model.num_patches)
    rows = list(range(10))
    batch = data.build(rows, batch_generator(0, 5), train=False)
    hidden_values = {2: batch.kv_value[2, batch.kv_mask[2]][:2]}
    hidden = hide_facts(data.build(rows, batch_generator(0, 5), train=False), hidden_values, len(snapshot.values))
    removed = set(hidden_values[2].tolist())
    assert not removed & set(hidden.kv_value[2, hidden.kv_mask[2]].tolist())
    assert torch.equal(hidden.kv_mask[[0, 1, 3]], batch.kv_mask[[0, 1, 3]])
    src, dst = hidden.edge_index
    inward = hidden.edge_kind == EdgeKind.VALUE_TO_PRODUCT
    product = torch.where(inward, dst, src)
    value = torch.where(inward, src, dst)
    fact = (inward | (hidden.edge_kind == EdgeKind.PRODUCT_TO_VALUE)) & (product == 2)
    assert not removed & set(hidden.node_key[value[fact]].tolist())
    assert hidden.edge_index.shape[1] < batch.edge_index.shape[1]
    with torch.no_grad():
        a, b = model(batch, heads=False).product, model(hidden, heads=False).product
    assert torch.allclose(a[[0, 1, 3]], b[[0, 1, 3]], atol=1e-5) and not torch.allclose(a[2], b[2])


def test_a_changed_store_is_read_with_the_model_id_maps(model_dir: Path, tmp_path: Path) -> None:
    model = K3M.from_pretrained(model_dir)
    snapshot = example_snapshot()
    store = str(shutil.copy(trained_model()[0], tmp_path / "changed.db"))
    with open_store(store) as graph:
        graph.upsert_products([ProductNode("new-1", "Steel Mug", category=("Kitchen & Dining", "Mugs"))],
                              [AttributeEdge("new-1", "color", "never seen before"), AttributeEdge("new-1", "material", "steel")])
        changed = graph.snapshot()
    aligned, dropped = align_snapshot(changed, model.id_maps)
    assert aligned.values == snapshot.values and aligned.attributes == snapshot.attributes
    assert dropped >= 1 and aligned.num_products == snapshot.num_products + 1
    order = np.lexsort((aligned.edge_value, aligned.edge_product))
    assert np.array_equal(order, np.arange(aligned.num_edges))
    with open_store(store) as graph, one_thread():
        report = complete_store(graph, model_dir, OPTIONS, run_id="changed")
    assert report.products == snapshot.num_products + 1 and any("never seen" in n for n in report.notes)
