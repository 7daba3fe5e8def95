"""Admission: a run takes its concurrency slots and is marked ``starting`` in one step.

Every way of starting a recorded run (the daemon's launcher, ``conveyor run
--detach``) goes through ``admit``, so a job's ``execute={"concurrency": N}``
and its pool's limit hold however its runs are started: a start that skips
the slots is one run more than the limit allows. ``queued_ahead`` keeps the
daemon's order (queued runs of a job start oldest first) for starts that do
not come from its queue; as in the daemon, a run that waits for its own
interval (``freshness.Wait.own``) is not ahead of anyone.
"""

from __future__ import annotations

from sqlalchemy import Connection

from conveyor.definitions.job import Job
from conveyor.scheduler.freshness import interval_wait
from conveyor.storage.instance import Instance
from conveyor.storage.records import RunRecord
from conveyor.storage.states import RunStatus


def slots_of(instance: Instance, job: Job) -> list[tuple[str, int]]:
    """The scopes a run of ``job`` takes a slot of, with their limits.

    ``job:<name>`` under ``execute={"concurrency": N}``, and ``pool:<name>``
    when the job's pool has a limit (``conveyor pools set``). Empty when
    nothing limits the job.
    """
    scopes: list[tuple[str, int]] = []
    if job.execute.concurrency is not None:
        scopes.append((f"job:{job.name}", job.execute.concurrency))
    if job.pool is not None:
        pool_limit = instance.pool_store.get(job.pool)
        if pool_limit is not None:
            scopes.append((f"pool:{job.pool}", pool_limit))
    return scopes


def admit(instance: Instance, job: Job, run: RunRecord) -> bool:
    """Take a slot of each of ``slots_of(job)`` for the queued ``run`` and mark it starting.

    Every slot is taken, and the run marked, in one transaction, so a run
    that another process started, or that was canceled meanwhile, takes no
    new slot: ``InvalidTransitionError`` then, with the slots the other
    process took left to it. False, holding nothing and freeing nothing,
    when a slot is not free.
    The caller starts the run's worker when this returns True.
    """

    def mark(conn: Connection) -> None:
        instance.run_store.set_status_in(conn, run.id, RunStatus.STARTING)

    scopes = slots_of(instance, job)
    if not scopes:
        instance.run_store.set_status(run.id, RunStatus.STARTING)
        return True
    return instance.lease_store.acquire_all(scopes, run.id, then=mark)


def queued_ahead(instance: Instance, job: Job, run: RunRecord) -> int:
    """How many queued runs of ``job``, older than ``run``, wait for a slot before it.

    0 when nothing limits the job (``slots_of`` is empty): its queued runs
    wait for a daemon, not for a slot, so starting ``run`` takes nothing
    from them. The older runs that wait for their own interval (an
    ``is_matching_interval_fresh`` gate) are not counted: the daemon passes
    over them too.
    """
    if not slots_of(instance, job):
        return 0
    ahead = instance.run_store.count_queued_before(job.name, run.cursor)
    if not ahead or all(g.kind != "is_matching_interval_fresh" for g in job.freshness):
        return ahead
    older = instance.run_store.oldest_queued(job.name, ahead)
    return sum(
        1 for r in older if r.cursor < run.cursor and interval_wait(instance, r, job) is None
    )
