"""Running the real ``conveyor`` command from tests, on an instance of their own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CONVEYOR = [sys.executable, "-m", "conveyor.cli"]


def home_env(home: Path) -> dict[str, str]:
    """This process's environment with ``CONVEYOR_HOME`` at ``home`` and no database URL."""
    env = {**os.environ, "CONVEYOR_HOME": str(home)}
    env.pop("CONVEYOR_DATABASE_URL", None)
    return env


def conveyor(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``conveyor ARGS`` to the end and return it, output captured as text."""
    return subprocess.run(
        [*CONVEYOR, *args], env=env, capture_output=True, text=True, timeout=timeout
    )
