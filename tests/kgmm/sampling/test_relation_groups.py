"""Tests of the relation-group path: many edge types between the same node types.

Product graphs have one edge type per attribute, so the sampler merges every
edge type between two node types into one :class:`RelationGroup`.  These
tests pin that the merge is invisible: exact pyg-lib output for full fan-out,
per-relation fan-outs, uniformity, and the per-edge-type CSC view.
"""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
with warnings.catch_warnings():  # PyG's import-time torch.jit deprecation noise
    warnings.simplefilter("ignore", FutureWarning)
    pytest.importorskip("torch_geometric")

from torch import Tensor  # noqa: E402
from torch_geometric.data import HeteroData  # noqa: E402
from torch_geometric.loader import NodeLoader  # noqa: E402
from torch_geometric.sampler import NodeSamplerInput  # noqa: E402
from torch_geometric.utils import coalesce  # noqa: E402

from kgmm.sampling import TypedNeighborSampler, build_csc  # noqa: E402
from kgmm.sampling.relations import stable_argsort  # noqa: E402
from kgmm.sampling.select import sample_offsets  # noqa: E402

CHI2_CRIT_999 = {9: 27.877, 19: 43.820, 49: 85.351}


def multi_relation_graph(
    num_relations: int = 40, num_products: int = 150, num_values: int = 60, seed: int = 0
) -> HeteroData:
    """Products -> values over many relations, plus interleaved category edges.

    Edge types are declared relation by relation (forward, reverse), and every
    fifth relation also adds a ``product -> category`` edge type, so the two
    groups with source ``product`` interleave in edge-type order.  Relations
    have different densities, including empty ones and multi-edges.
    """
    g = torch.Generator().manual_seed(seed)
    data = HeteroData()
    data["product"].num_nodes = num_products
    data["value"].num_nodes = num_values
    data["category"].num_nodes = 7
    for r in range(num_relations):
        num_edges = 0 if r == 3 else int(torch.randint(1, 3 * num_products, (1,), generator=g))
        src = torch.randint(num_products, (num_edges,), generator=g)
        dst = torch.randint(num_values if r % 2 else 5, (num_edges,), generator=g)  # some hubs
        ei = torch.stack([src, dst])  # duplicates kept: multi-edges are edges too
        data["product", f"a{r}", "value"].edge_index = ei
        data["value", f"rev_a{r}", "product"].edge_index = ei.flip(0)
        if r % 5 == 0:
            cat = torch.randint(7, (num_products,), generator=g)
            ei = torch.stack([torch.arange(num_products), cat])
            data["product", f"c{r}", "category"].edge_index = ei
            data["category", f"rev_c{r}", "product"].edge_index = ei.flip(0)
    return data


def reference_full_fanout(
    data: HeteroData, seed_type: str, seeds: list[int], num_hops: int
) -> tuple[dict, dict]:
    """pyg-lib's output for fan-out -1, written as plain Python loops.

    Hop by hop, edge type by edge type, frontier node by frontier node, in-edge
    by in-edge (original edge order); a source node gets the next local id the
    first time it is seen.  Returns ``(nodes per type, (row, col, edge) lists
    per edge type)``.
    """
    nodes = {nt: [] for nt in data.node_types}
    local = {nt: {} for nt in data.node_types}
    for v in seeds:
        local[seed_type].setdefault(v, len(nodes[seed_type]))
        nodes[seed_type].append(v)
    frontier = {nt: [] for nt in data.node_types}
    frontier[seed_type] = list(range(len(seeds)))
    edges = {et: [] for et in data.edge_types}
    in_edges = {}
    for et in data.edge_types:
        lists: dict[int, list[int]] = {}
        for e, d in enumerate(data[et].edge_index[1].tolist()):
            lists.setdefault(d, []).append(e)
        in_edges[et] = lists
    for _ in range(num_hops):
        reached = {nt: [] for nt in data.node_types}
        for et in data.edge_types:
            src_t, _, dst_t = et
            src = data[et].edge_index[0].tolist()
            for col in frontier[dst_t]:
                for e in in_edges[et].get(nodes[dst_t][col], []):
                    u = src[e]
                    if u not in local[src_t]:
                        local[src_t][u] = len(nodes[src_t])
                        nodes[src_t].append(u)
                        reached[src_t].append(local[src_t][u])
                    edges[et].append((local[src_t][u], col, e))
        frontier = reached
    return nodes, edges


