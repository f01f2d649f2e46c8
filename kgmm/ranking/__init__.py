"""One implementation of ranking values: encode products, score candidates, filtered metrics,
calibrated probabilities, and which attributes apply to a product.

Training-time validation, ``kgmm evaluate`` and ``kgmm complete`` all rank through here,
so a fix to tie handling or filtering reaches every number kgmm prints at once.
"""

from .applicability import Applicability, example_gaps
from .calibration import Calibration, calibrate, load_calibration
from .scoring import encode_products, fact_scores, value_scores
from .task import HITS, RankingTask, ranking_metrics
from .validation import LinkMetrics, Validator

__all__ = [
    "Applicability",
    "Calibration",
    "HITS",
    "LinkMetrics",
    "RankingTask",
    "Validator",
    "calibrate",
    "encode_products",
    "example_gaps",
    "fact_scores",
    "load_calibration",
    "ranking_metrics",
    "value_scores",
]
