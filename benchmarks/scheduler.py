"""W6: trigger-to-start latency of the scheduler daemon.

A daemon (in this process, one pass every 0.1 s) starts runs in run-worker
processes, recorded in an SQLite-file instance. For 20 chains, a run of
``a`` is queued and the chained run of ``b`` (``job.success:a``) is timed
from ``a``'s end to ``b`` being queued and to ``b`` running in its worker.
For a job on ``every:1s``, each tick is timed from its due instant.

    .venv/bin/python benchmarks/scheduler.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import emit
from conveyor import Instance, RunStatus
from conveyor.scheduler.daemon import Daemon
from conveyor.workspace import load_file

WORKSPACE = Path(__file__).parent / "chain_ws.py"


def wait_for(predicate, seconds: float = 30):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise TimeoutError


def summary(name: str, values: list[float]) -> None:
    ms = sorted(v * 1000 for v in values)
    emit(
        workload=name,
        n=len(ms),
        median_ms=round(statistics.median(ms), 1),
        worst_ms=round(ms[-1], 1),
        best_ms=round(ms[0], 1),
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        os.environ["CONVEYOR_HOME"] = home
        instance = Instance.at(home)
        ws = load_file(WORKSPACE)
        daemon = Daemon(ws, instance)
        stop = threading.Event()
        thread = threading.Thread(target=daemon.run, args=(stop,), daemon=True)
        thread.start()
        job = ws.job("a")
        queued, running = [], []
        for _ in range(21):
            run = instance.run_store.create(
                job_name="a",
                job_version=job.version,
                status=RunStatus.QUEUED,
                origin={**ws.origin, "job": "a"},
            )
            done = wait_for(
                lambda run=run: instance.run(run.id).status.is_terminal and instance.run(run.id)
            )
            chained = wait_for(
                lambda run=run: next(
                    (
                        r
                        for r in instance.runs("b", limit=5)
                        if r.tags.get("upstream_run") == run.id and r.started_at
                    ),
                    None,
                )
            )
            ended = done.ended_at.timestamp()
            queued.append(chained.created_at.timestamp() - ended)
            running.append(chained.started_at.timestamp() - ended)
        queued, running = queued[1:], running[1:]  # the first warms the worker's imports
        summary("W6 job.success chain: upstream end -> downstream queued", queued)
        summary("W6 job.success chain: upstream end -> downstream running", running)
        time.sleep(6)
        ticks = instance.tick_store.for_job("tick", limit=100)[1:]
        created = []
        started = []
        for t in ticks:
            run = instance.run(t["run_id"])
            created.append(run.created_at.timestamp() - t["tick_at"])
            if run.started_at is not None:
                started.append(run.started_at.timestamp() - t["tick_at"])
        summary("W6 every:1s tick: due -> queued", created)
        summary("W6 every:1s tick: due -> running", started)
        stop.set()
        thread.join()
        wait_for(lambda: not instance.runs(status=["starting", "running"]), 30)
        daemon.reap(wait=10)
        instance.close()


if __name__ == "__main__":
    main()
