"""The K3M model: modality encoders, interaction, structure aggregation, scoring heads."""

from .dims import ModelDims
from .k3m import K3M, K3MOutput

__all__ = ["K3M", "K3MOutput", "ModelDims"]
