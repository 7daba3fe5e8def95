"""``conveyor dev``: serves, reloads the code as it changes, survives broken code, and stops
every process it started.

Each test starts the real command on a workspace folder of its own, on any
free port of 127.0.0.1, and reads the URL and the daemon's pid from what it
prints.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from conveyor import Instance, RunStatus
from tests.commands import CONVEYOR, conveyor, home_env
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

# Generous: the suite runs on busy machines. How fast dev starts is benchmark W9's business.
START = 90
RELOAD = 60
STOP = 60

FIRST = """
from conveyor import task, workflow

@task
def one():
    return 1

@workflow
def first():
    one()
"""

SECOND = """
from conveyor import task, workflow

@task
def two():
    return 2

@task
def three(x):
    return x + 1

@workflow
def second():
    three(two())
"""

# A run that holds until the test lets it go (or a minute passes).
SLOW = """
import time
from pathlib import Path

from conveyor import task, workflow

RELEASE = Path(__file__).parent.parent / "release"

@task
def hold():
    end = time.monotonic() + 60
    while not RELEASE.exists():
        if time.monotonic() > end:
            raise TimeoutError("the test never released the run")
        time.sleep(0.05)
    return "released"

@workflow
def slow():
    hold()
"""


class Dev:
    """A ``conveyor dev`` process and what it printed."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path, home: Path) -> None:
        self.proc = proc
        self.log = log
        self.home = home

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def url(self) -> str:
        match = wait_until(
            lambda: self._exited() or re.search(r"conveyor dev: (http://\S+)", self.output()),
            START,
            "conveyor dev to print its URL",
        )
        assert isinstance(match, re.Match), self.output()
        return match.group(1)

    def daemon_pids(self) -> list[int]:
        """Every daemon pid dev reported starting, in order."""
        return [
            int(p)
            for p in re.findall(r"daemon (?:started|restarted)[^(]*\(pid (\d+)\)", self.output())
        ]

    def wait_daemon(self, count: int = 1) -> int:
        """The pid of the ``count``-th daemon dev started, once it says so."""
        wait_until(
            lambda: self._exited() or len(self.daemon_pids()) >= count,
            START,
            f"daemon number {count} to start",
        )
        pids = self.daemon_pids()
        assert len(pids) >= count, self.output()
        return pids[count - 1]

    def get(self, path: str) -> Any:
        response = httpx.get(self.url + path, timeout=10)
        assert response.status_code == 200, (path, response.text)
        return response.json()

    def workspace(self) -> dict[str, Any]:
        state: dict[str, Any] = self.get("/api/workspace")
        return state

    def _exited(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"conveyor dev exited ({self.proc.returncode}):\n{self.output()}")
        return False


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    folder = tmp_path / "ws"
    folder.mkdir()
    (folder / "dev_first.py").write_text(textwrap.dedent(FIRST))
    return folder


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    """Start ``conveyor dev ARGS`` in ``tmp_path``; stopped (and its processes killed) after."""
    started: list[tuple[Dev, list[psutil.Process]]] = []

    def run(*args: str) -> Dev:
        home = tmp_path / "home"
        log = tmp_path / f"dev-{len(started)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [*CONVEYOR, "dev", *args, "--port", "0"],
                cwd=tmp_path,
                env=home_env(home),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        dev = Dev(proc, log, home)
        started.append((dev, []))
        return dev

    yield run
    for dev, _ in started:
        if dev.proc.poll() is None:
            family = _family(dev.proc.pid)
            os.killpg(dev.proc.pid, signal.SIGKILL)
            dev.proc.wait(STOP)
            for p in family:
                try:
                    p.kill()
                except psutil.NoSuchProcess:
                    pass


