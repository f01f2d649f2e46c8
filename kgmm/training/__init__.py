"""Pretraining: the loop, checkpoints, evaluation, metrics and the ``pretrain`` pipeline."""

from .pipeline import PretrainResult, load_for_inference, pretrain

__all__ = ["PretrainResult", "load_for_inference", "pretrain"]
