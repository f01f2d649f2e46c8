"""The graph's schema as the model sees it: node kinds, edge kinds, sources and pair keys.

One owner for numbers that several layers must agree on. The subgraph sampler writes
node and edge kinds, the knowledge encoder embeds them, batch views and fact hiding
filter by them; before this module each of them spelt the integers out by hand.

Edge kinds are the relations of the flattened subgraph (:mod:`kgmm.data.subgraph`):
a fact is two directed edges (value -> product and product -> value), a category
membership two more, the category tree two more; behaviour edges (product <-> product)
are a seventh kind that only models configured with ``knowledge.behaviour`` embed.

A (product, value) pair is packed into one int64 key, ``product * num_values + value``,
so that sets of pairs can be compared with ``torch.isin``; :func:`pair_key` is the only
place that packs it.
"""

from __future__ import annotations

from enum import IntEnum

from graph_store import SourceCode

__all__ = ["EdgeKind", "NodeKind", "SourceCode", "KNOWLEDGE_EDGE_KINDS", "FACT_EDGE_KINDS", "CATEGORY_EDGE_KINDS", "pair_key",
           "num_edge_kinds"]


class NodeKind(IntEnum):
    """What a subgraph node is (``Batch.node_kind``)."""

    PRODUCT = 0
    VALUE = 1
    CATEGORY = 2


class EdgeKind(IntEnum):
    """The relation of a subgraph edge (``Batch.edge_kind``)."""

    VALUE_TO_PRODUCT = 0
    PRODUCT_TO_VALUE = 1
    CATEGORY_TO_PRODUCT = 2
    PRODUCT_TO_CATEGORY = 3
    CHILD_TO_PARENT = 4
    PARENT_TO_CHILD = 5
    BEHAVIOUR = 6


KNOWLEDGE_EDGE_KINDS = 6
"""Edge kinds of the knowledge graph proper (every kind before :attr:`EdgeKind.BEHAVIOUR`)."""

FACT_EDGE_KINDS = (EdgeKind.VALUE_TO_PRODUCT, EdgeKind.PRODUCT_TO_VALUE)
CATEGORY_EDGE_KINDS = (EdgeKind.CATEGORY_TO_PRODUCT, EdgeKind.PRODUCT_TO_CATEGORY)


def num_edge_kinds(behaviour: bool) -> int:
    """Rows of the model's edge-kind table: the six knowledge kinds, plus behaviour when sampled."""
    return KNOWLEDGE_EDGE_KINDS + 1 if behaviour else KNOWLEDGE_EDGE_KINDS


def pair_key(product, value, num_values: int):
    """The int64 key of (product, value) pairs; works on ints, NumPy arrays and tensors alike."""
    return product * num_values + value