def seeds_of(nodes, input_type) -> NodeSamplerInput:
    nodes = torch.as_tensor(nodes, dtype=torch.long)
    return NodeSamplerInput(input_id=None, node=nodes, input_type=input_type)


def assert_edges_exist(data: HeteroData, out) -> None:
    for et in data.edge_types:
        src_t, _, dst_t = et
        ei = data[et].edge_index
        assert torch.equal(ei[0, out.edge[et]], out.node[src_t][out.row[et]]), et
        assert torch.equal(ei[1, out.edge[et]], out.node[dst_t][out.col[et]]), et


def chi_square(counts: Tensor) -> float:
    expected = counts.double().mean()
    return float(((counts.double() - expected) ** 2 / expected).sum())


# Exactness ###############################################################


@pytest.mark.parametrize("num_hops", [1, 2, 3])
def test_full_fanout_matches_per_edge_type_reference_exactly(num_hops):
    data = multi_relation_graph()
    seeds = [4, 99, 17, 4000 % 150, 123]
    out = TypedNeighborSampler(data, [-1] * num_hops, seed=0).sample_from_nodes(
        seeds_of(seeds, "product")
    )
    nodes, edges = reference_full_fanout(data, "product", seeds, num_hops)
    for nt in data.node_types:
        assert out.node[nt].tolist() == nodes[nt], nt  # same first-seen numbering
    for et in data.edge_types:
        got = list(zip(out.row[et].tolist(), out.col[et].tolist(), out.edge[et].tolist()))
        assert got == edges[et], et  # same edges, same order
        assert sum(out.num_sampled_edges[et]) == len(edges[et])
    assert sum(sum(v) for v in out.num_sampled_nodes.values()) == sum(map(len, nodes.values()))


@pytest.mark.parametrize("seed_type", ["product", "value"])
def test_neighbour_sets_equal_sampling_each_relation_separately(seed_type):
    data = multi_relation_graph(seed=1)
    seeds = torch.arange(0, data[seed_type].num_nodes, 3)
    out = TypedNeighborSampler(data, [-1], seed=0).sample_from_nodes(seeds_of(seeds, seed_type))
    for et in data.edge_types:
        alone = HeteroData()
        for nt in (et[0], et[-1]):
            alone[nt].num_nodes = data[nt].num_nodes
        alone[et].edge_index = data[et].edge_index
        if et[-1] != seed_type:
            assert out.edge[et].numel() == 0
            continue
        ref = TypedNeighborSampler(alone, [-1], seed=0).sample_from_nodes(seeds_of(seeds, seed_type))
        assert torch.equal(out.edge[et], ref.edge[et]), et
        # Same (source, destination) pairs in global ids.
        assert torch.equal(out.node[et[0]][out.row[et]], ref.node[et[0]][ref.row[et]])
        assert torch.equal(out.node[et[-1]][out.col[et]], ref.node[et[-1]][ref.col[et]])


def test_edge_type_csc_matches_build_csc():
    data = multi_relation_graph()
    sampler = TypedNeighborSampler(data, [2], seed=0)
    for et in data.edge_types:
        ref = build_csc(data[et].edge_index, data[et[0]].num_nodes, data[et[-1]].num_nodes)
        got = sampler.csc(et)
        assert torch.equal(got.colptr, ref.colptr), et
        assert torch.equal(got.row, ref.row), et
        assert torch.equal(got.edge_id, ref.edge_id), et
    assert len(sampler.relation_groups) == 4  # (p, v), (v, p), (p, c), (c, p)
    assert sampler.nbytes() > 0


def test_per_edge_arrays_are_held_as_int32_and_read_as_int64():
    """The sampler keeps sources and edge ids in 4 bytes (half its memory at 1M products); what
    a hop reads of them is int64 and equals the plain sort's int64 answer."""
    from kgmm.sampling.csr import compact

    data = multi_relation_graph()
    sampler = TypedNeighborSampler(data, [2], seed=0)
    for group in sampler.relation_groups:
        assert group.csc.row.dtype == group.csc.edge_id.dtype == torch.int32
    for et in data.edge_types:
        ei = data[et].edge_index
        perm = torch.sort(ei[1], stable=True).indices
        pos = torch.arange(ei.size(1))
        src, edge_id = sampler.csc(et).gather(pos)
        assert src.dtype == edge_id.dtype == torch.int64
        assert torch.equal(src, ei[0][perm]) and torch.equal(edge_id, perm), et
    ids = torch.arange(5)
    assert compact(ids, 2**31 - 1).dtype == torch.int32
    assert compact(ids, 2**31) is ids  # ids past int32 stay int64


