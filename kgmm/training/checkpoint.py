"""Training checkpoints: a saved model plus everything needed to continue exactly.

A checkpoint directory is a ``save_pretrained`` directory (config, weights, tokenizer, id
maps, snapshot hash) plus ``training_state.pt``: optimizer, scheduler, step, early-
stopping counters and every random state (Python, NumPy, torch CPU and CUDA). Batches are
a function of (seed, position), so the step is all the data pipeline needs. It is read
with ``weights_only=True``: a checkpoint from elsewhere cannot run code.

Directories are written under a temporary name and renamed, so a run killed while
saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import HASH_VERSION, hash_version_of
from ..errors import CheckpointError
from ..model.io import read_meta

STATE_FILE = "training_state.pt"
CHECKPOINTS = "checkpoints"


@dataclass
class TrainingState:
    """Counters of a run that a resume continues from."""

    step: int = 0
    best_mrr: float = -1.0
    best_step: int = 0
    evals_without_improvement: int = 0
    stopped_early: bool = False
    seconds: float = 0.0


def capture_rng() -> dict[str, Any]:
    """Every global random state, in tensor/plain form (loadable with weights_only)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(directory: Path, model, optimizer, scheduler, state: TrainingState, config_hash: str) -> Path:
    """Write model + training state into ``directory`` atomically (tmp dir, then rename)."""
    tmp = directory.with_name(directory.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    torch.save(
        {
            "state": asdict(state),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": capture_rng(),
            "config_hash": config_hash,
            "snapshot_hash": model.snapshot_hash,
        },
        tmp / STATE_FILE,
    )
    if directory.exists():
        shutil.rmtree(directory)
    tmp.rename(directory)
    return directory


def save_model_atomically(model, directory: Path) -> Path:
    """``save_pretrained`` into a temporary directory, then swap it in."""
    tmp = directory.with_name(directory.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    if directory.exists():
        shutil.rmtree(directory)
    tmp.rename(directory)
    return directory


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` step checkpoints."""
    found = sorted((run_dir / CHECKPOINTS).glob("step-*[0-9]"))
    for old in found[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory from ``--resume``: the directory itself, or a run's latest.

    Raises:
        CheckpointError: nothing resumable there.
    """
    path = Path(path)
    if (path / STATE_FILE).is_file():
        return path
    if not path.exists():
        raise CheckpointError(f"--resume {path}: no such directory")
    found = sorted((path / CHECKPOINTS).glob("step-*[0-9]"))
    found = [f for f in found if (f / STATE_FILE).is_file()]
    if found:
        return found[-1]
    if (path / "config.json").is_file():
        read_meta(path)  # a foreign directory fails here with its own message
        raise CheckpointError(f"--resume {path}: a saved model without training state (resume from a checkpoints/step-N directory)")
    raise CheckpointError(f"--resume {path} is not a kgmm checkpoint or run directory (no {STATE_FILE}, no {CHECKPOINTS}/)")


def load_training_state(directory: Path) -> dict[str, Any]:
    """The checked contents of ``training_state.pt``."""
    try:
        payload = torch.load(directory / STATE_FILE, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{directory}: no {STATE_FILE}") from None
    except Exception as err:  # noqa: BLE001 - unpickling errors come in many types
        raise CheckpointError(f"{directory}/{STATE_FILE} is corrupt or not a kgmm training state ({type(err).__name__})") from None
    needed = {"state", "optimizer", "scheduler", "rng", "config_hash", "snapshot_hash"}
    if not isinstance(payload, dict) or not needed <= set(payload):
        raise CheckpointError(f"{directory}/{STATE_FILE} is not a kgmm training state")
    version = hash_version_of(str(payload["config_hash"]))
    if version != HASH_VERSION:
        raise CheckpointError(
            f"{directory} predates this version of kgmm (its config hash is version {version}, this kgmm's is "
            f"{HASH_VERSION}), so its training state cannot resume: start a new run (the model in it still loads)"
        )
    return payload


class RunLock:
    """``RUN/.lock`` holding the writer's pid: two runs writing one directory would mix
    their checkpoints and metrics. A lock whose process is gone is taken over."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / ".lock"

    def __enter__(self) -> RunLock:
        import os

        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                holder = _pid_in(self.path)
                if holder is not None and holder != os.getpid() and _alive(holder):
                    raise CheckpointError(f"{self.path.parent} is in use by another kgmm pretrain (pid {holder}); use another --out") from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(str(os.getpid()))
            return self
        raise CheckpointError(f"cannot lock {self.path}")

    def __exit__(self, *exc) -> None:
        self.path.unlink(missing_ok=True)


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_directory_of(checkpoint: Path) -> Path:
    """The run directory a ``checkpoints/step-N`` checkpoint belongs to."""
    return checkpoint.parent.parent if checkpoint.parent.name == CHECKPOINTS else checkpoint
