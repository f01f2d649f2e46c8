"""kgmm: knowledge-aware multimodal learning on product knowledge graphs.

Import-light on purpose: the graph-building CLI must not pay for torch. The model,
sampling and training subpackages import torch themselves.
"""

__version__ = "0.1.0"
