"""Snapshot -> HeteroData keeps every edge, its reverse, ids and modality flags, and samples."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch_geometric.sampler import NodeSamplerInput

from graph_store import GraphStore
from kg_builder import build_graph, open_catalog
from kgmm.data import CATEGORY, PRODUCT, VALUE, relation_name, snapshot_to_heterodata
from kgmm.sampling import NeighborSampler


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
    sampler = NeighborSampler(data, [5, 3], seed=0)
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
