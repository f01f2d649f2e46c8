"""Errors of the model and training code, each meant to be read by a person.

The CLI prints ``str(err)`` as one line and exits non-zero, so every message says what
is wrong and what to do about it.
"""

from __future__ import annotations


class KgmmError(Exception):
    """Base class of kgmm's model and training errors."""


class ConfigError(KgmmError, ValueError):
    """A config file or value is invalid (unknown key, unknown component, bad range)."""


class DataError(KgmmError):
    """The graph cannot be trained on (for instance, it holds no products)."""


class CheckpointError(KgmmError):
    """A checkpoint is missing, corrupt, foreign, or was made for another graph."""


class TrainingError(KgmmError):
    """Training cannot go on (for instance, out of memory on the first batch)."""
