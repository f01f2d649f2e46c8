"""Ablations: the full K3M under several configs, on the same splits, in one evaluation.

An ablation file is YAML mapping a row name to config changes (``section: {field: value}``)
applied on top of the run's ``--config``; an empty mapping is the base config itself::

    k3m: {}
    + distillation: {objectives: {distill: 1.0}}
    + behaviour: {objectives: {distill: 1.0}, knowledge: {behaviour: true}, train: {behaviour_steps: 200}}

Changes accumulate only when the file says so (each row is complete), so a table reads
"K3M, + distillation, + behaviour, ..." exactly as the rows are written. Every row trains
the full K3M on the same training graph with the same step budget and seed, and is scored
on the same test triples, with each of its modalities alone as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from ..config import SECTIONS, Config, validate
from ..errors import ConfigError


@dataclass(frozen=True)
class AblationRow:
    """One row: its name and the config changes it makes to the base config."""

    name: str
    changes: dict[str, dict]

    def apply(self, base: Config) -> Config:
        """The base config with this row's changes, validated."""
        config = base
        for section, values in self.changes.items():
            config = config.replace(section, **values)
        validate(config, f"ablation row {self.name!r}")
        return config

    def describe(self) -> str:
        """``objectives.distill=1.0, train.behaviour_steps=200``, or ``base config``."""
        parts = [f"{s}.{k}={v}" for s, values in self.changes.items() for k, v in values.items()]
        return ", ".join(parts) if parts else "base config"


def load_ablation(path: Path, base: Config) -> list[AblationRow]:
    """Read and check an ablation file against ``base``.

    Raises:
        ConfigError: naming the file and the row, for unreadable YAML, an unknown section or
            field, or a value the config refuses.
    """
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read the ablation file: {err}") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{path}: expected a mapping of row name -> config changes")
    rows = []
    for name, changes in data.items():
        changes = changes or {}
        if not isinstance(changes, dict) or not all(isinstance(v, dict) for v in changes.values()):
            raise ConfigError(f"{path}: row {name!r}: expected section: {{field: value}} mappings")
        unknown = sorted(set(changes) - set(SECTIONS))
        if unknown:
            raise ConfigError(f"{path}: row {name!r}: unknown section {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
        row = AblationRow(str(name), {s: dict(v) for s, v in changes.items()})
        try:
            row.apply(base)
        except (ConfigError, TypeError, ValueError) as err:
            raise ConfigError(f"{path}: row {name!r}: {err}") from None
        rows.append(row)
    return rows
