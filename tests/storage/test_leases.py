"""The lease store's contract: slots never double-booked, freed with their run, on SQLite
and PostgreSQL, also when acquirers race."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Connection

from conveyor.storage.instance import Instance
from conveyor.storage.states import RunStatus
from tests.waiting import wait_until


def _run(instance: Instance) -> str:
    return instance.run_store.create(job_name="j", job_version="v", then=RunStatus.RUNNING).id


def test_leases_limit_holders_and_expire(durable: Instance) -> None:
    leases = durable.lease_store
    assert leases.held("job:a") == []
    assert leases.acquire("job:a", "r1", limit=2)
    assert leases.acquire("job:a", "r1", limit=2)  # a holder keeps its slot
    assert leases.acquire("job:a", "r2", limit=2)
    assert not leases.acquire("job:a", "r3", limit=2)
    assert sorted(leases.held("job:a")) == ["r1", "r2"]
    leases.release("r1")
    assert leases.acquire("job:a", "r3", limit=2)
    # A holder that is no run (or a run still queued) holds its slot until it expires.
    assert leases.acquire("job:b", "r4", limit=1, ttl=0.05)
    wait_until(lambda: leases.held("job:b") == [], 10, "the lease to expire")
    assert leases.acquire("job:b", "r5", limit=1)  # an expired lease is taken over
    assert leases.held("job:b") == ["r5"]


def test_scopes_are_independent(durable: Instance) -> None:
    leases = durable.lease_store
    assert leases.acquire("job:a", "r1", limit=1)
    assert leases.acquire("job:b", "r2", limit=1)
    assert not leases.acquire("job:a", "r2", limit=1)
    assert leases.held("job:a") == ["r1"]
    assert leases.held("job:b") == ["r2"]


def test_acquire_all_takes_every_slot_or_none(durable: Instance) -> None:
    leases = durable.lease_store
    assert leases.acquire("pool:db", "other", limit=1)
    assert not leases.acquire_all([("job:a", 1), ("pool:db", 1)], "r1")
    assert leases.held("job:a") == []  # the free scope was not taken either
    assert leases.acquire_all([("job:a", 1), ("pool:db", 2)], "r1")
    assert leases.held("job:a") == ["r1"]
    assert sorted(leases.held("pool:db")) == ["other", "r1"]


def test_then_runs_in_the_transaction_and_its_error_takes_nothing(durable: Instance) -> None:
    leases = durable.lease_store
    seen: list[Connection] = []
    assert leases.acquire("job:a", "r1", limit=1, then=seen.append)
    assert len(seen) == 1

    def refuse(conn: Connection) -> None:
        raise RuntimeError("the run moved on")

    with pytest.raises(RuntimeError, match="moved on"):
        leases.acquire("job:b", "r2", limit=1, then=refuse)
    assert leases.held("job:b") == []


def test_release_frees_the_run_and_its_tasks_only(durable: Instance) -> None:
    leases = durable.lease_store
    assert leases.acquire("job:a", "run1", limit=5)
    assert leases.acquire("pool:p", "run1/t[0]", limit=5)
    assert leases.acquire("pool:p", "run10/t", limit=5)  # another run, same prefix
    assert leases.acquire("pool:p", "run1_x", limit=5)
    leases.release("run1")
    assert leases.held("job:a") == []
    assert sorted(leases.held("pool:p")) == ["run10/t", "run1_x"]
    leases.release("nobody")  # releasing nothing is no error


def test_a_running_run_keeps_its_slots_however_long_it_is_silent(durable: Instance) -> None:
    leases = durable.lease_store
    rid = _run(durable)
    key = "t" * 200  # a task key may be long
    assert leases.acquire("job:j", rid, limit=1, ttl=0.01)
    assert leases.acquire("pool:db", f"{rid}/{key}", limit=2, ttl=0.01)
    assert leases.acquire("pool:db", f"{rid}/other", limit=2, ttl=0.01)
    other = _run(durable)
    time.sleep(0.05)  # past every ttl: still not free, the run has not ended
    assert not leases.acquire("job:j", other, limit=1)
    assert not leases.acquire("pool:db", f"{other}/x", limit=2)
    assert sorted(leases.held("pool:db")) == sorted([f"{rid}/{key}", f"{rid}/other"])
    leases.release_one("pool:db", f"{rid}/other")
    assert leases.held("pool:db") == [f"{rid}/{key}"]
    # Once the run has ended, its slots are free at once, even if nobody released them.
    durable.run_store.set_status(rid, RunStatus.FAILURE, error="ended elsewhere")
    assert leases.held("job:j") == []
    assert leases.acquire("job:j", other, limit=1)
    assert leases.acquire("pool:db", f"{other}/x", limit=1)


def test_racing_acquirers_never_exceed_the_limit(durable: Instance) -> None:
    winners: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(12)

    def grab(n: int) -> None:
        start.wait(timeout=30)
        if durable.lease_store.acquire("job:hot", f"h{n}", limit=3):
            with lock:
                winners.append(f"h{n}")

    threads = [threading.Thread(target=grab, args=(n,)) for n in range(12)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert len(winners) == 3
    assert sorted(durable.lease_store.held("job:hot")) == sorted(winners)
