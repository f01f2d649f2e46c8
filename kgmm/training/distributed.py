"""Devices, precision and multi-process (DDP) setup.

``torchrun --nproc_per_node N -m cli.main pretrain ...`` runs the same command in N
processes: each reads ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``, joins one process group
(NCCL on GPUs, Gloo on CPUs) and trains on its own slice of every global batch; rank 0
writes logs, checkpoints and the final model.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as dist

from graph_store.cpus import usable_cpus

from ..errors import ConfigError


@dataclass(frozen=True)
class Runtime:
    """Where this process trains and how."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    bf16: bool = False

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def autocast(self) -> Callable:
        """A context-manager factory: bf16 autocast, or nothing."""
        if not self.bf16:
            return nullcontext
        return lambda: torch.autocast(self.device.type, dtype=torch.bfloat16)

    def describe(self) -> str:
        kind = self.device.type if self.device.type != "cuda" else torch.cuda.get_device_name(self.device)
        extra = f", {self.world_size} processes" if self.distributed else ""
        return f"{kind}{' (bf16)' if self.bf16 else ''}{extra}"


def choose_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto``: CUDA when available, then Apple MPS, then CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device {name!r}: known: auto, cpu, cuda, cuda:N, mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device {name!r}: CUDA is not available on this machine (use auto or cpu)")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def setup(device_name: str, precision: str, cpu_threads: int) -> Runtime:
    """Pick the device, join the process group under torchrun, set CPU threads."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = choose_device(device_name, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads if cpu_threads > 0 else default_cpu_threads(world_size))
    if precision == "bf16":
        bf16 = True
    elif precision == "auto":
        bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    else:
        bf16 = False
    return Runtime(device=device, rank=rank, world_size=world_size, local_rank=local_rank, bf16=bf16)


def default_cpu_threads(processes: int = 1) -> int:
    """Half the cores per process, at least one.

    On a shared 2-core machine two OpenMP threads made a training step ~10x slower than
    one (each waits for the other to be scheduled); half the cores leaves room for the
    batch builder and other jobs.
    """
    return max(1, usable_cpus() // (2 * processes))


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(runtime: Runtime) -> None:
    if runtime.distributed:
        dist.barrier()
