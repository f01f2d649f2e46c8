"""What an objective is: a weight, an optional batch transform, the heads it reads, a loss.

The trainer, the progress bar, ``metrics.jsonl`` and the loss plot show whatever terms
the active objectives return, so a new objective needs no change anywhere else: write a
subclass of :class:`Objective` in one file and add one line to
:data:`kgmm.objectives.OBJECTIVES` (or call ``OBJECTIVES.register`` from your own code).
``docs/EXTENDING.md`` walks through it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn

from ..config import Config


class Objective:
    """One training objective.

    Class attributes:
        name: its registry name, and by default its loss term and config weight
            (``objectives.<name>``).
        heads: model heads its loss reads (``"mlm"``, ``"mom"``, ``"lpm"``); the model
            computes only the heads some active objective asks for.
        stage: the batch-building step after which :meth:`transform` runs (``"text"`` or
            ``"image"``), or None for an objective that changes no input.
        importance_column: with ``objectives.importance_weighting`` (SCALE), the modality
            column (0 text, 1 image, 2 knowledge) whose learned importance scales the weight.

    Args:
        config: the run's config.
    """

    name: ClassVar[str] = ""
    heads: ClassVar[tuple[str, ...]] = ()
    stage: ClassVar[str | None] = None
    importance_column: ClassVar[int | None] = None

    def __init__(self, config: Config) -> None:
        self.config = config

    @property
    def weight(self) -> float:
        """How much the loss counts; 0 turns the objective off (``objectives.<name>`` by default)."""
        return float(getattr(self.config.objectives, self.name, 0.0))

    @property
    def terms(self) -> tuple[str, ...]:
        """The names :meth:`loss` may return (logged even when a batch lacks them)."""
        return (self.name,)

    def transform(self, parts: Any, data: Any, generator) -> None:
        """Change a training batch's inputs in place while it is built (after :attr:`stage`).

        Args:
            parts: the batch's named fields built so far (attributes as in
                :class:`kgmm.data.batch.Batch`).
            data: the batch builder (:class:`kgmm.data.batches.PretrainData`): sizes and
                special token ids.
            generator: the batch's random generator; draw only from it.
        """

    def make_head(self, model: nn.Module) -> nn.Module | None:
        """Parameters this objective adds to the model (saved with it), or None."""
        return None

    def loss(self, model: nn.Module, output: Any, batch: Any) -> dict[str, Tensor]:
        """Loss terms of one batch (empty when the batch has no target for this objective)."""
        raise NotImplementedError
