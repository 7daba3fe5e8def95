"""Admission: a run takes its slots and is marked starting at once, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from conveyor import Instance, RunStatus, job
from conveyor.definitions.job import Job
from conveyor.errors import InvalidTransitionError
from conveyor.scheduler.admission import admit, queued_ahead, slots_of
from conveyor.storage.records import RunRecord


@job(execute={"concurrency": 2})
def two_at_once() -> None: ...


@job(pool="warehouse", execute={"concurrency": 2})
def pooled() -> None: ...


@job(execute={"concurrency": None})
def unlimited() -> None: ...


def _queued(instance: Instance, of: Job, n: int) -> list[RunRecord]:
    return [
        instance.run_store.create(job_name=of.name, job_version="v", status=RunStatus.QUEUED)
        for _ in range(n)
    ]


def _status(instance: Instance, run: RunRecord) -> RunStatus:
    return instance.run(run.id).status


def test_admit_takes_a_slot_and_marks_the_run_starting(durable: Instance) -> None:
    first, second, third = _queued(durable, two_at_once, 3)
    assert admit(durable, two_at_once, first)
    assert admit(durable, two_at_once, second)
    assert not admit(durable, two_at_once, third)
    assert [_status(durable, r) for r in (first, second, third)] == [
        RunStatus.STARTING,
        RunStatus.STARTING,
        RunStatus.QUEUED,
    ]
    assert sorted(durable.lease_store.held("job:two_at_once")) == sorted([first.id, second.id])
    durable.lease_store.release(first.id)  # the first run ended
    assert admit(durable, two_at_once, third)
    assert _status(durable, third) is RunStatus.STARTING
    assert sorted(durable.lease_store.held("job:two_at_once")) == sorted([second.id, third.id])


def test_a_run_started_or_canceled_elsewhere_takes_no_new_slot(durable: Instance) -> None:
    started, canceled = _queued(durable, two_at_once, 2)
    assert admit(durable, two_at_once, started)
    with pytest.raises(InvalidTransitionError):
        admit(durable, two_at_once, started)  # a second starter loses; the slot stays
    assert durable.lease_store.held("job:two_at_once") == [started.id]
    durable.cancel_run(canceled.id)
    with pytest.raises(InvalidTransitionError):
        admit(durable, two_at_once, canceled)
    assert durable.lease_store.held("job:two_at_once") == [started.id]
    assert _status(durable, canceled) is RunStatus.CANCELED


def test_a_full_pool_keeps_the_run_queued_holding_nothing(durable: Instance) -> None:
    assert slots_of(durable, pooled) == [("job:pooled", 2)]  # a pool without a limit: no slot
    durable.pool_store.set("warehouse", 1)
    assert slots_of(durable, pooled) == [("job:pooled", 2), ("pool:warehouse", 1)]
    first, second = _queued(durable, pooled, 2)
    assert admit(durable, pooled, first)
    assert not admit(durable, pooled, second)
    # the job had a slot free: the one the second run took is given back
    assert durable.lease_store.held("job:pooled") == [first.id]
    assert durable.lease_store.held("pool:warehouse") == [first.id]
    assert _status(durable, second) is RunStatus.QUEUED


def test_an_unlimited_job_takes_no_slot(durable: Instance) -> None:
    assert slots_of(durable, unlimited) == []
    runs = _queued(durable, unlimited, 3)
    assert all(admit(durable, unlimited, r) for r in runs)
    assert all(_status(durable, r) is RunStatus.STARTING for r in runs)
    assert durable.lease_store.held("job:unlimited") == []


def test_queued_ahead_counts_older_queued_runs_of_the_job(durable: Instance) -> None:
    first, second, third = _queued(durable, two_at_once, 3)
    _queued(durable, pooled, 1)  # another job's queue is its own
    assert [queued_ahead(durable, two_at_once, r) for r in (first, second, third)] == [0, 1, 2]
    assert admit(durable, two_at_once, first)
    durable.cancel_run(second.id)
    assert queued_ahead(durable, two_at_once, third) == 0
    # an unlimited job's queued runs wait for no slot: nothing is ahead
    older, newer = _queued(durable, unlimited, 2)
    assert queued_ahead(durable, unlimited, newer) == 0
    assert _status(durable, older) is RunStatus.QUEUED
