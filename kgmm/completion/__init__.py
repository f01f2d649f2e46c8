"""Completing a product graph with a trained model: values for missing attributes, noise flags.

``complete_store`` is the function behind ``kgmm complete``; the pieces are small modules:
hiding a product's own facts (``hiding``), a model's id maps over a changed store
(``alignment``) and the per-batch scoring (``engine``). Which attributes apply, the scores
and their calibration are :mod:`kgmm.ranking`'s, shared with training and evaluation.
"""

from ..ranking.calibration import Calibration, load_calibration
from .complete import CompletionReport, complete_store
from .engine import CompletionOptions, NoiseFlag, Prediction

__all__ = ["Calibration", "CompletionOptions", "CompletionReport", "NoiseFlag", "Prediction", "complete_store", "load_calibration"]
