"""Snapshot -> ``torch_geometric.data.HeteroData``.

Node types: ``product``, ``value`` and ``category``. One edge type per attribute,
``(product, <attribute>, value)``, so that link prediction's relation is the attribute;
``(product, in_category, category)`` and ``(category, child_of, category)``; and each with
its reverse (``rev_<relation>``), because PyG samplers walk edges *into* the seed nodes.
Behaviour edges (co-view, co-purchase, ...) become one edge type per kind,
``(product, <kind>, product)``, holding each undirected pair in both directions with its
``edge_weight``; a graph without behaviour edges gets no such type. All indices are int64
tensors made from the snapshot's arrays in one shot: there is no
Python object per edge. Id maps (index -> id) are kept as graph-level lists.
"""

from __future__ import annotations

import re

import numpy as np
import torch
from torch_geometric.data import HeteroData

from graph_store import Snapshot

PRODUCT, VALUE, CATEGORY = "product", "value", "category"
IN_CATEGORY, CHILD_OF = "in_category", "child_of"


def relation_name(attribute: str) -> str:
    """A PyG-safe relation for an attribute: no spaces and no "__" (PyG's key separator)."""
    name = re.sub(r"\s+", "_", attribute.strip())
    return re.sub(r"_{2,}", "_", name) or "attribute"


def _edges(src: np.ndarray, dst: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack([src, dst]).astype(np.int64, copy=False))  # [2, E]


def snapshot_to_heterodata(snapshot: Snapshot, with_hash: bool = True) -> HeteroData:
    """Build the heterogeneous graph of a snapshot.

    ``with_hash=False`` leaves ``snapshot_hash`` None: a caller that knows which graph it built
    from (pretraining's sampler, on the training view) skips hashing every column again (3 s
    at a million products).

    Returns:
        HeteroData with per-product modality flags (``has_title``, ``has_description``,
        ``has_image``: [P] bool), ``value.attribute`` ([V] int64), HAS edges carrying
        ``source`` ([E] int8: 0 catalog, 1 text, 2 model) and ``score`` ([E] float32),
        and graph-level id maps ``product_ids``, ``values``, ``attributes``, ``categories``,
        ``relations`` (attribute index -> relation name) and ``snapshot_hash``. With behaviour
        edges: ``(product, <kind>, product)`` edge types with ``edge_weight`` ([2B_k] float32)
        and the graph-level list ``behaviour_kinds`` (kind index -> relation name).
    """
    data = HeteroData()
    data[PRODUCT].num_nodes = snapshot.num_products
    data[PRODUCT].has_title = torch.from_numpy(snapshot.has_title())
    data[PRODUCT].has_description = torch.from_numpy(snapshot.has_description())
    data[PRODUCT].has_image = torch.from_numpy(snapshot.has_image())
    data[PRODUCT].category = torch.from_numpy(snapshot.product_category.astype(np.int64))
    data[VALUE].num_nodes = len(snapshot.values)
    data[VALUE].attribute = torch.from_numpy(snapshot.value_attribute.astype(np.int64))
    data[CATEGORY].num_nodes = len(snapshot.categories)

    relations = _unique_relations(snapshot.attributes)
    order = np.argsort(snapshot.edge_attribute, kind="stable")  # group edges by attribute
    bounds = np.searchsorted(snapshot.edge_attribute[order], np.arange(len(relations) + 1))
    for index, relation in enumerate(relations):
        chosen = order[bounds[index] : bounds[index + 1]]
        value = snapshot.edge_value[chosen]
        both = torch.from_numpy(np.stack([value, snapshot.edge_product[chosen], value]).astype(np.int64, copy=False))  # [3, E]
        store = data[PRODUCT, relation, VALUE]
        store.edge_index = both[1:]  # (product, value) and (value, product) are two views of one
        store.source = torch.from_numpy(snapshot.edge_source[chosen].astype(np.int8))  # [3, E] table: no reversed copy
        store.score = torch.from_numpy(snapshot.edge_score[chosen].astype(np.float32))
        data[VALUE, f"rev_{relation}", PRODUCT].edge_index = both[:2]

    placed = np.flatnonzero(snapshot.product_category >= 0)
    in_category = _edges(placed, snapshot.product_category[placed])
    data[PRODUCT, IN_CATEGORY, CATEGORY].edge_index = in_category
    data[CATEGORY, f"rev_{IN_CATEGORY}", PRODUCT].edge_index = in_category.flip(0)
    children = np.flatnonzero(snapshot.category_parent >= 0)
    child_of = _edges(children, snapshot.category_parent[children])
    data[CATEGORY, CHILD_OF, CATEGORY].edge_index = child_of
    data[CATEGORY, f"rev_{CHILD_OF}", CATEGORY].edge_index = child_of.flip(0)
    _add_behaviour(data, snapshot)

    data.product_ids = list(snapshot.product_ids)
    data.values = list(snapshot.values)
    data.attributes = list(snapshot.attributes)
    data.categories = list(snapshot.categories)
    data.relations = relations
    data.snapshot_hash = snapshot.content_hash() if with_hash else None
    return data


def _add_behaviour(data: HeteroData, snapshot: Snapshot) -> None:
    """One ``(product, kind, product)`` type per behaviour kind, both directions in one type.

    Both directions share the type (PyG's ``ToUndirected`` convention for same-type edges)
    because the relation is symmetric: a ``rev_`` type would say the same thing twice.
    """
    if not snapshot.num_behaviour_edges:
        return
    for index, kind in enumerate(snapshot.behaviour_kinds):
        chosen = np.flatnonzero(snapshot.behaviour_kind == index)
        src, dst = snapshot.behaviour_src[chosen], snapshot.behaviour_dst[chosen]
        store = data[PRODUCT, kind, PRODUCT]
        store.edge_index = _edges(np.concatenate([src, dst]), np.concatenate([dst, src]))  # [2, 2B_k]
        weight = snapshot.behaviour_weight[chosen].astype(np.float32)
        store.edge_weight = torch.from_numpy(np.concatenate([weight, weight]))  # [2B_k]
    data.behaviour_kinds = list(snapshot.behaviour_kinds)


def _unique_relations(attributes: list[str]) -> list[str]:
    names: list[str] = []
    taken: set[str] = set()
    for index, attribute in enumerate(attributes):
        name = relation_name(attribute)
        if name in taken or name.startswith("rev_") or name in (IN_CATEGORY, CHILD_OF):
            name = f"{name}_{index}"
        taken.add(name)
        names.append(name)
    return names
