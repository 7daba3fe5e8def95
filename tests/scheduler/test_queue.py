"""The run queue: first in, first out, per job and per pool, however long it is."""

from __future__ import annotations

import time

from conveyor import Instance, RunStatus, job
from conveyor.scheduler.daemon import Daemon
from conveyor.storage.runs import RunStore, new_run_id
from conveyor.storage.schema import runs
from conveyor.workspace import Workspace
from tests.waiting import wait_until


@job(execute={"concurrency": 1})
def serial() -> None: ...


@job(execute={"concurrency": 1})
def other() -> None: ...


@job(pool="shared", execute={"concurrency": None})
def pooled_a() -> None: ...


@job(pool="shared", execute={"concurrency": None})
def pooled_b() -> None: ...


def _queue(instance: Instance, jobs: list[str]) -> list[str]:
    """Queue a run of each of ``jobs``, in that order (one insert: it is quick)."""
    now = time.time()
    rows = [
        RunStore.new_row(
            new_run_id(),
            status=RunStatus.QUEUED,
            now=now + n * 1e-4,
            job_name=name,
            job_version="v",
        )
        for n, name in enumerate(jobs)
    ]
    with instance.db.write() as conn:
        conn.execute(runs.insert(), rows)
    return [r["id"] for r in rows]


class Recorder:
    """A launcher that notes the order runs start in and ends each at once."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def __call__(self, run_id: str, instance: Instance) -> None:
        self.started.append(run_id)
        instance.run_store.claim(run_id, instance.run(run_id).token)
        instance.run_store.set_status(run_id, RunStatus.SUCCESS)
        instance.lease_store.release(run_id)


def _daemon(instance: Instance, recorder: Recorder, *jobs: object) -> Daemon:
    ws = Workspace(jobs={j.name: j for j in jobs}, origin={"module": __name__})  # type: ignore[attr-defined]
    return Daemon(ws, instance, launch=recorder)


def test_1500_queued_runs_start_in_the_order_they_were_queued(durable: Instance) -> None:
    ids = _queue(durable, ["serial"] * 1500)
    recorder = Recorder()
    daemon = _daemon(durable, recorder, serial)

    def all_started() -> bool:
        daemon.launch_queued()
        return len(recorder.started) >= len(ids)

    wait_until(all_started, 300, "1,500 runs to start")
    assert recorder.started == ids


def test_a_blocked_job_does_not_hold_up_the_others(durable: Instance) -> None:
    [first, second] = _queue(durable, ["serial", "serial"])
    [theirs] = _queue(durable, ["other"])
    recorder = Recorder()
    daemon = _daemon(durable, recorder, serial, other)
    durable.lease_store.acquire("job:serial", "elsewhere", 1)  # serial's slot is taken
    daemon.launch_queued()
    assert recorder.started == [theirs]
    durable.lease_store.release("elsewhere")
    daemon.launch_queued()
    assert recorder.started == [theirs, first, second]


def test_a_pool_starts_its_runs_oldest_first_across_jobs(durable: Instance) -> None:
    durable.pool_store.set("shared", 1)
    ids = _queue(durable, ["pooled_b", "pooled_a", "pooled_b", "pooled_a"])
    recorder = Recorder()
    daemon = _daemon(durable, recorder, pooled_a, pooled_b)
    for _ in ids:
        daemon.launch_queued()
    assert recorder.started == ids


def test_every_running_run_is_looked_at_for_its_timeout(durable: Instance) -> None:
    @job(execute={"concurrency": None, "timeout": "1s"})
    def slow() -> None: ...

    ids = _queue(durable, ["slow"] * 1001)  # the daemon looked at the newest 1,000
    with durable.db.write() as conn:
        conn.execute(
            runs.update()
            .where(runs.c.id.in_(ids))
            .values(status=str(RunStatus.RUNNING), started_at=time.time() - 60)
        )
    daemon = Daemon(
        Workspace(jobs={"slow": slow}, origin={"module": __name__}),
        durable,
        launch=lambda *_: None,
    )
    daemon.stop_overdue_runs(time.time())
    # The oldest ran past their timeout like the newest: every one is asked to stop.
    assert durable.run(ids[0]).status in (RunStatus.CANCELING, RunStatus.CANCELED)
    assert not durable.runs("slow", status="running", limit=10)


def test_a_long_blocked_queue_does_not_hold_up_newer_runs_of_other_jobs(
    durable: Instance,
) -> None:
    backlog = _queue(durable, ["serial"] * 250)
    [theirs] = _queue(durable, ["other"])
    recorder = Recorder()
    daemon = _daemon(durable, recorder, serial, other)
    durable.lease_store.acquire("job:serial", "elsewhere", 1)
    daemon.launch_queued()
    assert recorder.started == [theirs]
    durable.lease_store.release("elsewhere")
    for _ in range(3):
        daemon.launch_queued()
    assert recorder.started == [theirs, *backlog]
