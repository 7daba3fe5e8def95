"""A start lost between marking a run ``starting`` and launching its worker, on SQLite and
PostgreSQL.

The run's starter is gone (a process that admitted it and exited, or a
daemon SIGKILLed inside its launch), still holding the job's only slot. A
daemon started afterwards must put the run back in the queue at once, with
an event saying why, and run it; the job's other queued runs must not wait
for the slot to expire (``LEASE_TTL``, 30 s); and a claim of the old start
must be refused.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from conveyor import Instance, RunStatus
from conveyor.errors import StorageError
from conveyor.workspace import load_file
from tests.waiting import wait_until

WORKSPACE = Path(__file__).parent / "stranded.py"
# The job's other queued runs start this soon after the requeue, not after a slot expires.
PROMPTLY = timedelta(seconds=10)

# Admits the run (takes the job's slot, marks it starting) and exits without launching it.
ADMIT_AND_EXIT = """
import os, sys
from conveyor.scheduler.admission import admit
from conveyor.storage.instance import Instance
from conveyor.workspace import load_file

instance = Instance.from_env()
job = load_file(sys.argv[1]).job("stranded")
assert admit(instance, job, instance.run(sys.argv[2]))
print(os.getpid())
"""

# A daemon whose launch blocks: it reports the run and its own pid, and waits to be killed.
DAEMON_STUCK_IN_LAUNCH = """
import os, sys, threading, time
from conveyor.scheduler.daemon import Daemon
from conveyor.storage.instance import Instance
from conveyor.workspace import load_file

def launch(run_id, instance):
    with open(sys.argv[2] + ".tmp", "w") as f:
        f.write(f"{run_id} {os.getpid()}")
    os.replace(sys.argv[2] + ".tmp", sys.argv[2])
    time.sleep(120)

Daemon(load_file(sys.argv[1]), Instance.from_env(), launch=launch).run(threading.Event())
"""


class Processes:
    """Processes a test starts: each killed (and reaped) at the end if still running."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.started.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def kill_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def processes() -> Iterator[Processes]:
    procs = Processes()
    yield procs
    procs.kill_all()


def _env(instance: Instance, tmp_path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "CONVEYOR_HOME": str(instance.home),
        "CONVEYOR_TEST_LEDGER": str(tmp_path / "ledger"),
    }
    env.pop("CONVEYOR_DATABASE_URL", None)
    if not instance.db.is_sqlite:
        env["CONVEYOR_DATABASE_URL"] = instance.db.url
    return env


def _queue(instance: Instance, n: int) -> list[str]:
    ws = load_file(WORKSPACE)
    job = ws.job("stranded")
    return [
        instance.run_store.create(
            job_name=job.name,
            job_version=job.version,
            status=RunStatus.QUEUED,
            origin={**ws.origin, "job": job.name},
        ).id
        for _ in range(n)
    ]


def _strand(
    how: str, run_id: str, env: dict[str, str], tmp_path: Path, processes: Processes
) -> int:
    """Leave ``run_id`` starting, its starter gone; returns the starter's pid as it reported
    it."""
    if how == "admitted_by_a_process_that_exited":
        out = subprocess.run(
            [sys.executable, "-c", ADMIT_AND_EXIT, str(WORKSPACE), run_id],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        return int(out.stdout)
    report = tmp_path / "launching"
    daemon = processes.start(
        [sys.executable, "-c", DAEMON_STUCK_IN_LAUNCH, str(WORKSPACE), str(report)],
        env,
        tmp_path / "stuck-daemon.log",
    )
    wait_until(report.exists, 60, "the daemon to mark the run starting and launch it")
    launched, pid = report.read_text().split()
    assert (launched, int(pid)) == (run_id, daemon.pid)
    daemon.send_signal(signal.SIGKILL)
    daemon.wait()
    return daemon.pid


def _executions(ledger: Path) -> dict[str, list[tuple[str, int, float]]]:
    """Per run id, its ledger lines as (event, pid, time)."""
    out: dict[str, list[tuple[str, int, float]]] = {}
    for line in ledger.read_text().splitlines():
        event, run_id, pid, at = line.split()
        out.setdefault(run_id, []).append((event, int(pid), float(at)))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("how", ["admitted_by_a_process_that_exited", "daemon_killed_in_launch"])
def test_a_start_whose_starter_died_is_requeued_and_runs_once(
    durable: Instance, tmp_path: Path, processes: Processes, how: str
) -> None:
    env = _env(durable, tmp_path)
    lost, *others = _queue(durable, 3)
    starter = _strand(how, lost, env, tmp_path, processes)
    stranded = durable.run(lost)
    assert stranded.status is RunStatus.STARTING
    assert durable.lease_store.held("job:stranded") == [lost]

    daemon = processes.start(
        [sys.executable, "-m", "conveyor.cli", "daemon", str(WORKSPACE)],
        env,
        tmp_path / "daemon.log",
    )
    [requeued] = wait_until(
        lambda: durable.event_store.for_run(lost, kinds=["requeued"]),
        30,
        "the lost start to be put back in the queue",
    )
    assert f"its starter (process {starter}) ended before a worker began it" in requeued.message
    wait_until(
        lambda: all(durable.run(r).status.is_terminal for r in [lost, *others]),
        60,
        "the three runs to end",
    )
    runs = [durable.run(r) for r in [lost, *others]]
    assert [r.status for r in runs] == [RunStatus.SUCCESS] * 3
    assert runs[0].token == 2  # started once more, after the lost start
    for run in runs[1:]:
        assert run.started_at is not None
        assert run.started_at - requeued.at < PROMPTLY

    # A worker for the old start that comes late is refused and does nothing. (A worker
    # that has begun loading adopts its start, so a start is requeued only when no live
    # process answers for it.)
    with pytest.raises(StorageError, match="not the run's to begin"):  # a LeaseLostError
        durable.run_store.claim(lost, stranded.token)
    after = durable.run(lost)
    assert (after.status, after.token, after.ended_at) == (
        RunStatus.SUCCESS,
        2,
        runs[0].ended_at,
    )

    # Each run executed once, one after another (the job has one slot).
    executions = _executions(tmp_path / "ledger")
    assert sorted(executions) == sorted(r.id for r in runs)
    spans = []
    for run in runs:
        (begin, pid, start), (end, end_pid, stop) = executions[run.id]
        assert (begin, end, end_pid) == ("begin", "end", pid)
        spans.append((start, stop))
    assert all(a[1] <= b[0] for a, b in pairwise(spans))
    processes.stop(daemon)
    assert durable.lease_store.held("job:stranded") == []
