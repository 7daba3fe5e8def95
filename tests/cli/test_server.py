"""``conveyor server`` and ``conveyor db upgrade``: production's server refuses an old
schema and names the command that upgrades it; the command upgrades, once."""

from __future__ import annotations

import re
import signal
import subprocess
import textwrap
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from conveyor.storage.db import HEAD_REVISION
from conveyor.storage.migrate import upgrade
from tests.commands import CONVEYOR, conveyor, home_env
from tests.waiting import wait_until

WORKSPACE = """
from conveyor import task, workflow

@task
def one():
    return 1

@workflow
def served():
    one()
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "served.py"
    path.write_text(textwrap.dedent(WORKSPACE))
    return path


def _old_home(home: Path, revision: str = "0007") -> None:
    """A home whose database an older Conveyor made: its schema at ``revision``."""
    home.mkdir()
    engine = sa.create_engine(f"sqlite:///{home / 'conveyor.db'}")
    with engine.begin() as conn:
        upgrade(conn, revision)
    engine.dispose()


def test_db_upgrade_brings_an_old_schema_to_the_current_one_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _old_home(home)
    env = home_env(home)
    first = conveyor(env, "db", "upgrade")
    assert first.returncode == 0, first.stderr
    assert f"schema 0007 -> {HEAD_REVISION}" in first.stdout
    again = conveyor(env, "db", "upgrade")
    assert again.returncode == 0, again.stderr
    assert f"schema {HEAD_REVISION} is current; nothing to do" in again.stdout


def test_db_upgrade_makes_the_schema_of_a_new_home(tmp_path: Path) -> None:
    done = conveyor(home_env(tmp_path / "new"), "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert f"schema none -> {HEAD_REVISION}" in done.stdout


def test_the_server_refuses_an_old_schema_and_names_the_upgrade(
    tmp_path: Path, workspace: Path
) -> None:
    home = tmp_path / "home"
    _old_home(home)
    done = conveyor(home_env(home), "server", str(workspace), "--port", "0")
    assert done.returncode == 2
    assert "has schema 0007" in done.stderr
    assert "run `conveyor db upgrade`" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_server_refuses_a_workspace_that_does_not_load(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def oops(:\n")
    env = home_env(tmp_path / "home")
    assert conveyor(env, "db", "upgrade").returncode == 0
    done = conveyor(env, "server", str(broken), "--port", "0")
    assert done.returncode == 1
    assert "loading" in done.stderr
    assert "SyntaxError" in done.stderr


@pytest.mark.slow
def test_the_server_serves_the_api_and_stops_on_sigterm(tmp_path: Path, workspace: Path) -> None:
    env = home_env(tmp_path / "home")
    assert conveyor(env, "db", "upgrade").returncode == 0
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*CONVEYOR, "server", str(workspace), "--port", "0"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def url() -> str | None:
            if proc.poll() is not None:
                raise AssertionError(f"the server exited:\n{log.read_text()}")
            found = re.search(r"conveyor server: (http://\S+)", log.read_text())
            return found.group(1) if found else None

        base = wait_until(url, 90, "the server to print its URL")
        assert httpx.get(f"{base}/api/health", timeout=10).json()["status"] == "ok"
        jobs = httpx.get(f"{base}/api/jobs", timeout=10).json()
        assert [j["name"] for j in jobs] == ["served"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def test_the_server_says_when_its_port_is_taken(tmp_path: Path, workspace: Path) -> None:
    import socket

    env = home_env(tmp_path / "home")
    assert conveyor(env, "db", "upgrade").returncode == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = conveyor(env, "server", str(workspace), "--port", str(port))
    assert done.returncode == 2
    assert f"port {port} of 127.0.0.1 is in use" in done.stderr
    assert "choose another port with --port" in done.stderr
