from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

CONVEYOR = [sys.executable, "-m", "conveyor.cli"]

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """Run the real ``conveyor`` command with its own CONVEYOR_HOME; returns the process."""
    env = {**os.environ, "CONVEYOR_HOME": str(tmp_path / "home"), "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("CONVEYOR_DATABASE_URL", None)
    env.pop("CONVEYOR_DEBUG", None)

    def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CONVEYOR, *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd or tmp_path,
            timeout=60,
        )

    return run


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "pipes.py"
    path.write_text(
        textwrap.dedent("""
        from conveyor import Config, task, workflow

        class Cfg(Config):
            n: int = 1

        @task
        def return_five():
            return 5

        @task
        def add_one(x):
            print("adding", x)
            return x + 1

        @task
        def scaled(x, cfg: Cfg):
            return x * cfg.n

        @task
        def boom(x):
            raise ValueError(f"bad value {x}")

        @workflow
        def do_stuff():
            add_one(return_five())

        @workflow(tags={"team": "a"})
        def failing():
            boom(add_one(return_five()))

        @workflow
        def configured():
            scaled(return_five())
    """)
    )
    return path