def _family(pid: int) -> list[psutil.Process]:
    """The process ``pid`` and all its descendants."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:  # it, or a child while it was listed, ended meanwhile
        return []


def _command(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline()[1:4])
    except psutil.NoSuchProcess:
        return "gone"


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _runs(dev: Dev) -> dict[str, str]:
    """Run id -> status of the runs the API lists."""
    return {r["id"]: r["status"] for r in dev.get("/api/runs")["runs"]}


def test_dev_serves_reloads_and_recovers_from_a_syntax_error(
    start: Any, ws: Path, tmp_path: Path
) -> None:
    dev = start(str(ws))
    assert dev.get("/api/health")["status"] == "ok"
    before = dev.workspace()
    assert before["jobs"] == ["first"]
    assert before["error"] is None
    assert before["description"] == str(ws)
    dev.wait_daemon()
    # a run recorded before the reloads, from another command on the same home
    ran = conveyor(home_env(dev.home), "run", str(ws), "first")
    assert ran.returncode == 0, ran.stderr
    [recorded] = _runs(dev)

    (ws / "dev_second.py").write_text(textwrap.dedent(SECOND))
    state = wait_until(
        lambda: "second" in (s := dev.workspace())["jobs"] and s,
        RELOAD,
        "the new job to show",
    )
    assert state["jobs"] == ["first", "second"]
    assert state["generation"] > before["generation"]
    graph = dev.get("/api/jobs/second/graph")
    assert {n["task_name"] for n in graph["nodes"]} == {"two", "three"}

    (ws / "dev_second.py").write_text(textwrap.dedent(SECOND) + "\ndef broken(:\n")
    state = wait_until(lambda: (s := dev.workspace())["error"] and s, RELOAD, "the load error")
    assert "SyntaxError" in state["error"]["message"]
    assert "dev_second.py" in state["error"]["message"]
    assert "Traceback" in state["error"]["traceback"]
    assert state["jobs"] == ["first", "second"], "the last good jobs stay"
    assert dev.get("/api/health")["workspace_error"] == state["error"]["message"]

    (ws / "dev_second.py").write_text(textwrap.dedent(SECOND).replace("second", "renamed"))
    state = wait_until(
        lambda: (s := dev.workspace())["error"] is None and "renamed" in s["jobs"] and s,
        RELOAD,
        "the fixed code to load",
    )
    assert state["jobs"] == ["first", "renamed"]
    assert recorded in _runs(dev), "the run history is kept"
    assert dev.proc.poll() is None


def test_broken_code_at_start_is_served_and_the_daemon_waits_for_good_code(
    start: Any, ws: Path
) -> None:
    (ws / "dev_first.py").write_text(textwrap.dedent(FIRST) + "\nraise RuntimeError('not yet')\n")
    dev = start(str(ws))
    state = dev.workspace()
    assert state["jobs"] == []
    assert "RuntimeError: not yet" in state["error"]["message"]
    assert "not started" in state["processes"]["daemon"]
    assert dev.daemon_pids() == []
    (ws / "dev_first.py").write_text(textwrap.dedent(FIRST))
    first_daemon = dev.wait_daemon()
    state = dev.workspace()
    assert state["jobs"] == ["first"]
    assert state["error"] is None
    # loading again by hand, as the UI's button does: the daemon restarts on the code
    reloaded = httpx.post(f"{dev.url}/api/workspace/reload", timeout=30)
    assert reloaded.status_code == 200, reloaded.text
    assert reloaded.json()["generation"] == state["generation"] + 1
    assert dev.wait_daemon(2) != first_daemon


def test_a_module_target_is_imported_afresh_when_it_changes(start: Any, tmp_path: Path) -> None:
    package = tmp_path / "devpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "jobs.py").write_text(textwrap.dedent(FIRST))
    dev = start("-m", "devpkg.jobs")
    assert dev.workspace()["jobs"] == ["first"]
    assert dev.workspace()["description"] == "devpkg.jobs"
    (package / "jobs.py").write_text(textwrap.dedent(FIRST).replace("first", "renamed"))
    wait_until(lambda: dev.workspace()["jobs"] == ["renamed"], RELOAD, "the module's new job")


def test_a_run_in_flight_survives_a_reload(start: Any, ws: Path, tmp_path: Path) -> None:
    (ws / "dev_slow.py").write_text(textwrap.dedent(SLOW))
    dev = start(str(ws))
    first_daemon = dev.wait_daemon()
    queued = conveyor(home_env(dev.home), "trigger", str(ws), "slow")
    assert queued.returncode == 0, queued.stderr
    run_id = queued.stdout.strip()
    instance = Instance.at(dev.home)
    try:
        wait_until(
            lambda: instance.run(run_id).status is RunStatus.RUNNING, START, "the run to start"
        )
        (ws / "dev_second.py").write_text(textwrap.dedent(SECOND))
        second_daemon = dev.wait_daemon(2)
        assert second_daemon != first_daemon
        wait_until(lambda: _gone(first_daemon), STOP, "the old daemon to stop")
        assert instance.run(run_id).status is RunStatus.RUNNING
        (tmp_path / "release").touch()
        wait_until(lambda: instance.run(run_id).status.is_terminal, START, "the run to end")
        assert instance.run(run_id).status is RunStatus.SUCCESS
        assert "restarted with the new code" in dev.output()
    finally:
        instance.close()


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_stopping_dev_stops_every_process_it_started(start: Any, ws: Path, how: str) -> None:
    dev = start(str(ws))
    dev.url  # noqa: B018  (it serves)
    daemon = dev.wait_daemon()
    # the daemon's launch server is up once the daemon runs its passes
    wait_until(
        lambda: len(_family(dev.proc.pid)) >= 3, START, "the daemon's launch server to start"
    )
    names = {p.pid: _command(p) for p in _family(dev.proc.pid)}
    assert daemon in names
    if how == "ctrl-c":
        os.killpg(dev.proc.pid, signal.SIGINT)  # as a terminal sends it: to the whole group
    else:
        dev.proc.send_signal(signal.SIGTERM)  # as `kill PID` sends it: to dev alone
    code = dev.proc.wait(STOP)
    assert code == (130 if how == "ctrl-c" else 0), dev.output()
    for pid, name in names.items():
        wait_until(lambda pid=pid: _gone(pid), STOP, f"process {pid} ({name}) to end")
    last = dev.output().strip().splitlines()[-1]
    why = "Ctrl-C" if how == "ctrl-c" else "SIGTERM"
    assert last.startswith(f"conveyor dev: stopped by {why}: the server, the file watcher"), last
    assert f"the daemon (pid {daemon})" in last


def test_the_daemon_stops_when_dev_is_killed(start: Any, ws: Path) -> None:
    dev = start(str(ws))
    daemon = dev.wait_daemon()
    dev.proc.kill()  # SIGKILL: dev says nothing and stops nothing itself
    dev.proc.wait(STOP)
    wait_until(lambda: _gone(daemon), STOP, "the orphaned daemon to stop")


def test_a_port_in_use_is_an_error_naming_port(ws: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [*CONVEYOR, "dev", str(ws), "--port", str(port)],
            cwd=tmp_path,
            env=home_env(tmp_path / "home"),
            capture_output=True,
            text=True,
            timeout=STOP,
        )
    assert out.returncode == 2, out.stderr
    assert f"port {port} of 127.0.0.1 is in use" in out.stderr
    assert "--port" in out.stderr


def test_a_missing_workspace_is_an_error_before_anything_starts(tmp_path: Path) -> None:
    out = subprocess.run(
        [*CONVEYOR, "dev", "nowhere", "--port", "0"],
        cwd=tmp_path,
        env=home_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=STOP,
    )
    assert out.returncode == 2
    assert "workspace 'nowhere' does not exist" in out.stderr
    assert not (tmp_path / "home").exists()
