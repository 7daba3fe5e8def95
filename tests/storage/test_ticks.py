"""The tick store's contract: each tick fires exactly once, with its queued run, on SQLite
and PostgreSQL, also when daemons race."""

from __future__ import annotations

import threading

from conveyor.storage.instance import Instance
from conveyor.storage.states import RunStatus
from conveyor.storage.ticks import TickSpec

RUN = {"job_version": "v1", "tags": {"trigger": "every:2s"}}


def spec(n: int, job: str = "j") -> TickSpec:
    return TickSpec(f"every:2s@{n}", job, "every:2s", float(n), RUN)


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
    assert run.tags == {"trigger": "every:2s"}
    assert run.token == 0
    assert run.pid is None  # a queued run has no process yet
    assert durable.run_store.count(job_name="j") == 1
    assert durable.tick_store.last("j", "every:2s") == 100.0
    assert durable.tick_store.last("j", "other") is None


def test_the_run_gets_the_fields_the_tick_carries(durable: Instance) -> None:
    run = {"job_version": "v7", "interval": (60.0, 120.0), "partition": "eu", "run_config": {}}
    rid = durable.tick_store.fire("k", job_name="p", trigger="every:1m", tick_at=60.0, run=run)
    assert rid is not None
    stored = durable.run(rid)
    assert (stored.job_version, stored.partition_key) == ("v7", "eu")
    assert stored.interval_start is not None
    assert stored.interval_start.timestamp() == 60.0
    [tick] = durable.tick_store.for_job("p")
    assert (tick["key"], tick["run_id"], tick["tick_at"]) == ("k", rid, 60.0)


def test_last_is_the_newest_tick_of_that_trigger(durable: Instance) -> None:
    store = durable.tick_store
    for n in (4, 10, 2):
        store.fire(f"a@{n}", job_name="j", trigger="a", tick_at=float(n), run=RUN)
    store.fire("b@99", job_name="j", trigger="b", tick_at=99.0, run=RUN)
    store.fire("a@50", job_name="other", trigger="a", tick_at=50.0, run=RUN)
    assert store.last("j", "a") == 10.0
    assert store.last("j", "b") == 99.0
    assert store.last("nobody", "a") is None


def test_for_job_lists_oldest_first_up_to_the_limit(durable: Instance) -> None:
    store = durable.tick_store
    assert store.fire_many([spec(n) for n in (5, 1, 3)]) != [None, None, None]
    store.fire_many([spec(2, job="other")])
    assert [t["tick_at"] for t in store.for_job("j")] == [1.0, 3.0, 5.0]
    assert [t["tick_at"] for t in store.for_job("j", limit=2)] == [1.0, 3.0]
    assert store.for_job("nobody") == []


def test_a_batch_of_ticks_fires_each_once(durable: Instance) -> None:
    store = durable.tick_store
    assert store.fire_many([]) == []
    assert store.fire("every:2s@2", job_name="j", trigger="every:2s", tick_at=2.0, run=RUN)
    ids = store.fire_many([spec(n) for n in (0, 2, 4)])
    assert ids[1] is None  # fired before
    assert ids[0] is not None
    assert ids[2] is not None
    assert durable.run(ids[0]).status is RunStatus.QUEUED
    assert durable.run_store.count(job_name="j") == 3
    assert store.fire_many([spec(n) for n in (0, 2, 4)]) == [None, None, None]
    # a key twice in one batch (as when another daemon wins a race): each fires once
    ids = store.fire_many([spec(6), spec(6), spec(8)])
    assert ids[1] is None
    assert ids[0] is not None
    assert ids[2] is not None
    assert durable.run_store.count(job_name="j") == 5
    # each tick points at its own run
    by_key = {t["key"]: t["run_id"] for t in store.for_job("j")}
    assert (by_key["every:2s@6"], by_key["every:2s@8"]) == (ids[0], ids[2])


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


def test_racing_batches_fire_each_tick_once(durable: Instance) -> None:
    fired: list[str] = []
    lock = threading.Lock()

    def daemon(reverse: bool) -> None:
        for start in range(0, 60, 10):
            batch = [spec(n) for n in range(start, start + 10)]
            # Overlapping batches in other orders must not deadlock either.
            ids = durable.tick_store.fire_many(batch[::-1] if reverse else batch)
            with lock:
                fired.extend(i for i in ids if i is not None)

    threads = [threading.Thread(target=daemon, args=(n % 2 == 1,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(fired) == 60
    assert len(set(fired)) == 60
    assert durable.run_store.count(job_name="j") == 60


def test_newest_lists_one_trigger_newest_first_up_to_the_limit(durable: Instance) -> None:
    store = durable.tick_store
    for at in (1.0, 5.0, 3.0):
        store.fire(f"j/a@{at}", job_name="j", trigger="a", tick_at=at, run=RUN)
    store.fire("j/b@9", job_name="j", trigger="b", tick_at=9.0, run=RUN)
    assert [t["tick_at"] for t in store.newest("j", "a")] == [5.0, 3.0, 1.0]
    assert [t["tick_at"] for t in store.newest("j", "a", limit=2)] == [5.0, 3.0]
    assert store.newest("j", "nothing") == []