@pytest.mark.parametrize("chunk", [1, 3, 1 << 20])
def test_group_arrays_filled_in_chunks_equal_the_whole_array_gather(monkeypatch, chunk):
    """The group's sources and per-type edge ids are gathered a chunk at a time (less memory at
    start-up); any chunk size gives the whole-array ``cat(src)[perm]`` and ``segment_arange(sizes)[perm]``."""
    from kgmm.sampling import relations
    from kgmm.sampling.select import segment_arange

    monkeypatch.setattr(relations, "_GATHER_CHUNK", chunk)
    generator = torch.Generator().manual_seed(chunk)
    sizes = torch.tensor([5, 0, 9, 1, 7])
    src = torch.randint(0, 40, (int(sizes.sum()),), generator=generator)
    perm = torch.randperm(src.numel(), generator=generator)
    row, edge_id = relations._sources_and_ids(src, perm, sizes, num_src=40)
    assert row.dtype == edge_id.dtype == torch.int32
    assert torch.equal(row.long(), src[perm]) and torch.equal(edge_id.long(), segment_arange(sizes)[perm])


# Fan-outs ################################################################


def per_relation_fanouts(data: HeteroData) -> dict:
    choices = [0, 1, 2, 3, 7, -1]
    return {et: [choices[i % 6], choices[(i + 2) % 6]] for i, et in enumerate(data.edge_types)}


@pytest.mark.parametrize("replace", [False, True])
def test_per_relation_fanout_bounds(replace):
    data = multi_relation_graph(seed=2)
    fanouts = per_relation_fanouts(data)
    seeds = torch.arange(0, 150, 2)
    out = TypedNeighborSampler(data, fanouts, replace=replace, seed=0).sample_from_nodes(
        seeds_of(seeds, "product")
    )
    assert_edges_exist(data, out)
    for et in data.edge_types:
        dst_t = et[-1]
        deg = torch.bincount(data[et].edge_index[1], minlength=data[dst_t].num_nodes)
        col_start = 0
        edge_start = 0
        for hop, k in enumerate(fanouts[et]):
            n_front = out.num_sampled_nodes[dst_t][hop]
            n_edges = out.num_sampled_edges[et][hop]
            col = out.col[et][edge_start : edge_start + n_edges] - col_start
            edge = out.edge[et][edge_start : edge_start + n_edges]
            assert bool(((col >= 0) & (col < n_front)).all())
            per_node = torch.bincount(col, minlength=n_front)
            d = deg[out.node[dst_t][col_start : col_start + n_front]]
            if k < 0:
                expected = d
            elif k == 0:
                expected = torch.zeros_like(d)
            elif replace:
                expected = torch.where(d > 0, k, 0)
            else:
                expected = d.clamp(max=k)
            assert torch.equal(per_node, expected), (et, hop, k)
            if not replace:  # distinct in-edges per destination
                key = col * data[et].num_edges + edge
                assert key.unique().numel() == key.numel()
            col_start += n_front
            edge_start += n_edges


def test_sample_offsets_per_segment_fanouts():
    g = torch.Generator().manual_seed(0)
    deg = torch.tensor([0, 4, 9, 30, 500, 7, 7, 100_000, 3, 12])
    k = torch.tensor([3, -1, 3, 5, 5, 0, 2, 4, -1, 12])
    seg, off = sample_offsets(deg, k, False, g)
    expected = torch.where(k < 0, deg, torch.minimum(deg, k))
    assert torch.equal(torch.bincount(seg, minlength=deg.numel()), expected)
    assert bool((off >= 0).all()) and bool((off < deg[seg]).all())
    key = seg * 1_000_000 + off
    assert key.unique().numel() == key.numel()
    seg, off = sample_offsets(deg, k, True, g)
    expected = torch.where(k < 0, deg, torch.where(deg > 0, k, 0))
    assert torch.equal(torch.bincount(seg, minlength=deg.numel()), expected)
    assert bool((off >= 0).all()) and bool((off < deg[seg]).all())
    for i in (k < 0).nonzero().view(-1).tolist():  # "take all" keeps the in-edge order
        assert off[seg == i].tolist() == list(range(int(deg[i])))


