"""Without a PostgreSQL server, the suite's PostgreSQL half is skipped and said so in one
line at the end of the run; where it is required (CI), it fails instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLOSED = "postgresql+psycopg://postgres@127.0.0.1:1/test"
# Two tests, each once on SQLite and once on PostgreSQL.
SUBSET = [
    "tests/storage/test_pools.py::test_an_unknown_pool_has_no_limit",
    "tests/storage/test_sensors.py::test_a_sensor_never_saved_has_no_cursor_and_no_time",
]


def _pytest(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CI", "CONVEYOR_REQUIRE_POSTGRES", "PYTEST_ADDOPTS")
    }
    options = ["-p", "no:cacheprovider", "--color=no", "--basetemp", str(tmp_path / "inner")]
    return subprocess.run(
        [sys.executable, "-m", "pytest", *options, *SUBSET],
        cwd=ROOT,
        env={**clean, "CONVEYOR_TEST_POSTGRES_URL": CLOSED, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_no_server_is_one_line_at_the_end(tmp_path: Path) -> None:
    done = _pytest(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    mentions = [line for line in lines if "PostgreSQL" in line]
    assert mentions == lines[-2:], done.stdout  # the summary line, then pytest's count
    summary, count = mentions
    assert summary == (
        f"PostgreSQL half skipped (2 tests): {CLOSED} unreachable (Connection refused); "
        f"to run it, start PostgreSQL there or set "
        f"CONVEYOR_TEST_POSTGRES_URL=postgresql+psycopg://USER@HOST:PORT/DB"
    )
    assert "2 passed, 2 skipped without PostgreSQL" in count
    assert "SKIPPED" not in done.stdout  # no line per test, nor per reason


def test_where_postgres_is_required_no_server_fails(tmp_path: Path) -> None:
    done = _pytest(tmp_path, CI="true")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"PostgreSQL at {CLOSED} is required here (CI) but unreachable" in done.stdout
    assert "2 passed, 2 errors" in done.stdout.strip().splitlines()[-1]
    assert "PostgreSQL half skipped" not in done.stdout


def test_the_run_names_the_server_it_creates_and_drops_databases_on(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--co", SUBSET[0]],
        cwd=ROOT,
        env={**os.environ, "CONVEYOR_TEST_POSTGRES_URL": CLOSED},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        f"database server of the postgres tests: {CLOSED} (CONVEYOR_TEST_POSTGRES_URL); a "
        f"conveyor_test_<random> database is created there for the run and dropped at its end"
    ) in done.stdout.splitlines()
