"""The K3M model: modality encoders, interaction, structure aggregation, scoring heads."""

from .k3m import K3M, K3MOutput, ModelDims

__all__ = ["K3M", "K3MOutput", "ModelDims"]