# Uniformity ##############################################################


@pytest.mark.parametrize("replace", [False, True])
def test_chi_square_uniform_per_relation_in_one_group(replace):
    """Value 0 has in-edges from three relations (degrees 10, 50, 20) sampled
    with different fan-outs (3, 3, 5) in one group call, next to a dozen
    distractor relations; every relation's edges must be drawn uniformly."""
    degrees, ks = [10, 50, 20], [3, 3, 5]
    data = HeteroData()
    data["product"].num_nodes = 200
    data["value"].num_nodes = 5
    g = torch.Generator().manual_seed(0)
    fanouts = {}
    for r in range(12):
        if r < 3:
            src = torch.randperm(200, generator=g)[: degrees[r]]
            ei = torch.stack([src, torch.zeros_like(src)])
            fanouts[("product", f"a{r}", "value")] = [ks[r]]
        else:  # distractors into other values, some also into value 0
            src = torch.randint(200, (40,), generator=g)
            ei = coalesce(torch.stack([src, torch.randint(5, (40,), generator=g)]))
            fanouts[("product", f"a{r}", "value")] = [r % 4]
        data["product", f"a{r}", "value"].edge_index = ei
    draws = 3000
    sampler = TypedNeighborSampler(data, fanouts, replace=replace, seed=123)
    out = sampler.sample_from_nodes(seeds_of(torch.zeros(draws, dtype=torch.long), "value"))
    for r, (degree, k) in enumerate(zip(degrees, ks, strict=True)):
        et = ("product", f"a{r}", "value")
        assert out.edge[et].numel() == draws * k
        stat = chi_square(torch.bincount(out.edge[et], minlength=degree))
        if not replace:  # k distinct per draw: rescale to chi2(D - 1), see the homo test
            stat *= (degree - 1) / (degree - k)
        assert stat < CHI2_CRIT_999[degree - 1], (et, stat)


# Determinism, disjoint, loaders ##########################################


def test_same_seed_same_batch_on_multi_relation_graph():
    data = multi_relation_graph()
    fanouts = per_relation_fanouts(data)
    seeds = seeds_of(torch.arange(0, 150, 5), "product")
    a = TypedNeighborSampler(data, fanouts, seed=3).sample_from_nodes(seeds)
    b = TypedNeighborSampler(data, fanouts, seed=3).sample_from_nodes(seeds)
    c = TypedNeighborSampler(data, fanouts, seed=4).sample_from_nodes(seeds)
    for field in ("node", "row", "col", "edge"):
        for key, value in getattr(a, field).items():
            assert torch.equal(value, getattr(b, field)[key])
    assert a.num_sampled_edges == b.num_sampled_edges
    assert any(not torch.equal(a.edge[et], c.edge[et]) for et in data.edge_types)


def test_disjoint_on_multi_relation_graph():
    data = multi_relation_graph()
    seeds = torch.tensor([3, 8, 3])
    out = TypedNeighborSampler(data, [3, 2], disjoint=True, seed=0).sample_from_nodes(
        seeds_of(seeds, "product")
    )
    assert_edges_exist(data, out)
    assert torch.equal(out.batch["product"][:3], torch.arange(3))
    for et in data.edge_types:
        src_t, _, dst_t = et
        assert torch.equal(out.batch[src_t][out.row[et]], out.batch[dst_t][out.col[et]])


def test_node_loader_on_multi_relation_graph():
    data = multi_relation_graph()
    for nt in data.node_types:
        data[nt].x = torch.arange(data[nt].num_nodes).float().view(-1, 1)
    sampler = TypedNeighborSampler(data, [4, 2], seed=0)
    loader = NodeLoader(data, sampler, input_nodes=("product", torch.arange(64)), batch_size=32)
    for batch in loader:
        for et in data.edge_types:
            src_t, _, dst_t = et
            ei = batch[et].edge_index
            glob = torch.stack([batch[src_t].n_id[ei[0]], batch[dst_t].n_id[ei[1]]])
            assert torch.equal(glob, data[et].edge_index[:, batch[et].e_id])


def test_stable_argsort_matches_torch_for_both_paths():
    keys = torch.randint(300, (5000,), generator=torch.Generator().manual_seed(0))
    ref = torch.sort(keys, stable=True).indices
    assert torch.equal(stable_argsort(keys, 300), ref)
    assert torch.equal(stable_argsort(keys, 1 << 20), ref)
