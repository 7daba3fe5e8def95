"""Ticks fire once and leases never double-book, on SQLite and PostgreSQL, under races."""

from __future__ import annotations

import threading
import time

from conveyor.storage.instance import Instance
from conveyor.storage.states import RunStatus
from conveyor.storage.ticks import TickSpec
from tests.waiting import wait_until

RUN = {"job_version": "v1", "tags": {"trigger": "every:2s"}}


def test_a_tick_fires_once_with_its_queued_run(durable: Instance) -> None:
    first = durable.tick_store.fire(
        "every:2s@100", job_name="j", trigger="every:2s", tick_at=100.0, run=RUN
    )
    again = durable.tick_store.fire(
        "every:2s@100", job_name="j", trigger="every:2s", tick_at=100.0, run=RUN
    )
    assert first is not None
    assert again is None
    run = durable.run(first)
    assert run.status is RunStatus.QUEUED
    assert run.trigger == "every:2s"
    assert durable.run_store.count(job_name="j") == 1
    assert durable.tick_store.last("j", "every:2s") == 100.0
    assert durable.tick_store.last("j", "other") is None


def test_racing_daemons_fire_each_tick_once(durable: Instance) -> None:
    won: list[str] = []
    lock = threading.Lock()

    def daemon() -> None:
        for t in range(30):
            rid = durable.tick_store.fire(
                f"k@{t}", job_name="race", trigger="every:1s", tick_at=float(t), run=RUN
            )
            if rid is not None:
                with lock:
                    won.append(rid)

    threads = [threading.Thread(target=daemon) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert len(won) == 30
    assert durable.run_store.count(job_name="race") == 30
    assert [t["tick_at"] for t in durable.tick_store.for_job("race")] == [
        float(t) for t in range(30)
    ]


def spec(n: int) -> TickSpec:
    return TickSpec(f"every:2s@{n}", "j", "every:2s", float(n), RUN)


def test_a_batch_of_ticks_fires_each_once(durable: Instance) -> None:
    store = durable.tick_store
    assert store.fire("every:2s@2", job_name="j", trigger="every:2s", tick_at=2.0, run=RUN)
    ids = store.fire_many([spec(n) for n in (0, 2, 4)])
    assert ids[1] is None  # fired before
    assert ids[0] is not None
    assert ids[2] is not None
    assert durable.run_store.count(job_name="j") == 3
    assert store.fire_many([spec(n) for n in (0, 2, 4)]) == [None, None, None]
    # a key twice in one batch (as when another daemon wins a race): each fires once
    ids = store.fire_many([spec(6), spec(6), spec(8)])
    assert ids[1] is None
    assert ids[0] is not None
    assert ids[2] is not None
    assert durable.run_store.count(job_name="j") == 5


def test_racing_batches_fire_each_tick_once(durable: Instance) -> None:
    fired: list[str] = []
    lock = threading.Lock()

    def daemon() -> None:
        for start in range(0, 60, 10):
            ids = durable.tick_store.fire_many([spec(n) for n in range(start, start + 10)])
            with lock:
                fired.extend(i for i in ids if i is not None)

    threads = [threading.Thread(target=daemon) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(fired) == 60
    assert durable.run_store.count(job_name="j") == 60


def test_leases_limit_holders_and_expire(durable: Instance) -> None:
    leases = durable.lease_store
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


def _run(instance: Instance) -> str:
    return instance.run_store.create(job_name="j", job_version="v", then=RunStatus.RUNNING).id


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

    def grab(n: int) -> None:
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
