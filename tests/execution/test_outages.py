"""Runs ride out database outages: real processes, a thousand tasks, the database cut.

A run's process (the ``conveyor`` command, or a run worker a daemon started)
keeps what it cannot write, journals it, and writes it once the database is
back; a daemon on the same instance never fails a run because the database
was away. PostgreSQL is cut with a TCP proxy between it and the processes
(the shared server itself is never stopped); SQLite is made to wait with a
second connection that holds its write lock.

What each test sees it reads from the database directly, not through the proxy.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa

from conveyor import Instance, RunStatus, TaskStatus
from conveyor.storage.schema import task_runs
from tests.execution.outage_jobs import TASKS, key, line, value
from tests.tcpproxy import TcpProxy
from tests.waiting import wait_until

JOBS = Path(__file__).parent / "outage_jobs.py"
JOB = "thousand"
CONVEYOR = [sys.executable, "-m", "conveyor.cli"]
# How long the database is away in the outage tests (seconds).
OUTAGE = 25.0
# How long the connection-killing storm lasts, and how often a connection dies in it.
STORM = 10.0
KILL_EVERY = 0.02
# How long another connection holds SQLite's write lock.
LOCK_HELD = 15.0


# -- fixtures: a database of the test's own, the proxy, and its processes --------------------


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A database of this test's own: a daemon must see no other test's runs, and no other
    test may truncate this one's tables while its processes write to them."""
    admin = sa.create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    name = f"conveyor_outages_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield (
            sa.engine.make_url(pg_server_url)
            .set(database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def proxy(pg_url: str) -> Iterator[TcpProxy]:
    url = sa.engine.make_url(pg_url)
    with TcpProxy((url.host or "127.0.0.1", url.port or 5432)) as p:
        yield p


class Processes:
    """The test's processes, their output in files; each is stopped at the end of the test."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (
            open(self.folder / f"{name}.out", "wb") as out,
            open(self.folder / f"{name}.err", "wb") as err,
        ):
            proc = subprocess.Popen(
                [*CONVEYOR, *args], env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )
        self.started[name] = proc
        return proc

    def output(self, name: str) -> str:
        """What process ``name`` wrote so far, standard output then standard error."""
        return "".join(
            (self.folder / f"{name}.{ext}").read_text(errors="replace") for ext in ("out", "err")
        )

    def finish(self, name: str, seconds: float) -> int:
        """Wait for process ``name`` to exit by itself; its exit code."""
        try:
            return self.started[name].wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{name} did not exit within {seconds:g}s; its output:\n{self.output(name)}"
            ) from None

    def stop_all(self) -> None:
        for proc in self.started.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.started.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    p = Processes(tmp_path)
    try:
        yield p
    finally:
        p.stop_all()


def _env(home: Path, database_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {**os.environ, "CONVEYOR_HOME": str(home), **extra}
    env.pop("CONVEYOR_DATABASE_URL", None)
    if database_url is not None:
        env["CONVEYOR_DATABASE_URL"] = database_url
    return env


# -- what the tests look at ------------------------------------------------------------------


def _new_run(instance: Instance, known: Collection[str] = ()) -> str:
    """The id of the run of the workflow that is not one of ``known``, once it is recorded."""

    def found() -> str:
        new = [r.id for r in instance.runs(JOB, limit=50) if r.id not in known]
        assert len(new) <= 1, new
        return new[0] if new else ""

    return wait_until(found, 180, "the run to be recorded", every=0.1)


def _done(instance: Instance, run_id: str) -> int:
    """How many of the run's tasks are recorded as succeeded."""
    q = sa.select(sa.func.count()).where(
        task_runs.c.run_id == run_id, task_runs.c.status == str(TaskStatus.SUCCESS)
    )
    with instance.db.read() as conn:
        return int(conn.execute(q).scalar_one())


def _recorded(instance: Instance, run_id: str, n: int) -> Callable[[], bool]:
    """Whether at least ``n`` tasks of the run are recorded as succeeded."""
    return lambda: _done(instance, run_id) >= n


def _ended_at(instance: Instance, run_id: str) -> list[float]:
    """When each task of the run ended (as its process recorded it)."""
    rows = instance.task_run_store.for_run(run_id)
    return sorted(r.ended_at.timestamp() for r in rows if r.ended_at is not None)


def _assert_complete(instance: Instance, run_id: str) -> None:
    """The run succeeded, with one successful record, its log line and its result per task."""
    run = instance.run(run_id)
    assert run.status is RunStatus.SUCCESS, run.error
    rows = instance.task_run_store.for_run(run_id)
    assert sorted((r.task_key, r.attempt) for r in rows) == [(key(i), 1) for i in range(TASKS)]
    assert [r.task_key for r in rows if r.status is not TaskStatus.SUCCESS] == []
    # ``Instance.logs`` and ``Instance.result`` first list the run's tasks (done above, once):
    # for each task they then read what these stores read.
    for i in range(TASKS):
        assert instance.log_store.read(run_id, key(i)) == line(i) + "\n", key(i)
        assert instance.result_store.get(run_id, key(i)) == value(i), key(i)
    for i in (0, TASKS // 2, TASKS - 1):
        assert instance.logs(run_id, key(i)) == line(i) + "\n"
        assert instance.result(run_id, key(i)) == value(i)


def _assert_no_run_failed(instance: Instance, procs: Processes) -> None:
    """Every run of the instance succeeded, and the daemon is still up and ended no run."""
    assert [
        (r.id, r.error) for r in instance.runs(limit=100) if r.status is not RunStatus.SUCCESS
    ] == []
    assert procs.started["daemon"].poll() is None, procs.output("daemon")
    log = procs.output("daemon")
    assert "ended failure" not in log, log
    assert "Traceback" not in log, log


def _journals(home: Path) -> list[Path]:
    """The run journals left in ``home`` (``CONVEYOR_HOME/journal/<run id>.pkl``)."""
    return sorted((home / "journal").glob("*.pkl"))


def _kill_reported(ready: Path) -> None:
    """Kill the process that reported itself in ``ready`` (its id, the time), if it still
    runs; a process that took its id later is left alone."""
    if not ready.exists():
        return
    pid, at = ready.read_text().split()
    with contextlib.suppress(psutil.NoSuchProcess):
        proc = psutil.Process(int(pid))
        if proc.create_time() <= float(at):
            proc.kill()
            proc.wait(timeout=10)


def _start_daemon(procs: Processes, env: dict[str, str]) -> None:
    procs.start("daemon", ["daemon", str(JOBS)], env)
    wait_until(
        lambda: "daemon watching" in procs.output("daemon"), 60, "the daemon to start watching"
    )


# -- PostgreSQL away in the middle of a run, and at its end ----------------------------------


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_run_rides_out_an_outage_in_its_middle(
    pg_url: str, proxy: TcpProxy, procs: Processes, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    instance = Instance.at(home, database_url=pg_url)
    env = _env(home, proxy.url_for(pg_url), CONVEYOR_TEST_PACE="0.04")  # 1,000 x 40 ms
    try:
        _start_daemon(procs, env)
        cli = procs.start("cli", ["run", str(JOBS), JOB], env)
        rid = _new_run(instance)
        wait_until(_recorded(instance, rid, 100), 60, "100 tasks recorded", every=0.2)

        proxy.cut()
        cut_at = time.time()
        time.sleep(max(0.0, OUTAGE - (time.time() - cut_at)))  # the outage itself
        assert cli.poll() is None, procs.output("cli")
        proxy.restore()
        restored_at = time.time()

        assert procs.finish("cli", 120) == 0, procs.output("cli")
        assert f"run {rid} success" in procs.output("cli")
        _assert_complete(instance, rid)
        ended = _ended_at(instance, rid)
        assert ended[0] < cut_at < restored_at < ended[-1]  # the outage fell inside the run
        _assert_no_run_failed(instance, procs)
        assert _journals(home) == []
        wait_until(
            lambda: "reachable again" in procs.output("daemon"), 30, "the daemon to see it back"
        )
        assert "is unreachable" in procs.output("daemon")  # it did see the outage
    finally:
        instance.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_run_that_ends_during_an_outage_waits_and_records_everything(
    pg_url: str, proxy: TcpProxy, procs: Processes, tmp_path: Path
) -> None:
    home, gate = tmp_path / "home", tmp_path / "gate"
    gate.mkdir()
    instance = Instance.at(home, database_url=pg_url)
    # The task 20th from the end waits at the gate; the last 20 run while the database is away.
    env = _env(
        home,
        proxy.url_for(pg_url),
        CONVEYOR_TEST_PACE="0.005",
        CONVEYOR_TEST_GATE=str(gate),
        CONVEYOR_TEST_GATE_AT=str(TASKS - 20),
    )
    try:
        _start_daemon(procs, env)
        cli = procs.start("cli", ["run", str(JOBS), JOB], env)
        rid = _new_run(instance)
        wait_until((gate / "ready").exists, 60, "the run to reach its last tasks")

        proxy.cut()
        (gate / "go").touch()
        path = home / "journal" / f"{rid}.pkl"

        def ended_in_journal() -> bool:
            assert cli.poll() is None, procs.output("cli")  # it waits for the database
            if not path.exists():
                return False
            from conveyor.storage import journal  # not at the top: this file runs on old code too

            batches = journal.load(path)
            return batches is not None and any(
                b.run_status == str(RunStatus.SUCCESS) for b in batches
            )

        # The run's end is in its journal: it has ended, and now waits for the database.
        wait_until(ended_in_journal, 60, "the run's end to be journaled")
        ended_at = time.time()
        assert instance.run(rid).status is RunStatus.RUNNING
        time.sleep(OUTAGE)  # the outage goes on this long past the run's end
        assert cli.poll() is None, procs.output("cli")
        proxy.restore()

        assert procs.finish("cli", 60) == 0, procs.output("cli")
        assert f"run {rid} success" in procs.output("cli")
        _assert_complete(instance, rid)
        written = instance.run(rid).ended_at  # when its end reached the database
        assert written is not None
        assert written.timestamp() > ended_at + OUTAGE
        assert _journals(home) == []
        _assert_no_run_failed(instance, procs)
    finally:
        instance.close()


# -- connections that keep dying -------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_runs_record_everything_while_connections_keep_dying(
    pg_url: str, proxy: TcpProxy, procs: Processes, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    instance = Instance.at(home, database_url=pg_url)
    env = _env(home, proxy.url_for(pg_url), CONVEYOR_TEST_PACE="0.015")  # 1,000 x 15 ms
    outcomes: list[tuple[str, int, str, int]] = []
    try:
        for n in range(5):
            known = {r.id for r in instance.runs(JOB, limit=50)}
            procs.start(f"cli{n}", ["run", str(JOBS), JOB], env)
            rid = _new_run(instance, known)
            wait_until(_recorded(instance, rid, 50), 60, "50 tasks recorded", every=0.2)
            proxy.kill_connections_every(KILL_EVERY)
            killed_before = proxy.killed
            time.sleep(STORM)  # the storm itself
            proxy.kill_connections_every(None)
            assert proxy.killed > killed_before  # the run's connections did die
            code = procs.finish(f"cli{n}", 120)
            status = str(instance.run(rid).status)
            outcomes.append((rid, code, status, len(instance.task_run_store.for_run(rid))))
        report = "\n".join(
            f"run {rid[:8]}: exit {code}, {status}, {count} task records; "
            f"{procs.output(f'cli{n}').strip().splitlines()[-1]}"
            for n, (rid, code, status, count) in enumerate(outcomes)
        )
        assert [o[1:] for o in outcomes] == [(0, "success", TASKS)] * 5, report
        for rid, *_ in outcomes:
            _assert_complete(instance, rid)
        assert _journals(home) == []
    finally:
        instance.close()


# -- SQLite: another process holds the write lock while a daemon's run ends ------------------


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_daemons_run_waits_for_a_held_sqlite_lock_and_is_not_judged_dead(
    procs: Processes, tmp_path: Path
) -> None:
    home, gate = tmp_path / "home", tmp_path / "gate"
    gate.mkdir()
    instance = Instance.at(home)
    env = _env(home, CONVEYOR_TEST_GATE=str(gate))  # the last task waits at the gate
    try:
        _start_daemon(procs, env)
        trigger = subprocess.run(
            [*CONVEYOR, "trigger", str(JOBS), JOB],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert trigger.returncode == 0, trigger.stderr
        rid = trigger.stdout.strip()
        wait_until((gate / "ready").exists, 90, "the run to reach its last task")
        assert instance.run(rid).status is RunStatus.RUNNING

        lock = sqlite3.connect(home / "conveyor.db", isolation_level=None, timeout=60)
        try:
            lock.execute("BEGIN IMMEDIATE")
            locked_at = time.monotonic()
            (gate / "go").touch()  # the run finishes its last task, then waits for the lock
            time.sleep(LOCK_HELD)  # the lock held this long
            assert instance.run(rid).status is RunStatus.RUNNING  # readers are not blocked
            assert time.monotonic() - locked_at >= LOCK_HELD
        finally:
            lock.execute("ROLLBACK")
            lock.close()

        wait_until(
            lambda: instance.run(rid).status.is_terminal, 90, "the run to end after the lock"
        )
        _assert_complete(instance, rid)
        assert _journals(home) == []
        _assert_no_run_failed(instance, procs)
    finally:
        # A failed test may leave the run's task waiting: ending the process that runs it
        # ends the run worker too.
        _kill_reported(gate / "ready")
        instance.close()


# -- longer than a run waits: the journal is kept, and recovered -----------------------------


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_run_that_waits_too_long_keeps_its_journal_for_recovery(
    pg_url: str, proxy: TcpProxy, procs: Processes, tmp_path: Path
) -> None:
    home, gate = tmp_path / "home", tmp_path / "gate"
    gate.mkdir()
    instance = Instance.at(home, database_url=pg_url)
    env = _env(home, proxy.url_for(pg_url), CONVEYOR_TEST_GATE=str(gate), CONVEYOR_JOURNAL_WAIT="3")
    try:
        procs.start("cli", ["run", str(JOBS), JOB], env)
        rid = _new_run(instance)
        wait_until((gate / "ready").exists, 60, "the run to reach its last task")
        proxy.cut()
        cut_at = time.monotonic()
        (gate / "go").touch()

        assert procs.finish("cli", 60) != 0
        waited = time.monotonic() - cut_at
        out = procs.output("cli")
        path = home / "journal" / f"{rid}.pkl"
        assert str(path) in out, out
        assert f"conveyor runs recover {rid[:8]}" in out, out
        assert waited >= 3, out
        assert _journals(home) == [path]
        assert instance.run(rid).status is RunStatus.RUNNING  # its end is in the journal only

        proxy.restore()
        recover = subprocess.run(
            [*CONVEYOR, "runs", "recover", rid],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert recover.returncode == 0, recover.stdout + recover.stderr
        assert "success" in recover.stdout, recover.stdout
        _assert_complete(instance, rid)
        assert _journals(home) == []
    finally:
        instance.close()
