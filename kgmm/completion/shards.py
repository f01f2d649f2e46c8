"""Splitting one completion run over several processes: which products a shard completes.

``kgmm complete --shard i/N`` (or N ranks under ``torchrun``, which set ``RANK`` and
``WORLD_SIZE``) completes the i-th of N disjoint, contiguous product ranges. The ranges
are cut on batch boundaries of one process's run: a batch's neighbour sample is seeded by
its first product and drawn for all its products together, so only identical batches give
identical values. Hence N shards write exactly what one process writes, whatever N.

How shards join one run (see :func:`kgmm.completion.complete.complete`): a sharded run
needs an explicit run id that every shard is given; whichever shard comes first creates the
run (the store keeps the first run record it is given), and every shard then checks that
the run in the store has its model and settings (``params``, which include ``shards``: N)
before writing, so a shard never adds to a run made with another model or other options.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..errors import DataError

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """The ``index``-th (from 0) of ``count`` disjoint product ranges; ``Shard()`` is all products."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise DataError(f"shard {self.index}/{self.count}: need 0 <= i < N (e.g. --shard 0/2 and --shard 1/2)")

    @property
    def split(self) -> bool:
        """True when this is one part of several (a run other processes write too)."""
        return self.count > 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def batch_starts(self, total: int, batch_size: int) -> range:
        """First product of each of this shard's batches: a contiguous share of one process's
        batches (``range(0, total, batch_size)``), the first ``total_batches % N`` shards one more."""
        batches = -(-total // batch_size)
        first = self.index * batches // self.count
        last = (self.index + 1) * batches // self.count
        return range(first * batch_size, min(last * batch_size, total), batch_size)


def parse_shard(text: str) -> Shard:
    """``"i/N"`` -> :class:`Shard`; raises DataError naming the option on anything else."""
    match = _SPEC.match(text or "")
    if not match:
        raise DataError(f"--shard {text!r}: expected i/N with 0 <= i < N, e.g. --shard 0/2")
    return Shard(int(match.group(1)), int(match.group(2)))


def shard_from_env(environ: dict[str, str] | None = None) -> Shard:
    """The shard of this rank under ``torchrun`` (``RANK`` of ``WORLD_SIZE``); ``Shard()`` outside it."""
    env = os.environ if environ is None else environ
    try:
        world, rank = int(env.get("WORLD_SIZE", "1")), int(env.get("RANK", "0"))
    except ValueError:
        raise DataError(f"RANK={env.get('RANK')!r} / WORLD_SIZE={env.get('WORLD_SIZE')!r}: not integers") from None
    return Shard(rank, world) if world > 1 else Shard()
