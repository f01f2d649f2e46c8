"""Running the real ``kgmm`` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def kgmm(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m cli.main ARGS`` and capture its output."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **(env or {})}
    full_env.pop("KGMM_STORE", None)
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=cwd or ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def invoke(*args: str, env: dict | None = None):
    """Run ``kgmm ARGS`` in this process with typer's CliRunner (no interpreter start-up: the
    cheap checks); returns the result with ``exit_code``, ``stdout``, ``stderr`` and ``exception``."""
    from typer.testing import CliRunner

    from cli.main import app

    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200", "KGMM_STORE": None, **(env or {})})
