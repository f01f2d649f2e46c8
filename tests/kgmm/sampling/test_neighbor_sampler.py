"""Correctness tests for kgmm.sampling.TypedNeighborSampler (not just shapes)."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
with warnings.catch_warnings():  # PyG's import-time torch.jit deprecation noise
    warnings.simplefilter("ignore", FutureWarning)
    pytest.importorskip("torch_geometric")

from torch import Tensor  # noqa: E402
from torch_geometric.data import Data, HeteroData  # noqa: E402
from torch_geometric.loader import LinkLoader, NeighborLoader, NodeLoader  # noqa: E402
from torch_geometric.sampler import (  # noqa: E402
    EdgeSamplerInput,
    HeteroSamplerOutput,
    NegativeSampling,
    NodeSamplerInput,
    SamplerOutput,
)
from torch_geometric.utils import coalesce, k_hop_subgraph  # noqa: E402

from kgmm.sampling import TypedNeighborSampler, merge_first_seen  # noqa: E402
from kgmm.sampling.select import sample_offsets  # noqa: E402

# chi2 0.999 quantiles (checked against torch.special.gammaincc).
CHI2_CRIT_999 = {9: 27.877, 19: 43.820, 49: 85.351}


# Helpers ##################################################################


def random_graph(num_nodes: int = 200, num_edges: int = 1500, seed: int = 0) -> Data:
    """Simple directed graph (no duplicate edges) with node/edge features equal to ids."""
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(num_nodes, (2, num_edges), generator=g)
    ei = coalesce(ei, num_nodes=num_nodes)
    return Data(
        edge_index=ei,
        num_nodes=num_nodes,
        x=torch.arange(num_nodes).float().view(-1, 1),
        edge_attr=torch.arange(ei.size(1)).float().view(-1, 1),
    )


def product_graph(num_products: int = 120, num_values: int = 30, seed: int = 0) -> HeteroData:
    """Products -> values for two attributes, with reverse edges, features = ids."""
    g = torch.Generator().manual_seed(seed)
    data = HeteroData()
    data["product"].num_nodes = num_products
    data["product"].x = torch.arange(num_products).float().view(-1, 1)
    data["value"].num_nodes = num_values
    data["value"].x = torch.arange(num_values).float().view(-1, 1)
    for rel, per in (("color", 2), ("material", 1)):
        src = torch.arange(num_products).repeat_interleave(per)
        dst = torch.randint(num_values, (src.numel(),), generator=g)
        ei = coalesce(torch.stack([src, dst]))
        data["product", rel, "value"].edge_index = ei
        data["product", rel, "value"].edge_attr = torch.arange(ei.size(1)).float()
        data["value", f"rev_{rel}", "product"].edge_index = ei.flip(0)
    return data


def in_degree(edge_index: Tensor, num_nodes: int) -> Tensor:
    return torch.bincount(edge_index[1], minlength=num_nodes)


def hop_slices(counts: list[int]) -> list[slice]:
    """Slices of a per-hop concatenated tensor."""
    out, start = [], 0
    for c in counts:
        out.append(slice(start, start + c))
        start += c
    return out


def chi_square(counts: Tensor) -> float:
    expected = counts.double().mean()
    return float(((counts.double() - expected) ** 2 / expected).sum())


def node_input(nodes, input_type=None) -> NodeSamplerInput:
    nodes = torch.as_tensor(nodes, dtype=torch.long)
    return NodeSamplerInput(input_id=torch.arange(nodes.numel()), node=nodes, input_type=input_type)


def assert_edges_exist(out: SamplerOutput, edge_index: Tensor) -> None:
    src = out.node[out.row]
    dst = out.node[out.col]
    assert torch.equal(edge_index[0, out.edge], src)
    assert torch.equal(edge_index[1, out.edge], dst)


# Homogeneous ##############################################################


@pytest.mark.parametrize("replace", [False, True])
def test_sampled_edges_exist_and_fanout_bounds(replace):
    data = random_graph()
    deg = in_degree(data.edge_index, data.num_nodes)
    fanout = [4, 3]
    sampler = TypedNeighborSampler(data, fanout, replace=replace, seed=0)
    seeds = torch.tensor([3, 17, 42, 99, 150, 7])
    out = sampler.sample_from_nodes(node_input(seeds))

    assert_edges_exist(out, data.edge_index)
    assert torch.equal(out.node[: seeds.numel()], seeds)
    assert out.node.numel() == sum(out.num_sampled_nodes)
    assert out.edge.numel() == sum(out.num_sampled_edges)
    if not replace:
        assert out.node.unique().numel() == out.node.numel()
        assert out.edge.unique().numel() == out.edge.numel()

    node_hops = hop_slices(out.num_sampled_nodes)
    for hop, sl in enumerate(hop_slices(out.num_sampled_edges)):
        col = out.col[sl]
        front = node_hops[hop]
        # every edge of hop h points into a node first reached in hop h - 1
        assert bool(((col >= front.start) & (col < front.stop)).all())
        per_node = torch.bincount(col - front.start, minlength=front.stop - front.start)
        frontier_deg = deg[out.node[front]]
        k = fanout[hop]
        expected = torch.where(frontier_deg > 0, k, 0) if replace else frontier_deg.clamp(max=k)
        assert torch.equal(per_node, expected)
        # rows discovered in this hop are numbered after the frontier
        assert int(out.row[sl].max()) < node_hops[hop + 1].stop


def test_without_replacement_never_repeats_neighbour():
    # Multigraph-free star plus random edges; many duplicate seeds => many draws.
    data = random_graph(num_nodes=60, num_edges=900, seed=3)
    sampler = TypedNeighborSampler(data, [5], seed=1)
    seeds = torch.arange(60).repeat(20)  # 1200 independent draws
    out = sampler.sample_from_nodes(node_input(seeds))
    pairs = out.col * data.num_nodes + out.node[out.row]
    assert pairs.unique().numel() == pairs.numel()
    edge_pairs = out.col * data.edge_index.size(1) + out.edge
    assert edge_pairs.unique().numel() == edge_pairs.numel()


@pytest.mark.parametrize("num_hops", [1, 2, 3])
def test_full_fanout_matches_k_hop_subgraph(num_hops):
    data = random_graph(num_nodes=300, num_edges=700, seed=5)
    seeds = torch.tensor([0, 11, 222])
    sampler = TypedNeighborSampler(data, [-1] * num_hops, seed=0)
    out = sampler.sample_from_nodes(node_input(seeds))
    subset, _, _, _ = k_hop_subgraph(
        seeds, num_hops, data.edge_index, num_nodes=data.num_nodes, flow="source_to_target"
    )
    assert torch.equal(out.node.sort().values, subset.sort().values)
    # Edges: exactly the in-edges of nodes within distance < num_hops.
    inner, _, _, _ = k_hop_subgraph(seeds, num_hops - 1, data.edge_index, num_nodes=data.num_nodes)
    expected = torch.isin(data.edge_index[1], inner).nonzero().view(-1)
    assert torch.equal(out.edge.sort().values, expected)


def test_hetero_full_fanout_matches_k_hop_on_homogeneous_view():
    data = product_graph()
    seeds = torch.tensor([0, 5, 77])
    sampler = TypedNeighborSampler(data, [-1, -1], seed=0)
    out = sampler.sample_from_nodes(node_input(seeds, "product"))
    homo = data.to_homogeneous()
    offset = {nt: int((homo.node_type == i).nonzero()[0]) for i, nt in enumerate(data.node_types)}
    subset, _, _, _ = k_hop_subgraph(
        seeds + offset["product"], 2, homo.edge_index, num_nodes=homo.num_nodes
    )
    got = torch.cat([out.node[nt] + offset[nt] for nt in data.node_types])
    assert torch.equal(got.sort().values, subset.sort().values)


@pytest.mark.parametrize(
    "degree,k,replace",
    [(10, 3, False), (50, 3, False), (20, 5, False), (10, 3, True)],
    ids=["shuffle-path", "floyd-path", "boundary-4k", "replace"],
)
def test_chi_square_uniform_over_neighbours(degree, k, replace):
    # Star: node 0 has `degree` in-neighbours 1..degree.
    src = torch.arange(1, degree + 1)
    data = Data(edge_index=torch.stack([src, torch.zeros_like(src)]), num_nodes=degree + 1)
    draws = 3000
    sampler = TypedNeighborSampler(data, [k], replace=replace, seed=123)
    out = sampler.sample_from_nodes(node_input(torch.zeros(draws, dtype=torch.long)))
    assert out.edge.numel() == draws * k
    counts = torch.bincount(out.edge, minlength=degree)
    stat = chi_square(counts)
    if not replace:
        # Each draw holds k *distinct* neighbours, which lowers the variance of
        # the counts by (D - k) / (D - 1); rescale so the statistic is chi2(D-1)
        # (otherwise the test would be too lenient to catch a mild bias).
        stat *= (degree - 1) / (degree - k)
    df = degree - 1
    try:
        from scipy.stats import chi2  # type: ignore

        crit = float(chi2.ppf(0.999, df))
    except ImportError:
        crit = CHI2_CRIT_999[df]
    assert stat < crit, (stat, crit, counts.tolist())


def test_sample_offsets_subset_paths_are_distinct_and_in_range():
    g = torch.Generator().manual_seed(0)
    deg = torch.tensor([0, 1, 5, 6, 7, 19, 20, 21, 1000, 100_000])
    seg, off = sample_offsets(deg, 5, False, g)
    assert torch.equal(torch.bincount(seg, minlength=deg.numel()), deg.clamp(max=5))
    assert bool((off < deg[seg]).all()) and bool((off >= 0).all())
    key = seg * 1_000_000 + off
    assert key.unique().numel() == key.numel()


def test_same_seed_same_batch_different_seed_different_batch():
    data = random_graph()
    seeds = torch.arange(0, 200, 7)

    def run(seed):
        return TypedNeighborSampler(data, [5, 5], seed=seed).sample_from_nodes(node_input(seeds))

    a, b, c = run(7), run(7), run(8)
    for field in ("node", "row", "col", "edge"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    assert a.num_sampled_nodes == b.num_sampled_nodes
    assert not torch.equal(a.edge.sort().values, c.edge.sort().values)
    # The stream advances: a second call on the same sampler differs too.
    s = TypedNeighborSampler(data, [5, 5], seed=7)
    first, second = s.sample_from_nodes(node_input(seeds)), s.sample_from_nodes(node_input(seeds))
    assert not torch.equal(first.edge, second.edge)


def test_isolated_nodes_and_high_degree_hub():
    hub_degree = 100_000
    num_nodes = hub_degree + 10
    src = torch.arange(1, hub_degree + 1)
    ei = torch.stack([src, torch.zeros_like(src)])  # node 0 is the hub
    ei = torch.cat([ei, torch.tensor([[0], [1]])], dim=1)  # 0 -> 1
    data = Data(edge_index=ei, num_nodes=num_nodes)
    isolated = torch.tensor([num_nodes - 1, num_nodes - 2])

    out = TypedNeighborSampler(data, [10, 10], seed=0).sample_from_nodes(node_input(isolated))
    assert torch.equal(out.node, isolated)
    assert out.edge.numel() == 0 and out.num_sampled_nodes == [2, 0, 0]

    out = TypedNeighborSampler(data, [10, 10], seed=0).sample_from_nodes(node_input([1]))
    assert_edges_exist(out, ei)
    assert out.num_sampled_edges == [1, 10]  # 1 <- 0, then 10 of the hub's 100k
    hub_edges = out.edge[1:]
    assert hub_edges.unique().numel() == 10
    assert out.node.numel() == 12

    full = TypedNeighborSampler(data, [-1], seed=0).sample_from_nodes(node_input([0]))
    assert full.edge.numel() == hub_degree


def test_disjoint_subtrees():
    data = random_graph()
    seeds = torch.tensor([1, 2, 1])  # the repeated seed gets its own subtree
    out = TypedNeighborSampler(data, [3, 2], disjoint=True, seed=0).sample_from_nodes(node_input(seeds))
    assert torch.equal(out.batch[:3], torch.arange(3))
    assert torch.equal(out.batch[out.row], out.batch[out.col])
    assert_edges_exist(out, data.edge_index)
    key = out.batch * data.num_nodes + out.node
    assert key.unique().numel() == key.numel()
    for b in range(3):  # each subtree is a valid sample of its own seed
        assert out.node[out.batch == b][0] == seeds[b]


def test_merge_first_seen_order():
    existing = torch.tensor([5, 3, 5])
    cand = torch.tensor([9, 3, 7, 9, 5, 1, 7])
    new, local = merge_first_seen(existing, cand)
    assert new.tolist() == [9, 7, 1]
    assert local.tolist() == [3, 1, 4, 3, 0, 5, 4]


# Heterogeneous ############################################################


def test_hetero_direction_and_edges_exist():
    data = product_graph()
    fanout = {et: [2, 3] for et in data.edge_types}
    fanout[("product", "material", "value")] = [0, 4]
    sampler = TypedNeighborSampler(data, fanout, seed=0)
    seeds = torch.tensor([4, 8, 15])
    out = sampler.sample_from_nodes(node_input(seeds, "product"))
    assert isinstance(out, HeteroSamplerOutput)
    assert torch.equal(out.node["product"][:3], seeds)
    for et in data.edge_types:
        src_t, _, dst_t = et
        ei = data[et].edge_index
        assert torch.equal(ei[0, out.edge[et]], out.node[src_t][out.row[et]])
        assert torch.equal(ei[1, out.edge[et]], out.node[dst_t][out.col[et]])
        assert len(out.num_sampled_edges[et]) == 2
    # Hop 1 starts from products, so only edge types *into* product are used.
    assert out.num_sampled_edges[("product", "color", "value")][0] == 0
    assert out.num_sampled_edges[("value", "rev_color", "product")][0] > 0
    # Hop 2 starts from the values reached in hop 1.
    assert out.num_sampled_edges[("product", "color", "value")][1] > 0
    assert out.num_sampled_nodes["value"][0] == 0
    assert out.num_sampled_nodes["product"][0] == 3
    # Per-node bounds for the 4-neighbour hop of 'material'.
    et = ("product", "material", "value")
    assert int(torch.bincount(out.col[et]).max()) <= 4


def test_hetero_link_sampling_triplet_metadata():
    data = product_graph()
    et = ("product", "color", "value")
    ei = data[et].edge_index[:, :6]
    sampler = TypedNeighborSampler(data, [2, 2], seed=0)
    out = sampler.sample_from_edges(
        EdgeSamplerInput(None, ei[0], ei[1], input_type=et), NegativeSampling("triplet", 3)
    )
    _, src_index, dst_pos, dst_neg, _ = out.metadata
    assert dst_neg.shape == (6, 3)
    assert torch.equal(out.node["product"][src_index], ei[0])
    assert torch.equal(out.node["value"][dst_pos], ei[1])
    assert bool((dst_neg < out.node["value"].numel()).all())


# Loaders ##################################################################


def test_node_loader_homogeneous():
    data = random_graph()
    sampler = TypedNeighborSampler(data, [4, 2], seed=0)
    loader = NodeLoader(data, sampler, input_nodes=torch.arange(50, 150), batch_size=32)
    batches = list(loader)
    assert len(batches) == 4
    for batch in batches:
        assert torch.equal(batch.x.view(-1).long(), batch.n_id)
        assert torch.equal(batch.edge_attr.view(-1).long(), batch.e_id)
        assert batch.batch_size == batch.input_id.numel()
        assert torch.equal(batch.n_id[: batch.batch_size], batch.input_id + 50)
        glob = batch.n_id[batch.edge_index]
        assert torch.equal(glob, data.edge_index[:, batch.e_id])
        assert sum(batch.num_sampled_nodes) == batch.num_nodes
    # PyG's own NeighborLoader accepts it as its sampler too.
    nl = NeighborLoader(data, [4, 2], batch_size=16, neighbor_sampler=sampler)
    first = next(iter(nl))
    assert torch.equal(first.n_id[:16], torch.arange(16))


def test_node_loader_heterogeneous():
    data = product_graph()
    sampler = TypedNeighborSampler(data, [3, 2], seed=0)
    loader = NodeLoader(data, sampler, input_nodes=("product", torch.arange(40)), batch_size=16)
    batch = next(iter(loader))
    assert isinstance(batch, HeteroData)
    assert batch["product"].batch_size == 16
    assert torch.equal(batch["product"].n_id[:16], torch.arange(16))
    assert torch.equal(batch["product"].input_id, torch.arange(16))
    for nt in data.node_types:
        assert torch.equal(batch[nt].x.view(-1).long(), batch[nt].n_id)
    et = ("product", "color", "value")
    assert torch.equal(batch[et].edge_attr.long(), batch[et].e_id)
    for et in data.edge_types:
        src_t, _, dst_t = et
        glob = torch.stack(
            [batch[src_t].n_id[batch[et].edge_index[0]], batch[dst_t].n_id[batch[et].edge_index[1]]]
        )
        assert torch.equal(glob, data[et].edge_index[:, batch[et].e_id])


def test_link_loader_homogeneous_binary():
    data = random_graph()
    sampler = TypedNeighborSampler(data, [3, 2], seed=0)
    label_index = data.edge_index[:, :40]
    loader = LinkLoader(
        data,
        sampler,
        edge_label_index=label_index,
        neg_sampling=NegativeSampling("binary", 1.0),
        batch_size=20,
    )
    for i, batch in enumerate(loader):
        assert batch.edge_label.tolist() == [1.0] * 20 + [0.0] * 20
        pos = batch.n_id[batch.edge_label_index[:, :20]]
        assert torch.equal(pos, label_index[:, 20 * i : 20 * (i + 1)])
        assert torch.equal(batch.input_id, torch.arange(20 * i, 20 * (i + 1)))
        assert torch.equal(batch.n_id[batch.edge_index], data.edge_index[:, batch.e_id])


def test_link_loader_heterogeneous_triplet_and_binary():
    data = product_graph()
    et = ("product", "color", "value")
    sampler = TypedNeighborSampler(data, [2, 2], seed=0)
    loader = LinkLoader(
        data,
        sampler,
        edge_label_index=(et, data[et].edge_index[:, :24]),
        neg_sampling=NegativeSampling("triplet", 2),
        batch_size=12,
    )
    batch = next(iter(loader))
    src = batch["product"].n_id[batch["product"].src_index]
    dst = batch["value"].n_id[batch["value"].dst_pos_index]
    assert torch.equal(torch.stack([src, dst]), data[et].edge_index[:, :12])
    assert batch["value"].dst_neg_index.shape == (12, 2)
    assert torch.equal(batch[et].input_id, torch.arange(12))

    loader = LinkLoader(
        data,
        sampler,
        edge_label_index=(et, data[et].edge_index[:, :24]),
        neg_sampling=NegativeSampling("binary", 2),
        batch_size=12,
    )
    batch = next(iter(loader))
    eli = batch[et].edge_label_index
    assert eli.shape == (2, 36) and batch[et].edge_label.sum() == 12
    pos = torch.stack([batch["product"].n_id[eli[0, :12]], batch["value"].n_id[eli[1, :12]]])
    assert torch.equal(pos, data[et].edge_index[:, :12])


def test_link_sampling_disjoint_batch_wraps_to_positive_index():
    data = random_graph()
    sampler = TypedNeighborSampler(data, [2], disjoint=True, seed=0)
    ei = data.edge_index[:, :5]
    out = sampler.sample_from_edges(EdgeSamplerInput(None, ei[0], ei[1]))
    assert bool((out.batch < 5).all())
    assert torch.equal(out.node[out.metadata[1]], ei)
    assert torch.equal(out.batch[out.row], out.batch[out.col])


def test_dataloader_workers_draw_distinct_reproducible_streams():
    data = random_graph()
    sampler = TypedNeighborSampler(data, [4, 2], seed=0)

    def epoch():
        torch.manual_seed(0)  # governs the DataLoader's per-worker seeds
        loader = NodeLoader(
            data, sampler, input_nodes=torch.tensor([5] * 8), batch_size=4, num_workers=2
        )
        return [b.e_id for b in loader]

    first, again = epoch(), epoch()
    assert not torch.equal(first[0], first[1])  # same seeds, different workers
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


def test_pickle_roundtrip_and_thread_setting_restored():
    import pickle

    data = random_graph()
    before = torch.get_num_threads()
    sampler = TypedNeighborSampler(data, [3, 3], seed=11)
    clone = pickle.loads(pickle.dumps(sampler))  # e.g. spawn-started DataLoader workers
    a = sampler.sample_from_nodes(node_input([1, 2, 3]))
    b = clone.sample_from_nodes(node_input([1, 2, 3]))
    assert torch.equal(a.node, b.node) and torch.equal(a.edge, b.edge)
    assert torch.get_num_threads() == before
