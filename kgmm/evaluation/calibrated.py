"""The calibration entry of a model in the report: one shape for K3M and the text baselines.

Every model whose scores become probabilities is calibrated the same way, so their rows in
the report compare: a temperature fitted on the validation triples' scores (never the test
triples'), then the expected calibration error and precision at each ``--min-score`` on
the test triples.
"""

from __future__ import annotations

from torch import Tensor

from ..ranking import Calibration, RankingTask, calibrate
from ..ranking.calibration import expected_calibration_error, precision_at, reliability, top1


def calibration_entry(val_scores: list[Tensor], val: RankingTask, test_scores: list[Tensor], test: RankingTask,
                      fitted_on: str, snapshot_hash: str | None = None) -> tuple[Calibration, dict]:
    """Fit the temperature on ``val_scores`` and measure it on ``test_scores``.

    Returns:
        the fitted :class:`Calibration` (to save next to a model) and the report's dict.
    """
    fitted = calibrate(val_scores, val.truth, fitted_on, snapshot_hash)
    before = top1(test_scores, test.truth, 1.0)
    after = top1(test_scores, test.truth, fitted.temperature)
    return fitted, {
        "temperature": fitted.temperature,
        "val": {"facts": fitted.facts, "ece_before": fitted.ece_before, "ece_after": fitted.ece_after,
                "nll_before": fitted.nll_before, "nll_after": fitted.nll_after},
        "test": {"facts": len(test), "ece_before": expected_calibration_error(*before),
                 "ece_after": expected_calibration_error(*after),
                 "reliability_before": reliability(*before), "reliability_after": reliability(*after),
                 "precision_at": precision_at(*after)},
    }
