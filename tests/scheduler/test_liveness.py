"""Runs that look dead but are not, and runs that are: real daemons and run workers.

Process ids come from the processes' own reports: the jobs write theirs to a
ledger, and a run worker records its own in the run's row when it claims it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from conveyor import Instance, RunStatus
from conveyor.workspace import load_file
from tests.commands import conveyor, home_env
from tests.tcpproxy import TcpProxy
from tests.waiting import wait_until

HERE = Path(__file__).parent
LIVELY = HERE / "lively.py"
OTHER = HERE / "other_workspace.py"

Ledger = list[tuple[str, str, int, int, float]]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**home_env(tmp_path / "home"), "CONVEYOR_TEST_LEDGER": str(tmp_path / "ledger")}


@pytest.fixture
def instance(env: dict[str, str]) -> Iterator[Instance]:
    inst = Instance.at(env["CONVEYOR_HOME"])
    yield inst
    inst.close()


@pytest.fixture
def start_daemon(env: dict[str, str]) -> Iterator[object]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(workspace: Path = LIVELY) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "conveyor.cli", "daemon", str(workspace)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=30)


def _ledger(env: dict[str, str]) -> Ledger:
    path = Path(env["CONVEYOR_TEST_LEDGER"])
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        event, rid, pid, ppid, at = line.split()
        out.append((event, rid, int(pid), int(ppid), float(at)))
    return out


def _queue(instance: Instance, job_name: str, n: int = 1) -> list[str]:
    ws = load_file(LIVELY)
    job = ws.job(job_name)
    return [
        instance.run_store.create(
            job_name=job.name,
            job_version=job.version,
            status=RunStatus.QUEUED,
            origin={**ws.origin, "job": job.name},
        ).id
        for _ in range(n)
    ]


def _event(ledger: Ledger, event: str, rid: str) -> tuple[str, str, int, int, float] | None:
    return next((e for e in ledger if e[0] == event and e[1] == rid), None)


def _ended(instance: Instance, ids: list[str]) -> bool:
    return all(instance.run(r).status.is_terminal for r in ids)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _one_after_the_other(env: dict[str, str], first: str, second: str) -> None:
    ledger = _ledger(env)
    end_first, start_second = _event(ledger, "end", first), _event(ledger, "start", second)
    assert end_first is not None
    assert start_second is not None
    assert start_second[4] >= end_first[4], "the next run started beside the first"


@pytest.mark.slow
def test_a_task_holding_the_gil_for_30s_is_not_declared_dead(
    env: dict[str, str], instance: Instance, start_daemon: object
) -> None:
    first, second = _queue(instance, "gil_holder", 2)
    start_daemon()  # type: ignore[operator]
    started = wait_until(lambda: _event(_ledger(env), "start", first), 60, "the first run")
    beat = instance.run(first).heartbeat_at
    assert beat is not None
    # Its heartbeat goes on while the task holds the GIL: it comes from the supervisor.
    wait_until(
        lambda: (instance.run(first).heartbeat_at or beat).timestamp() > beat.timestamp() + 10,
        60,
        "heartbeats during the hold",
    )
    assert _event(_ledger(env), "end", first) is None  # still holding
    wait_until(lambda: _ended(instance, [first, second]), 150, "both runs to end")
    assert [instance.run(r).status for r in (first, second)] == [RunStatus.SUCCESS] * 2
    assert started[2] == _event(_ledger(env), "end", first)[2]  # type: ignore[index]
    _one_after_the_other(env, first, second)


@pytest.mark.slow
def test_a_worker_stopped_for_25s_never_runs_beside_the_next_run(
    env: dict[str, str], instance: Instance, start_daemon: object
) -> None:
    first, second = _queue(instance, "paced", 2)
    start_daemon()  # type: ignore[operator]
    _, _, pid, supervisor, _ = wait_until(
        lambda: _event(_ledger(env), "start", first), 60, "the first run"
    )
    for p in (supervisor, pid):
        os.kill(p, signal.SIGSTOP)
    try:
        time.sleep(25)  # the fault itself: a pause of 25 s
    finally:
        for p in (supervisor, pid):
            os.kill(p, signal.SIGCONT)
    wait_until(lambda: _ended(instance, [first, second]), 90, "both runs to end")
    assert [instance.run(r).status for r in (first, second)] == [RunStatus.SUCCESS] * 2
    _one_after_the_other(env, first, second)


def test_killing_a_run_worker_kills_its_task_processes_within_3s(
    env: dict[str, str], instance: Instance, start_daemon: object
) -> None:
    [rid] = _queue(instance, "tree")
    start_daemon()  # type: ignore[operator]

    def tasks() -> list[tuple[str, str, int, int, float]] | None:
        found = [e for e in _ledger(env) if e[0].startswith("task")]
        return found if len(found) == 2 else None

    reported = wait_until(tasks, 60, "both tasks to report")
    pids = [e[2] for e in reported] + [int(e[0].split(":")[1]) for e in reported]
    worker = instance.run(rid).pid  # the run worker's own record of itself
    assert worker is not None
    assert worker not in pids
    os.kill(worker, signal.SIGKILL)
    killed = time.monotonic()
    wait_until(lambda: all(_gone(p) for p in pids), 30, "the task processes to be gone")
    assert time.monotonic() - killed < 3.0
    wait_until(lambda: instance.run(rid).status.is_terminal, 30, "the run to be ended")
    run = instance.run(rid)
    assert run.status is RunStatus.FAILURE
    assert run.error is not None
    assert "is gone" in run.error
    assert all(t.status != "running" for t in instance.run_details(rid).tasks)


def _detached_sleeper(env: dict[str, str], instance: Instance) -> tuple[str, int]:
    """A detached run of `sleeper`, with its worker killed: (run id, worker pid)."""
    done = conveyor(env, "run", "--detach", str(LIVELY), "sleeper")
    assert done.returncode == 0, done.stderr
    rid = done.stdout.split()[0] if done.stdout.strip() else ""
    rid = instance.run_store.resolve_id(rid) if rid else instance.runs("sleeper")[0].id
    wait_until(lambda: _event(_ledger(env), "start", rid), 60, "the run to start")
    worker = instance.run(rid).pid
    assert worker is not None
    os.kill(worker, signal.SIGKILL)
    return rid, worker


def test_a_daemon_of_another_workspace_ends_a_dead_run(
    env: dict[str, str], instance: Instance, start_daemon: object
) -> None:
    rid, worker = _detached_sleeper(env, instance)
    wait_until(lambda: _gone(worker), 30, "the worker to be gone")
    assert instance.run(rid).status is RunStatus.RUNNING  # nobody has judged it yet
    start_daemon(OTHER)  # type: ignore[operator]
    wait_until(lambda: instance.run(rid).status.is_terminal, 30, "the dead run to be ended")
    run = instance.run(rid)
    assert run.status is RunStatus.FAILURE
    assert run.error is not None
    assert f"process {worker}" in run.error


def test_cancel_ends_a_run_whose_worker_is_gone(env: dict[str, str], instance: Instance) -> None:
    rid, worker = _detached_sleeper(env, instance)
    wait_until(lambda: _gone(worker), 30, "the worker to be gone")
    done = conveyor(env, "runs", "cancel", rid, "--timeout", "10")
    assert done.returncode == 0, done.stderr
    assert "canceled" in done.stdout
    run = instance.run(rid)
    assert run.status is RunStatus.CANCELED
    assert all(t.status != "running" for t in instance.run_details(rid).tasks)


@pytest.mark.slow
def test_a_worker_cut_off_from_postgres_stops_itself_before_its_lease_ends(
    env: dict[str, str], pg_server_url: str, start_daemon: object
) -> None:
    direct = Instance.at(env["CONVEYOR_HOME"], database_url=pg_server_url)
    with TcpProxy(("127.0.0.1", 5432)) as proxy:
        env["CONVEYOR_DATABASE_URL"] = proxy.url_for(pg_server_url)
        env["CONVEYOR_RUN_LEASE"] = "5"  # so it stops itself after 4 s without a heartbeat
        [rid] = _queue(direct, "sleeper")
        start_daemon()  # type: ignore[operator]
        _, _, pid, supervisor, _ = wait_until(
            lambda: _event(_ledger(env), "start", rid), 60, "the run to start"
        )
        assert direct.run(rid).pid == supervisor
        proxy.cut()
        cut = time.monotonic()
        wait_until(lambda: _gone(pid) and _gone(supervisor), 60, "the cut-off run to stop")
        assert time.monotonic() - cut > 3.0  # it waited for most of its lease first
        assert direct.run(rid).status is RunStatus.RUNNING  # nobody could record it
        proxy.restore()
        wait_until(lambda: direct.run(rid).status.is_terminal, 60, "the daemon to end it")
    run = direct.run(rid)
    assert run.status is RunStatus.FAILURE
    assert run.error is not None
    assert "is gone" in run.error
    direct.close()


@pytest.fixture
def background_daemon(env: dict[str, str], tmp_path: Path) -> Iterator[int]:
    """A daemon started as `nohup conveyor daemon ws.py &` from a non-interactive shell, which
    starts it with SIGINT ignored; yields its pid as the shell reported it."""
    log = tmp_path / "daemon.log"
    shell = subprocess.run(
        [
            "bash",
            "-c",
            f"nohup {sys.executable} -m conveyor.cli daemon {LIVELY} > {log} 2>&1 & echo $!",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    pid = int(shell.stdout)
    yield pid
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: _gone(pid), 30, "the daemon to be gone")


def test_cancel_and_run_timeouts_stop_a_task_under_a_background_daemon(
    env: dict[str, str], instance: Instance, background_daemon: int
) -> None:
    [rid] = _queue(instance, "sleeper")
    _, _, pid, _, _ = wait_until(lambda: _event(_ledger(env), "start", rid), 60, "the run")
    asked = time.monotonic()
    done = conveyor(env, "runs", "cancel", rid, "--timeout", "30")
    assert done.returncode == 0, done.stderr
    wait_until(lambda: instance.run(rid).status.is_terminal, 30, "the run to stop")
    assert time.monotonic() - asked < 5.0
    assert instance.run(rid).status is RunStatus.CANCELED
    assert _gone(pid)  # the task in one long call was stopped, not left running
    assert all(t.status == "canceled" for t in instance.run_details(rid).tasks)

    [late] = _queue(instance, "overdue")
    _, _, pid, _, _ = wait_until(lambda: _event(_ledger(env), "start", late), 60, "the run")
    wait_until(lambda: instance.run(late).status.is_terminal, 30, "the overdue run to stop")
    assert instance.run(late).status is RunStatus.CANCELED
    assert any(e.kind == "run_timeout" for e in instance.run_details(late).events)
    assert _gone(pid)


def test_a_workspace_that_starts_threads_runs_without_forks(
    env: dict[str, str], instance: Instance, tmp_path: Path
) -> None:
    workspace = HERE / "threaded.py"
    log = tmp_path / "daemon.log"
    with open(log, "wb") as out:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "conveyor.cli", "daemon", str(workspace)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        ws = load_file(workspace)
        job = ws.job("after_threads")
        ids = [
            instance.run_store.create(
                job_name=job.name,
                job_version=job.version,
                status=RunStatus.QUEUED,
                origin={**ws.origin, "job": job.name},
            ).id
            for _ in range(2)
        ]
        wait_until(lambda: _ended(instance, ids), 120, "the runs to end")
        assert [instance.run(r).status for r in ids] == [RunStatus.SUCCESS] * 2
        server_log = Path(env["CONVEYOR_HOME"]) / "workers" / "launch-server.log"
        assert "metrics-flusher" in server_log.read_text()
        wait_until(lambda: "will not fork" in log.read_text(), 30, "the daemon to say why")
    finally:
        daemon.kill()
        daemon.wait(timeout=30)
