"""Temperature fitting: the grid widens when the best temperature is on its edge, and says so."""

from __future__ import annotations

import torch

from kgmm.ranking.calibration import WIDEN_LIMIT, at_edge, calibrate, fit_temperature


def test_temperature_grid_widens_past_twenty_for_overconfident_scores() -> None:
    generator = torch.Generator().manual_seed(0)
    scores = [torch.randn(10, generator=generator) * 200 for _ in range(200)]  # huge margins, right 1 time in 10
    truth = [int(torch.randint(10, (1,), generator=generator)) for _ in scores]
    temperature = fit_temperature(scores, truth)
    assert temperature > 20  # the old fixed grid stopped at 20 (21.24 after refining)
    assert calibrate(scores, truth, "test").temperature == temperature


def test_uninformative_scores_hit_the_widened_edge_and_warn() -> None:
    scores = [torch.tensor([5.0, 0.0, 0.0]) for _ in range(60)]
    truth = [1 if i % 2 else 2 for i in range(60)]  # never the top value: no temperature is hot enough
    calibration = calibrate(scores, truth, "test")
    assert at_edge(calibration.temperature) == "hot" and calibration.temperature <= WIDEN_LIMIT
    assert calibration.warning and "edge of its range" in calibration.warning


def test_well_separated_scores_fit_inside_the_range_without_warning() -> None:
    generator = torch.Generator().manual_seed(1)
    truth = [int(torch.randint(5, (1,), generator=generator)) for _ in range(100)]
    scores = [torch.nn.functional.one_hot(torch.tensor(t), 5).float() * 2 + torch.randn(5, generator=generator) * 1.5 for t in truth]
    calibration = calibrate(scores, truth, "test")
    assert 0.05 < calibration.temperature < 20 and calibration.warning is None
