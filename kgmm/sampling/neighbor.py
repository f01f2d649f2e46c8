"""A pure-PyTorch neighbour sampler that plugs into PyG's loaders.

PyG's own ``NeighborSampler`` needs ``pyg-lib`` or ``torch-sparse``; neither
has wheels for our platform, so :class:`TypedNeighborSampler` re-implements the
same contract (:class:`torch_geometric.sampler.BaseSampler`) with batched
tensor ops only.  Semantics follow pyg-lib's ``neighbor_sample``:

* directed sampling on *incoming* edges: for edge type ``(src, rel, dst)``
  the frontier nodes of type ``dst`` pick among their in-edges, and the
  picked ``src`` nodes join the next frontier;
* each hop samples from the nodes first reached in the previous hop;
* node numbering is seeds first, then first-seen order, per node type;
* ``row``/``col`` are local ``src``/``dst`` indices, ``edge`` global edge ids
  (``edge_permutation`` is ``None``, so loaders copy them into ``e_id``);
* ``disjoint=True`` gives every seed its own subtree and a ``batch`` vector.

The cost of a hop must not grow with the number of edge types (product graphs
have one per attribute, ~1,200 for the Flipkart catalog), so all edge types
between the same two node types share one
:class:`~kgmm.sampling.relations.RelationGroup` and are sampled with one
vectorised call; the result is split back per edge type once per batch.

Only the default ``subgraph_type='directional'`` is supported, and temporal
sampling is not.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from itertools import pairwise
from typing import Any, Union

import torch
from torch import Tensor
from torch_geometric.data import Data, HeteroData
from torch_geometric.sampler import (
    BaseSampler,
    EdgeSamplerInput,
    HeteroSamplerOutput,
    NegativeSampling,
    NodeSamplerInput,
    SamplerOutput,
)
from torch_geometric.sampler.base import NumNeighbors
from torch_geometric.typing import EdgeType, NodeType

from .csr import CSC
from .dedup import FirstSeenTable, KeyNodeSet, TableNodeSet
from .edges import EdgeChunk, cat, intra_op_threads, split_by_edge_type
from .link import link_seeds, wrap_batch_modulo
from .relations import (
    GroupFanout,
    GroupSample,
    RelationGroup,
    build_relation_group,
    sample_group,
    stable_argsort,
)

NumNeighborsLike = Union[list[int], dict[EdgeType, list[int]], NumNeighbors]

# Internal names used to run a homogeneous graph through the hetero code path.
_NODE: NodeType = "_node"
_EDGE: EdgeType = (_NODE, "_to", _NODE)

_MIX = 0x9E3779B97F4A7C15  # golden-ratio constant for seed mixing



class TypedNeighborSampler(BaseSampler):
    """Vectorised uniform neighbour sampler for ``Data`` and ``HeteroData``.

    Example:
        >>> sampler = TypedNeighborSampler(hetero_data, [10, 5], seed=0)
        >>> loader = NodeLoader(hetero_data, sampler, input_nodes=("product", None),
        ...                     batch_size=1024)

    Args:
        data: ``Data`` with ``edge_index`` and ``num_nodes``, or
            ``HeteroData`` whose node types all know ``num_nodes`` and whose
            edge types all have ``edge_index`` (``[2, E]``, row 0 = source).
        num_neighbors: fan-out per hop; a list (same for every edge type),
            a dict ``{edge_type: [k_1, ..., k_L]}`` (every edge type listed,
            or use ``default``) or a PyG ``NumNeighbors``.  ``-1`` = all
            neighbours, ``0`` = skip the edge type in that hop.
        replace: sample with replacement.
        disjoint: build one subtree per seed (nodes are then duplicated across
            subtrees and ``batch`` maps each node to its seed).
        seed: seed of the private ``torch.Generator``.  ``None`` draws one
            from the global RNG, so ``torch.manual_seed`` still reproduces.
        default: fan-out for edge types missing from a dict ``num_neighbors``.
        subgraph_type: only ``"directional"`` is supported.
        num_threads: torch intra-op threads while sampling (restored after
            each call); ``None`` keeps the caller's setting.  The default 1 is
            fastest for batch-sized ops (see :func:`intra_op_threads`).
    """

    def __init__(
        self,
        data: Data | HeteroData,
        num_neighbors: NumNeighborsLike,
        *,
        replace: bool = False,
        disjoint: bool = False,
        seed: int | None = None,
        default: list[int] | None = None,
        subgraph_type: str = "directional",
        num_threads: int | None = 1,
    ) -> None:
        if str(getattr(subgraph_type, "value", subgraph_type)) != "directional":
            raise NotImplementedError("only subgraph_type='directional' is supported")
        if isinstance(data, HeteroData):
            self.is_hetero = True
            self.node_types, self.edge_types = data.metadata()
            self.num_nodes: int | dict[NodeType, int] = {}
            for nt in self.node_types:
                n = data[nt].num_nodes
                if n is None:
                    raise ValueError(f"node type {nt!r} has no num_nodes")
                self.num_nodes[nt] = int(n)
            self._num_nodes = dict(self.num_nodes)
            self._node_types = list(self.node_types)
            self._edge_types = list(self.edge_types)
            edge_indices = {}
            for et in self._edge_types:
                if "edge_index" not in data[et]:
                    raise ValueError(f"edge type {et} has no edge_index")
                edge_indices[et] = data[et].edge_index
        elif isinstance(data, Data):
            self.is_hetero = False
            if data.edge_index is None:
                raise ValueError("data has no edge_index")
            self.num_nodes = int(data.num_nodes)
            self._num_nodes = {_NODE: self.num_nodes}
            self._node_types = [_NODE]
            self._edge_types = [_EDGE]
            edge_indices = {_EDGE: data.edge_index}
        else:
            raise TypeError(f"expected Data or HeteroData, got {type(data).__name__}")
        self._build_groups(edge_indices)

        self.replace = bool(replace)
        self.disjoint = bool(disjoint)
        self.num_threads = num_threads
        self._set_num_neighbors(num_neighbors, default)
        if seed is None:
            seed = int(torch.randint(2**62, (1,)).item())
        self.reseed(seed)
        self._scratch = threading.local()  # per-thread dedup tables, built lazily

    def __getstate__(self) -> dict[str, Any]:
        # Thread-local scratch is neither picklable nor worth shipping.
        state = self.__dict__.copy()
        state.pop("_scratch", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._scratch = threading.local()

    # Configuration ######################################################

    def _build_groups(self, edge_indices: dict[EdgeType, Tensor]) -> None:
        """One :class:`RelationGroup` per (source type, destination type).

        Groups are ordered by their first edge type.  ``_interleaved`` marks
        source types whose groups' edge types interleave in edge-type order:
        only for those must a hop re-sort the merged candidates by edge type
        to keep pyg-lib's first-seen numbering.
        """
        members: dict[tuple[NodeType, NodeType], list[int]] = defaultdict(list)
        for i, et in enumerate(self._edge_types):
            members[(et[0], et[-1])].append(i)
        self._groups: list[RelationGroup] = []
        for (src_t, dst_t), idx in members.items():  # dict order = first edge type
            types = [self._edge_types[i] for i in idx]
            self._groups.append(
                build_relation_group(
                    types,
                    [edge_indices[et] for et in types],
                    idx,
                    self._num_nodes[src_t],
                    self._num_nodes[dst_t],
                )
            )
        self._group_of: dict[EdgeType, tuple[int, int]] = {
            et: (g, r)
            for g, group in enumerate(self._groups)
            for r, et in enumerate(group.edge_types)
        }
        spans: dict[NodeType, list[tuple[int, int]]] = defaultdict(list)
        for group in self._groups:
            spans[group.src_type].append((int(group.type_index[0]), int(group.type_index[-1])))
        self._interleaved: set[NodeType] = {
            nt for nt, s in spans.items() if any(a[1] > b[0] for a, b in pairwise(s))
        }

    @property
    def relation_groups(self) -> list[RelationGroup]:
        """The sampler's adjacency: one group per (source, destination) type."""
        return list(self._groups)

    def nbytes(self) -> int:
        """Bytes held by the sampler's adjacency tensors."""
        return sum(group.nbytes() for group in self._groups)

    @property
    def num_neighbors(self) -> NumNeighbors:
        """The fan-outs as a PyG ``NumNeighbors``."""
        return self._num_neighbors

    @num_neighbors.setter
    def num_neighbors(self, value: NumNeighborsLike) -> None:
        self._set_num_neighbors(value, None)

    def _set_num_neighbors(self, value: NumNeighborsLike, default: list[int] | None) -> None:
        if not isinstance(value, NumNeighbors):
            value = NumNeighbors(value, default)
        if self.is_hetero:
            fanouts = value.get_values(self.edge_types)
        else:
            raw = value.get_values()
            if isinstance(raw, dict):
                raise ValueError("a homogeneous graph takes a list of fan-outs")
            fanouts = {_EDGE: raw}
        hops = {len(v) for v in fanouts.values()}
        if len(hops) > 1:
            raise ValueError("every edge type needs the same number of hops")
        self._num_neighbors = value
        self._fanouts: dict[EdgeType, list[int]] = {
            k: [int(x) for x in v] for k, v in fanouts.items()
        }
        self.num_hops = hops.pop() if hops else 0
        # [group][hop] -> fan-out of every relation of the group in that hop
        self._group_fanouts: list[list[GroupFanout]] = [
            [
                GroupFanout.of([self._fanouts[et][hop] for et in g.edge_types])
                for hop in range(self.num_hops)
            ]
            for g in self._groups
        ]

    def reseed(self, seed: int) -> None:
        """Restart the private random stream from ``seed``."""
        self.seed = int(seed)
        self._generator = torch.Generator().manual_seed(self.seed)
        self._worker_key: tuple | None = None

    @property
    def generator(self) -> torch.Generator:
        """The generator to use in this process.

        DataLoader workers start from a copy of the parent's generator; left
        alone they would draw identical streams and repeat each epoch.  Each
        worker therefore reseeds once from ``(seed, worker_info.seed)``, which
        PyTorch derives from the loader's own RNG: reproducible under
        ``torch.manual_seed`` and different per worker and per epoch.
        """
        info = torch.utils.data.get_worker_info()
        if info is not None:
            key = (os.getpid(), info.seed)
            if self._worker_key != key:
                mixed = (self.seed * _MIX + info.seed) % (2**63 - 1)
                self._generator = torch.Generator().manual_seed(mixed)
                self._worker_key = key
        return self._generator

    @property
    def edge_permutation(self) -> None:
        """``None``: sampled edge ids are already ids of the original graph."""
        return None

    def csc(self, edge_type: EdgeType | None = None) -> CSC:
        """The CSC layout of ``edge_type`` alone (omit for homogeneous graphs).

        The sampler itself reads :attr:`relation_groups`; for an edge type
        that shares its group with others this CSC is rebuilt on demand.
        """
        g, r = self._group_of[_EDGE if edge_type is None else edge_type]
        return self._groups[g].edge_type_csc(r)

    # BaseSampler API ####################################################

    def sample_from_nodes(
        self, index: NodeSamplerInput, **kwargs: Any
    ) -> SamplerOutput | HeteroSamplerOutput:
        """Sample the neighbourhood of ``index.node``.

        ``metadata`` is ``(input_id, time)`` as ``NodeLoader`` expects.
        """
        if index.time is not None:
            raise NotImplementedError("temporal sampling is not supported")
        node_type = self._input_node_type(index.input_type)
        with intra_op_threads(self.num_threads):
            out = self._sample({node_type: index.node})
        out.metadata = (index.input_id, index.time)
        return self._finalise(out)

    def sample_from_edges(
        self,
        index: EdgeSamplerInput,
        neg_sampling: NegativeSampling | None = None,
    ) -> SamplerOutput | HeteroSamplerOutput:
        """Sample the neighbourhood of both endpoints of ``index``'s links.

        Negative links are drawn first (``neg_sampling``: binary or triplet,
        as in PyG), then all endpoints are expanded together.  ``metadata``
        matches PyG's ``edge_sample`` so ``LinkLoader`` fills
        ``edge_label_index``/``edge_label`` or ``src_index``/``dst_pos_index``
        /``dst_neg_index``.
        """
        neg_sampling = NegativeSampling.cast(neg_sampling)
        if self.is_hetero:
            if index.input_type is None:
                raise ValueError("heterogeneous link sampling needs an input edge type")
            src_type, dst_type = index.input_type[0], index.input_type[-1]
        else:
            src_type = dst_type = _NODE
        with intra_op_threads(self.num_threads):
            plan = link_seeds(
                index,
                neg_sampling,
                src_type,
                dst_type,
                self._num_nodes[src_type],
                self._num_nodes[dst_type],
                self.disjoint,
                self.generator,
            )
            out = self._sample(plan.seeds)
        if self.disjoint:
            wrap_batch_modulo(out.batch, plan.num_pos)
        out.metadata = plan.metadata
        return self._finalise(out)

    # Core ###############################################################

    def _input_node_type(self, input_type: NodeType | None) -> NodeType:
        if not self.is_hetero:
            return _NODE
        if input_type is None:
            raise ValueError("heterogeneous node sampling needs an input node type")
        if input_type not in self._num_nodes:
            raise ValueError(f"unknown node type {input_type!r}")
        return input_type

    def _node_sets(self) -> dict[NodeType, TableNodeSet | KeyNodeSet]:
        """Fresh per-batch node sets; dense scratch tables are per thread."""
        if self.disjoint:
            return {nt: KeyNodeSet(self._num_nodes[nt]) for nt in self._node_types}
        tables = getattr(self._scratch, "tables", None)
        if tables is None:
            tables = {nt: FirstSeenTable(self._num_nodes[nt]) for nt in self._node_types}
            self._scratch.tables = tables
        return {nt: TableNodeSet(tables[nt]) for nt in self._node_types}

    def _sample(self, seeds: dict[NodeType, Tensor]) -> HeteroSamplerOutput:
        """Expand ``seeds`` hop by hop; returns internal hetero output.

        Per node type a node set numbers nodes in first-seen order; the
        *frontier* of a hop is the slice of nodes first reached in the
        previous hop (global ids, first local index, batch ids if disjoint).
        """
        gen = self.generator
        num_nodes = self._num_nodes
        node_sets = self._node_sets()
        try:
            frontier: dict[NodeType, tuple] = {}
            num_sampled_nodes: dict[NodeType, list[int]] = {nt: [0] for nt in self._node_types}
            next_batch_id = 0
            for nt, seed in seeds.items():
                seed = seed.to(device="cpu", dtype=torch.long).reshape(-1)  # [S]
                if seed.numel() and (int(seed.min()) < 0 or int(seed.max()) >= num_nodes[nt]):
                    raise ValueError(f"seed ids of {nt!r} must lie in [0, {num_nodes[nt]})")
                batch = None
                if self.disjoint:  # batch ids run on across seed types, as in pyg-lib
                    batch = torch.arange(next_batch_id, next_batch_id + seed.numel())
                    next_batch_id += seed.numel()
                node_sets[nt].add_seeds(seed, batch)
                frontier[nt] = (seed, 0, batch)
                num_sampled_nodes[nt][0] = seed.numel()

            hops: list[list[EdgeChunk]] = []
            for hop in range(self.num_hops):
                frontier, chunks = self._hop(hop, frontier, node_sets, gen)
                hops.append(chunks)
                for nt in self._node_types:
                    num_sampled_nodes[nt].append(frontier[nt][0].numel() if nt in frontier else 0)
            row, col, edge, num_sampled_edges = split_by_edge_type(hops, self._edge_types)
            return HeteroSamplerOutput(
                node={nt: node_sets[nt].nodes() for nt in self._node_types},
                row=row,
                col=col,
                edge=edge,
                batch={nt: node_sets[nt].batch() for nt in self._node_types}
                if self.disjoint
                else None,
                num_sampled_nodes=num_sampled_nodes,
                num_sampled_edges=num_sampled_edges,
            )
        finally:
            for node_set in node_sets.values():
                node_set.release()

    def _hop(
        self,
        hop: int,
        frontier: dict[NodeType, tuple],
        node_sets: dict[NodeType, TableNodeSet | KeyNodeSet],
        gen: torch.Generator,
    ) -> tuple[dict[NodeType, tuple], list[EdgeChunk]]:
        """One hop over all relation groups; returns the next frontier and edges.

        Each group is sampled in one call, edge type by edge type (see
        :func:`~kgmm.sampling.relations.sample_group`).  Candidates of all
        groups with the same source type are merged in edge-type order, which
        reproduces pyg-lib's first-seen numbering.
        """
        # src type -> [(sample, col [M] local dst ids, batch [M] | None)]
        by_src: dict[NodeType, list[tuple[GroupSample, Tensor, Tensor | None]]] = defaultdict(list)
        for group, fanouts in zip(self._groups, self._group_fanouts):
            front = frontier.get(group.dst_type)
            if not fanouts[hop].active or front is None or front[0].numel() == 0:
                continue
            front_nodes, front_start, front_batch = front
            sample = sample_group(group, front_nodes, fanouts[hop], self.replace, gen)
            if sample.src.numel() == 0:
                continue
            batch = None if front_batch is None else front_batch.index_select(0, sample.front_pos)
            by_src[group.src_type].append((sample, sample.front_pos + front_start, batch))

        new_frontier: dict[NodeType, tuple] = {}
        chunks: list[EdgeChunk] = []
        for nt, parts in by_src.items():
            type_index = cat([p[0].type_index for p in parts])  # [M]
            src = cat([p[0].src for p in parts])  # [M] global ids
            edge_id = cat([p[0].edge_id for p in parts])  # [M]
            col = cat([p[1] for p in parts])  # [M]
            batch = cat([p[2] for p in parts]) if self.disjoint else None  # [M] | None
            if len(parts) > 1 and nt in self._interleaved:
                order = stable_argsort(type_index, len(self._edge_types))  # [M]
                type_index, src, edge_id, col = (
                    t.index_select(0, order) for t in (type_index, src, edge_id, col)
                )
                batch = None if batch is None else batch.index_select(0, order)
            start = node_sets[nt].size
            new_nodes, new_batch, local = node_sets[nt].merge(src, batch)  # [u], [u] | None, [M]
            if new_nodes.numel():
                new_frontier[nt] = (new_nodes, start, new_batch)
            chunks.append((type_index, local, col, edge_id))
        return new_frontier, chunks

    def _finalise(self, out: HeteroSamplerOutput) -> SamplerOutput | HeteroSamplerOutput:
        """Unwrap the internal single-type output for homogeneous graphs."""
        if self.is_hetero:
            return out
        return SamplerOutput(
            node=out.node[_NODE],
            row=out.row[_EDGE],
            col=out.col[_EDGE],
            edge=out.edge[_EDGE],
            batch=out.batch[_NODE] if out.batch is not None else None,
            num_sampled_nodes=out.num_sampled_nodes[_NODE],
            num_sampled_edges=out.num_sampled_edges[_EDGE],
            metadata=out.metadata,
        )

    def __repr__(self) -> str:
        kind = "hetero" if self.is_hetero else "homo"
        return (
            f"{self.__class__.__name__}({kind}, hops={self.num_hops}, "
            f"replace={self.replace}, disjoint={self.disjoint}, seed={self.seed})"
        )
