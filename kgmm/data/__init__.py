"""Turning graph snapshots into PyG data for sampling and training."""

from .hetero import CATEGORY, PRODUCT, VALUE, relation_name, snapshot_to_heterodata

__all__ = ["CATEGORY", "PRODUCT", "VALUE", "relation_name", "snapshot_to_heterodata"]
