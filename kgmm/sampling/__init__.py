"""Neighbour and negative sampling in pure PyTorch.

``TypedNeighborSampler`` implements PyG's ``BaseSampler`` contract without pyg-lib
or torch-sparse, so PyG's ``NodeLoader``/``LinkLoader`` (and ``NeighborLoader``
via ``neighbor_sampler=``) work on this platform.  ``AttributeNegativeSampler``
draws type-constrained negatives for attribute completion.

Importing this package imports torch and torch_geometric; the top-level
``kgmm`` package does not import it eagerly.
"""

from .csr import CSC, build_csc
from .dedup import merge_first_seen
from .negative import AttributeNegativeSampler, NegativeSample, sample_attribute_negatives
from .neighbor import TypedNeighborSampler
from .relations import RelationGroup, build_relation_group
from .select import sample_in_edges, sample_offsets

__all__ = [
    "CSC",
    "AttributeNegativeSampler",
    "NegativeSample",
    "TypedNeighborSampler",
    "RelationGroup",
    "build_csc",
    "build_relation_group",
    "merge_first_seen",
    "sample_attribute_negatives",
    "sample_in_edges",
    "sample_offsets",
]
