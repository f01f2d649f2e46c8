"""Components chosen by name, so a config file names them as strings.

Each registry maps a name to ``"module:attribute"`` and imports it only when asked:
checking a config does not import the model. An unknown name is a
:class:`~kgmm.errors.ConfigError` that lists the known ones. Code outside kgmm (a plugin,
a test) adds a part with :meth:`Registry.register`, giving the object itself.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .errors import ConfigError


class Registry:
    """Names of one kind of component -> where the component lives.

    Args:
        kind: what the names are, for messages ("text encoder").
        entries: name -> ``"module:attribute"`` (relative to ``kgmm``).
    """

    def __init__(self, kind: str, entries: dict[str, str]) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = dict(entries)

    @property
    def names(self) -> list[str]:
        return list(self._entries)

    def check(self, name: str) -> str:
        """``name`` if known, else a ConfigError listing the known names."""
        if name not in self._entries:
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {', '.join(self._entries)}")
        return name

    def get(self, name: str) -> Any:
        """The registered component (a class or function)."""
        entry = self._entries[self.check(name)]
        if not isinstance(entry, str):
            return entry
        module, _, attribute = entry.partition(":")
        return getattr(importlib.import_module(module, __package__), attribute)

    def register(self, name: str, component: Any) -> None:
        """Add ``component`` (the object, or ``"module:attribute"``) under a new ``name``."""
        if name in self._entries:
            raise ConfigError(f"{self.kind} {name!r} is registered already")
        self._entries[name] = component

    def unregister(self, name: str) -> None:
        self._entries.pop(self.check(name))

    @contextmanager
    def registered(self, name: str, component: Any) -> Iterator[None]:
        """``component`` registered as ``name`` for the duration of a ``with`` block."""
        self.register(name, component)
        try:
            yield
        finally:
            self.unregister(name)


TEXT_ENCODERS = Registry(
    "text encoder",
    {"bert": ".modalities.text:build_bert", "pretrained": ".modalities.text:load_pretrained_bert"},
)
GNNS = Registry(
    "knowledge GNN",
    {"rgcn": ".model.knowledge:RGCNStack", "transformer": ".model.knowledge:TransformerStack", "none": ".model.knowledge:NoGNN"},
)
FUSIONS = Registry(
    "fusion strategy",
    {"mean": ".model.fusion:MeanFusion", "gated": ".model.fusion:GatedFusion", "gumbel": ".model.fusion:GumbelFusion"},
)
SCORES = Registry(
    "score function",
    {
        "distmult": ".model.scoring:DistMult",
        "transe": ".model.scoring:TransE",
        "rotate": ".model.scoring:RotatE",
        "bilinear": ".model.scoring:Bilinear",
        "mlp": ".model.scoring:MLPScore",
    },
)
MODALITIES = Registry(
    "modality",
    {
        "text": ".modalities.text:TEXT",
        "image": ".modalities.image:IMAGE",
        "table": ".modalities.table:TABLE",
        "video": ".modalities.video:VIDEO",
        "audio": ".modalities.audio:AUDIO",
        "lexical": ".modalities.lexical:LEXICAL",
    },
)
"""Modalities (:class:`kgmm.modalities.Modality`): an input builder and an encoder each."""
MOM_TARGETS = Registry("masked-image target", {"pixels": ".objectives.mom:pixel_loss", "nce": ".objectives.mom:nce_loss"})
OBJECTIVES = Registry(
    "objective",
    {
        "mlm": ".objectives.mlm:MaskedLanguageModelling",
        "mom": ".objectives.mom:MaskedImageModelling",
        "lpm": ".objectives.lpm:LinkPrediction",
        "distill": ".objectives.distill:SelfDistillation",
        "contrastive": ".objectives.contrastive:ModalityContrast",
    },
)
"""Training objectives (:class:`kgmm.objectives.base.Objective`), in the order their terms are summed."""

LIGHT_CNN = "light"
"""The built-in latency-sized backbone (:class:`kgmm.modalities.image.LightCNN`), not a timm name."""

LIGHT_BACKBONES = ("mobilenetv3_small_050", "mobilenetv3_small_100", "resnet18", "resnet10t", "efficientnet_b0", LIGHT_CNN)
"""Image backbones known to train at a useful speed on a CPU; any timm CNN name works too."""


def check_image_backbone(name: str) -> str:
    """``name`` if it is ``light`` or timm knows it, else a ConfigError listing light choices and near names."""
    if name in LIGHT_BACKBONES:  # before importing timm: ``light`` never needs it
        return name
    import timm

    known = timm.list_models()
    if name in known:
        return name
    close = difflib.get_close_matches(name, known, n=4)
    hint = f"; close: {', '.join(close)}" if close else ""
    raise ConfigError(
        f"unknown image backbone {name!r}; known light CNNs: {', '.join(LIGHT_BACKBONES)} "
        f"(or any of timm's {len(known)} models{hint})"
    )
