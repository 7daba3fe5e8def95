"""Admission raced by two starters of one run (two daemons), on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor import Instance, RunStatus, job
from conveyor.errors import InvalidTransitionError
from conveyor.scheduler.admission import admit


@job(execute={"concurrency": 1})
def one_at_once() -> None: ...


def test_a_starter_that_found_no_slot_leaves_the_slot_another_starter_took(
    durable: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, contested, third = (
        durable.run_store.create(
            job_name=one_at_once.name, job_version="v", status=RunStatus.QUEUED
        )
        for _ in range(3)
    )
    assert admit(durable, one_at_once, first)
    acquire = durable.lease_store.acquire_all

    def full_then_freed(*args: Any, **kwargs: Any) -> bool:
        taken = acquire(*args, **kwargs)
        if not taken:
            # Right after this starter found the slot held, the first run ends and
            # another daemon starts the contested run in the slot it freed.
            monkeypatch.setattr(durable.lease_store, "acquire_all", acquire)
            durable.run_store.claim(first.id, 1)
            durable.run_store.set_status(first.id, RunStatus.SUCCESS, token=1)
            durable.lease_store.release(first.id)
            assert admit(durable, one_at_once, contested)
        return taken

    monkeypatch.setattr(durable.lease_store, "acquire_all", full_then_freed)
    assert not admit(durable, one_at_once, contested)
    assert durable.run(contested.id).status is RunStatus.STARTING
    # The slot stays the contested run's: the job's one slot is not handed out twice.
    assert durable.lease_store.held("job:one_at_once") == [contested.id]
    assert not admit(durable, one_at_once, third)
    assert durable.run(third.id).status is RunStatus.QUEUED


@job(execute={"concurrency": 2}, pool="narrow")
def pooled() -> None: ...


def test_a_start_that_finds_its_pool_full_takes_no_slot_at_all(durable: Instance) -> None:
    durable.pool_store.set("narrow", 1)
    first, second = (
        durable.run_store.create(job_name=pooled.name, job_version="v", status=RunStatus.QUEUED)
        for _ in range(2)
    )
    assert admit(durable, pooled, first)
    # A second starter of the first run (another daemon) changes nothing and frees nothing.
    with pytest.raises(InvalidTransitionError):
        admit(durable, pooled, first)
    assert not admit(durable, pooled, second)  # the pool is full, the job is not
    assert durable.lease_store.held("job:pooled") == [first.id]
    assert durable.lease_store.held("pool:narrow") == [first.id]
    assert durable.run(second.id).status is RunStatus.QUEUED
