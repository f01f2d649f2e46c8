"""kgmm: knowledge-aware multimodal learning on product knowledge graphs.

Import-light on purpose: the graph-building CLI must not pay for torch. The model,
sampling and training subpackages import torch themselves.
"""

from .version import __version__

__all__ = ["K3M", "__version__"]


def __getattr__(name: str):
    """``from kgmm import K3M`` works, while ``import kgmm`` alone still does not import torch."""
    if name == "K3M":
        from .model import K3M

        return K3M
    raise AttributeError(f"module 'kgmm' has no attribute {name!r}")
