"""Chaos with runs: two daemons on PostgreSQL, one SIGKILLed every 10-40 s, while runs start.

The jobs (``chaotic.py``) tick every 1 and 3 s and run 1-5 s each under a
concurrency of 3 and 1. Half the kills are blind; the other half wait (up
to a few seconds) for a daemon to mark a run ``starting`` and kill that
daemon then, as a crash between marking a start and its worker beginning
is the case a blind kill rarely hits. Ticks stop when the chaos does; then
the queue drains, and every tick must have had exactly one run that
executed exactly once, ended ``success``, and never ran beside more runs of
its job than the job's limit.

``CONVEYOR_CHAOS_SECONDS`` sets how long the chaos lasts (default 300).
"""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conveyor import Instance, RunStatus
from tests.waiting import wait_until

WORKSPACE = Path(__file__).parent / "chaotic.py"
# job: (tick period in seconds, concurrency), as in chaotic.py
JOBS = {"chaos_single": (3.0, 1), "chaos_triple": (1.0, 3)}
CHAOS_SECONDS = float(os.environ.get("CONVEYOR_CHAOS_SECONDS", "300"))
# How long the queue may take to drain once ticks stop, on a busy machine.
DRAIN_SECONDS = 300.0
ACTIVE = [RunStatus.QUEUED, RunStatus.STARTING, RunStatus.RUNNING, RunStatus.CANCELING]


@dataclass
class Daemons:
    """The two daemons, each restartable, and every pid any of them had."""

    env: dict[str, str]
    logs: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    killed: set[int] = field(default_factory=set)
    started: int = 0

    def start(self) -> subprocess.Popen[bytes]:
        self.started += 1
        with open(self.logs / f"daemon-{self.started}.log", "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "conveyor.cli", "daemon", str(WORKSPACE)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.killed.add(proc.pid)

    def stop_all(self) -> None:
        """SIGTERM (the daemon closes its launch server), SIGKILL if that takes too long."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass(frozen=True)
class Execution:
    job: str
    run_id: str
    pid: int
    start: float
    end: float


def _starter_of_a_start(instance: Instance, daemons: Daemons, seconds: float) -> int | None:
    """The index of a daemon that has a run ``starting`` (by the run's own record of its
    starter), watched for up to ``seconds``; None if none was seen."""
    pids = {proc.pid: i for i, proc in enumerate(daemons.procs)}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for run in instance.run_store.list(status=RunStatus.STARTING, limit=50):
            if run.job_name in JOBS and run.pid in pids:
                return pids[run.pid]
        time.sleep(0.01)
    return None


def _ledger(path: Path) -> tuple[list[Execution], Counter[str]]:
    """The executions the runs reported, and how often each run id began."""
    began: Counter[str] = Counter()
    executions = []
    for line in path.read_text().splitlines():
        event, job, run_id, pid, start, *end = line.split()
        if event == "begin":
            began[run_id] += 1
        else:
            executions.append(Execution(job, run_id, int(pid), float(start), float(end[0])))
    return executions, began


def _most_at_once(executions: list[Execution]) -> int:
    """The most executions that overlapped at any instant (one ending as another begins at
    the same instant do not overlap)."""
    edges = sorted([(e.start, 1) for e in executions] + [(e.end, -1) for e in executions])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def _drained(instance: Instance, last_ticks: dict[str, float]) -> bool:
    for job in JOBS:
        if instance.tick_store.last(job, f"every:{JOBS[job][0]:g}s") != last_ticks[job]:
            return False
        if instance.run_store.list(job_name=job, status=ACTIVE, limit=1):
            return False
    return True


@pytest.mark.slow
@pytest.mark.timeout(CHAOS_SECONDS + DRAIN_SECONDS + 180)
def test_runs_start_exactly_once_and_within_their_limits_through_daemon_kills(
    pg_server_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    ledger = tmp_path / "ledger"
    ledger.touch()
    until = math.ceil(time.time() + CHAOS_SECONDS)
    env = {
        **os.environ,
        "CONVEYOR_DATABASE_URL": pg_server_url,
        "CONVEYOR_HOME": str(home),
        "CONVEYOR_TEST_LEDGER": str(ledger),
        "CONVEYOR_TEST_TICKS_UNTIL": str(until),
    }
    instance = Instance.at(home, database_url=pg_server_url)
    rng = random.Random(20261130)
    daemons = Daemons(env, tmp_path)
    kills = targeted = 0
    try:
        daemons.procs = [daemons.start(), daemons.start()]
        while True:
            pause = rng.uniform(10.0, 40.0)
            if time.time() + pause >= until:
                break
            time.sleep(pause)  # the chaos's own pace, not a wait for something to happen
            victim = _starter_of_a_start(instance, daemons, 3.0) if rng.random() < 0.5 else None
            if victim is None:
                victim = rng.randrange(2)
            else:
                targeted += 1
            daemons.kill(victim)
            kills += 1
            time.sleep(rng.uniform(0.0, 2.0))  # down for a moment: the other one judges
            daemons.procs[victim] = daemons.start()
        last_ticks = {job: math.floor(until / period) * period for job, (period, _) in JOBS.items()}
        wait_until(
            lambda: _drained(instance, last_ticks),
            until - time.time() + DRAIN_SECONDS,
            "the last ticks to fire and every run to end",
            every=0.5,
        )
        daemons.stop_all()
    finally:
        for proc in daemons.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()

    executions, began = _ledger(ledger)
    report: dict[str, object] = {"kills": kills, "targeted kills": targeted}
    requeued_total = 0
    try:
        for job, (period, limit) in JOBS.items():
            ticks = instance.tick_store.for_job(job, limit=100_000)
            runs = instance.run_store.list(job_name=job, limit=100_000)
            requeues = {
                r.id: [e.message for e in instance.run_details(r.id).events if e.kind == "requeued"]
                for r in runs
            }
            requeues = {rid: messages for rid, messages in requeues.items() if messages}
            mine = [e for e in executions if e.job == job]
            most = _most_at_once(mine)
            requeued_total += sum(len(m) for m in requeues.values())
            report[job] = {
                "ticks": len(ticks),
                "runs": len(runs),
                "requeued runs": len(requeues),
                "requeues": sum(len(m) for m in requeues.values()),
                "most at once": most,
                "limit": limit,
            }

            # one tick per period from the first fired to the last, none missed or repeated
            times = [t["tick_at"] for t in ticks]
            assert times == [times[0] + period * i for i in range(len(times))]
            assert times[-1] == last_ticks[job]
            run_ids = [t["run_id"] for t in ticks]
            assert len(set(run_ids)) == len(run_ids)
            assert {r.id for r in runs} == set(run_ids)
            # no start lost: every run ran to success, none failed for a worker that never came
            failed = {r.id: (r.status, r.error) for r in runs if r.status is not RunStatus.SUCCESS}
            assert failed == {}
            # put back in the queue only because the daemon that marked it starting was killed
            for messages in requeues.values():
                for message in messages:
                    assert any(f"its starter (process {pid})" in message for pid in daemons.killed)
            # the ledger: each run executed once, in one process, within the job's limit
            assert sorted(e.run_id for e in mine) == sorted(run_ids)
            assert all(began[rid] == 1 for rid in run_ids)
            assert most <= limit
        assert kills >= CHAOS_SECONDS // 40 - 1
        if targeted >= 3:
            # A targeted kill strands the start it saw unless that start's worker was already
            # on its way: some of them must have been put back in the queue (and then ran).
            assert requeued_total >= 1
    finally:
        print(f"chaos over {CHAOS_SECONDS:g}s: {report}")
        instance.close()
