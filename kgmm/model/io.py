"""``save_pretrained`` / ``from_pretrained``: one directory that rebuilds the model exactly.

Layout::

    config.json            format marker, kgmm config, data sizes, snapshot hash
    model.safetensors      every parameter and buffer (BatchNorm statistics included)
    text_encoder/          the transformer's own config.json (no hub access on reload)
    tokenizer.json         the tokenizer (+ tokenizer_config.json)
    id_maps.json           attribute, value, category and product ids of the snapshot

safetensors holds tensors only (no pickle), so loading a file from elsewhere cannot run
code; anything that is not this layout is refused with a :class:`CheckpointError`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..version import __version__
from ..config import Config
from ..errors import CheckpointError, KgmmError
from .dims import ModelDims

FORMAT = "kgmm.k3m"
FORMAT_VERSION = 1


def save_model(model: nn.Module, directory: Path) -> Path:
    """Write ``model`` into ``directory`` (created; existing files replaced)."""
    from safetensors.torch import save_model as save_tensors

    from ..text import save_tokenizer

    directory.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kgmm_version": __version__,
        "config": model.config.to_dict(),
        "dims": model.dims_dict(),
        "snapshot_hash": model.snapshot_hash,
    }
    (directory / "config.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    model.text.hf_config().save_pretrained(str(directory / "text_encoder"))
    save_tensors(model, str(directory / "model.safetensors"))
    (directory / "id_maps.json").write_text(json.dumps(model.id_maps, ensure_ascii=False), encoding="utf-8")
    if model.tokenizer is not None:
        save_tokenizer(model.tokenizer, directory)
    return directory


def read_meta(directory: Path) -> dict:
    """The checked ``config.json`` of a saved model.

    Raises:
        CheckpointError: missing, unreadable, or not written by kgmm.
    """
    path = directory / "config.json"
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such checkpoint directory")
    if not path.is_file():
        raise CheckpointError(f"{directory} is not a kgmm checkpoint (no config.json)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path} is corrupt ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{directory} is not a kgmm checkpoint (config.json has no {FORMAT!r} format marker)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{directory}: checkpoint format {meta.get('format_version')} is not supported (this kgmm reads {FORMAT_VERSION})")
    return meta


def load_model(cls: type, directory: Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild and fill a model from ``directory``; see :func:`save_model`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ..text import load_tokenizer
    from ..modalities.text import rebuild_encoder

    meta = read_meta(directory)
    try:
        saved = meta["config"]
        if isinstance(saved, dict) and isinstance(saved.get("model"), dict) and "evidence" not in saved["model"]:
            saved["model"]["evidence"] = False  # written before the evidence terms existed
        config = Config.from_dict(saved, source=f"{directory}/config.json")
        dims = ModelDims(**meta["dims"])
    except (KeyError, TypeError, KgmmError) as err:
        raise CheckpointError(f"{directory}/config.json is corrupt ({err})") from None
    config.image.weights = None  # the weights file was only the starting point; its tensors are in the checkpoint
    try:
        transformer = rebuild_encoder(directory / "text_encoder")
    except (OSError, ValueError, KgmmError) as err:
        raise CheckpointError(f"{directory}/text_encoder is missing or corrupt ({err})") from None
    model = cls(config, dims, text_transformer=transformer)
    try:
        state = load_file(str(directory / "model.safetensors"), device=str(map_location))
    except (OSError, SafetensorError, RuntimeError) as err:
        raise CheckpointError(f"{directory}/model.safetensors is missing or corrupt ({err})") from None
    if getattr(model, "evidence", None) is not None:
        model.evidence.adopt_shapes(state, "evidence.")  # its tables are sized by the data, not the config
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{directory}/model.safetensors does not match its config ({len(missing)} tensors missing, {len(unexpected)} unexpected)"
        )
    bad = [k for k, v in state.items() if v.shape != own[k].shape]
    if bad:
        raise CheckpointError(f"{directory}/model.safetensors does not match its config (shape of {bad[0]})")
    model.load_state_dict(state, strict=True)
    model.snapshot_hash = meta.get("snapshot_hash")
    try:
        model.id_maps = json.loads((directory / "id_maps.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{directory}/id_maps.json is missing or corrupt ({err})") from None
    if (directory / "tokenizer.json").is_file():
        model.tokenizer = load_tokenizer(directory)
    return model.to(map_location)
