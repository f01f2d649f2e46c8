"""Snapshot -> HeteroData keeps every edge, its reverse, ids and modality flags, and samples."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from torch_geometric.sampler import NodeSamplerInput

from graph_store import GraphStore
from kg_builder import build_graph, open_catalog
from kgmm.schema import EdgeKind
from kgmm.data import CATEGORY, PRODUCT, VALUE, relation_name, snapshot_to_heterodata
from kgmm.sampling import TypedNeighborSampler


@pytest.fixture
def snapshot(example_catalog: Path, empty_store: GraphStore):
    build_graph(open_catalog(example_catalog), empty_store)
    return empty_store.snapshot()


def test_every_has_edge_and_its_reverse(snapshot) -> None:
    data = snapshot_to_heterodata(snapshot)
    triples = set()
    for index, relation in enumerate(data.relations):
        forward = data[PRODUCT, relation, VALUE].edge_index
        assert forward.dtype == torch.int64
        assert torch.equal(data[VALUE, f"rev_{relation}", PRODUCT].edge_index, forward.flip(0))
        assert (data[VALUE].attribute[forward[1]] == index).all()
        triples |= {(p, index, v) for p, v in forward.t().tolist()}
    expected = set(zip(snapshot.edge_product.tolist(), snapshot.edge_attribute.tolist(), snapshot.edge_value.tolist()))
    assert triples == expected and len(expected) == snapshot.num_edges


def test_categories_ids_and_modalities(snapshot) -> None:
    data = snapshot_to_heterodata(snapshot)
    in_category = data[PRODUCT, "in_category", CATEGORY].edge_index
    assert in_category.size(1) == int((snapshot.product_category >= 0).sum())
    child, parent = data[CATEGORY, "child_of", CATEGORY].edge_index
    for c, p in zip(child.tolist()[:50], parent.tolist()[:50]):
        assert data.categories[c].startswith(data.categories[p] + " > ")
    assert data.product_ids == snapshot.product_ids and data[PRODUCT].num_nodes == 126
    assert data[PRODUCT].has_image.dtype == torch.bool and bool(data[PRODUCT].has_title.all())
    assert data.snapshot_hash == snapshot.content_hash()


def test_relation_names_are_pyg_safe() -> None:
    assert relation_name("model  name") == "model_name"
    assert relation_name("a__b") == "a_b"


def test_sampler_walks_from_products_to_values_and_back(snapshot) -> None:
    data = snapshot_to_heterodata(snapshot)
    sampler = TypedNeighborSampler(data, [5, 3], seed=0)
    out = sampler.sample_from_nodes(NodeSamplerInput(None, torch.arange(8), input_type=PRODUCT))
    assert out.node[PRODUCT][:8].tolist() == list(range(8))
    assert out.node[VALUE].numel() > 0 and out.node[CATEGORY].numel() > 0
    for edge_type, row in out.row.items():
        if row.numel() == 0:
            continue
        src, _, dst = edge_type
        global_src = out.node[src][row]
        global_dst = out.node[dst][out.col[edge_type]]
        stored = data[edge_type].edge_index[:, out.edge[edge_type]]
        assert torch.equal(stored, torch.stack([global_src, global_dst]))


# -- behaviour edges: (product, <kind>, product) ------------------------------------------------------


@pytest.fixture
def behaviour_snapshot(example_catalog: Path, empty_store: GraphStore):
    from kg_builder import open_pairs

    build_graph(open_catalog(example_catalog), empty_store, behaviour=[open_pairs(example_catalog.parent / "behaviour.csv")])
    return empty_store.snapshot()


def test_no_behaviour_no_behaviour_edge_types(snapshot) -> None:
    data = snapshot_to_heterodata(snapshot)
    assert not [t for t in data.edge_types if t[0] == PRODUCT and t[2] == PRODUCT]
    assert "behaviour_kinds" not in data


def test_one_undirected_weighted_edge_type_per_kind(behaviour_snapshot) -> None:
    snap = behaviour_snapshot
    data = snapshot_to_heterodata(snap)
    assert data.behaviour_kinds == ["co_purchase", "co_view", "same_query"]
    total = 0
    for index, kind in enumerate(data.behaviour_kinds):
        store = data[PRODUCT, kind, PRODUCT]
        chosen = snap.behaviour_kind == index
        pairs = set(zip(snap.behaviour_src[chosen].tolist(), snap.behaviour_dst[chosen].tolist()))
        edges = store.edge_index.t().tolist()
        assert {tuple(e) for e in edges} == pairs | {(b, a) for a, b in pairs} and len(edges) == 2 * len(pairs)
        assert store.edge_weight.dtype == torch.float32 and store.edge_weight.shape == (len(edges),)
        weight = dict(zip(map(tuple, edges), store.edge_weight.tolist()))
        assert all(weight[(a, b)] == weight[(b, a)] for a, b in pairs)
        total += len(pairs)
    assert total == snap.num_behaviour_edges == 275
    # the knowledge graph's own edge types are exactly those of the graph without behaviour
    plain = snapshot_to_heterodata(dataclasses.replace(snap, behaviour_kinds=[], behaviour_src=snap.behaviour_src[:0],
                                                       behaviour_dst=snap.behaviour_dst[:0], behaviour_kind=snap.behaviour_kind[:0],
                                                       behaviour_weight=snap.behaviour_weight[:0]))
    assert set(data.edge_types) - set(plain.edge_types) == {(PRODUCT, k, PRODUCT) for k in data.behaviour_kinds}


def test_a_products_behaviour_neighbours_are_sampled(behaviour_snapshot) -> None:
    snap = behaviour_snapshot
    data = snapshot_to_heterodata(snap)
    kind = data.behaviour_kinds.index("co_view")
    seed = int(snap.behaviour_src[snap.behaviour_kind == kind][0])
    expected = set(snap.behaviour_dst[(snap.behaviour_src == seed) & (snap.behaviour_kind == kind)].tolist())
    expected |= set(snap.behaviour_src[(snap.behaviour_dst == seed) & (snap.behaviour_kind == kind)].tolist())
    out = TypedNeighborSampler(data, [-1], seed=0).sample_from_nodes(NodeSamplerInput(None, torch.tensor([seed]), input_type=PRODUCT))
    edge_type = (PRODUCT, "co_view", PRODUCT)
    neighbours = set(out.node[PRODUCT][out.row[edge_type]].tolist())
    assert neighbours == expected and (out.node[PRODUCT][out.col[edge_type]] == seed).all()


def test_subgraphs_leave_behaviour_out_unless_given_an_edge_kind(behaviour_snapshot) -> None:
    from kgmm.data.subgraph import SubgraphSampler

    snap = behaviour_snapshot
    data = snapshot_to_heterodata(snap)
    plain = snapshot_to_heterodata(dataclasses.replace(snap, behaviour_kinds=[], behaviour_src=snap.behaviour_src[:0],
                                                       behaviour_dst=snap.behaviour_dst[:0], behaviour_kind=snap.behaviour_kind[:0],
                                                       behaviour_weight=snap.behaviour_weight[:0]))
    args = ([3, 2], torch.from_numpy(snap.value_attribute), torch.from_numpy(snap.product_category))
    seeds, hidden = torch.arange(6), torch.zeros(0, dtype=torch.long)
    default = SubgraphSampler(data, *args).sample(seeds, hidden, torch.Generator().manual_seed(1))
    k3m = SubgraphSampler(plain, *args).sample(seeds, hidden, torch.Generator().manual_seed(1))
    for name in ("node_kind", "node_key", "node_attribute", "edge_index", "edge_kind", "edge_attribute"):
        assert torch.equal(getattr(default, name), getattr(k3m, name)), name  # exactly K3M's subgraph
    assert (PRODUCT, "co_view", PRODUCT) in data.edge_types  # the caller's graph is untouched
    with_behaviour = SubgraphSampler(data, *args, behaviour_edge_kind=6).sample(seeds, hidden, torch.Generator().manual_seed(1))
    chosen = with_behaviour.edge_kind == EdgeKind.BEHAVIOUR
    assert chosen.any() and (with_behaviour.edge_attribute[chosen] == -1).all()
    ends = with_behaviour.edge_index[:, chosen]
    assert (with_behaviour.node_kind[ends] == 0).all()  # product to product
    with pytest.raises(ValueError):
        SubgraphSampler(data, *args, behaviour_edge_kind=2)
