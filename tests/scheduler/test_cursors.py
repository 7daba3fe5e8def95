"""Ordered cursors: chains and webhooks fire from database sequence ids, not from clocks."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from itertools import cycle
from typing import Any

import pytest
from sqlalchemy import insert

from conveyor import Instance, RunStatus, job
from conveyor.scheduler.chains import chain_cursor, workspace_key
from conveyor.scheduler.cursor import OrderedCursor
from conveyor.scheduler.daemon import Daemon
from conveyor.scheduler.webhooks import WEBHOOK_CURSOR
from conveyor.storage.runs import RunStore
from conveyor.storage.schema import webhook_calls
from conveyor.workspace import Workspace
from tests.waiting import wait_until

# The clocks of the processes that write the events: on time, 30 s behind (the host
# of the second daemon), a minute behind.
SKEWS = (0.0, -30.0, -60.0)


@job(execute={"concurrency": None})
def source() -> None: ...


@job(trigger=source.success, execute={"concurrency": None})
def after_success() -> None: ...


@job(trigger=source.fail, execute={"concurrency": None})
def after_failure() -> None: ...


@job(trigger=source.completed, execute={"concurrency": None})
def after_any() -> None: ...


@job(trigger="webhook:/loaded", execute={"concurrency": None})
def hooked() -> None: ...


WS = Workspace(
    jobs={j.name: j for j in (source, after_success, after_failure, after_any, hooked)},
    origin={"module": __name__},
)


def _end(instance: Instance, status: RunStatus, at: float) -> str:
    """A run of ``source`` ended ``status`` by a worker whose clock says ``at``."""
    run = instance.run_store.create(
        job_name="source", job_version="v", then=RunStatus.RUNNING, origin=WS.origin
    )
    instance.run_store.set_status(run.id, status, at=at)
    return run.id


def _call(instance: Instance, at: float) -> int:
    """A webhook call recorded by a server whose clock says ``at``."""
    with instance.db.write() as conn:
        key = conn.execute(insert(webhook_calls).values(path="/loaded", at=at)).inserted_primary_key
    assert key is not None
    return int(key[0])


def _upstreams(instance: Instance, job_name: str) -> list[str]:
    return [r.tags["upstream_run"] for r in instance.runs(job_name, limit=10_000)]


@pytest.fixture
def pair(durable: Instance) -> Iterator[tuple[Daemon, Daemon]]:
    """Two daemons running in threads: one on time, one whose clock is 30 s behind."""
    daemons = (
        Daemon(WS, durable, launch=lambda *_: None),
        Daemon(WS, durable, clock=lambda: time.time() - 30, launch=lambda *_: None),
    )
    stop = threading.Event()
    threads = [threading.Thread(target=d.run, args=(stop,), daemon=True) for d in daemons]
    for thread in threads:
        thread.start()
    # Both have read how far the cursors got (on an instance new to daemons: the start).
    wait_until(
        lambda: (
            all(d._chains.cursor.cursor.started for d in daemons)
            and all(d._webhooks.cursor.cursor.started for d in daemons)
        ),
        30,
        "both daemons to make a pass",
    )
    yield daemons
    stop.set()
    for thread in threads:
        thread.join(timeout=30)


@pytest.mark.parametrize("durable", ["postgres"], indirect=True)
def test_two_daemons_with_skewed_clocks_fire_each_chain_and_webhook_once(
    durable: Instance, pair: tuple[Daemon, Daemon]
) -> None:
    skews = cycle(SKEWS)
    ended: dict[str, RunStatus] = {}
    calls: list[int] = []
    for n in range(200):
        at = time.time() + next(skews)
        if n % 2:
            calls.append(_call(durable, at))
        else:
            status = RunStatus.SUCCESS if n % 4 == 0 else RunStatus.FAILURE
            ended[_end(durable, status, at)] = status
    succeeded = sorted(r for r, s in ended.items() if s is RunStatus.SUCCESS)
    failed = sorted(r for r, s in ended.items() if s is RunStatus.FAILURE)

    def fired() -> bool:
        return (
            len(durable.runs("after_any", limit=10_000)) >= len(ended)
            and len(durable.runs("hooked", limit=10_000)) >= len(calls)
            and len(durable.runs("after_success", limit=10_000)) >= len(succeeded)
            and len(durable.runs("after_failure", limit=10_000)) >= len(failed)
        )

    wait_until(fired, 60, "every chain and webhook to fire")
    # Both daemons have read past every event: nothing more can fire.
    end_ids = {e.id for e in durable.run_store.ends_after(0, 10_000)}

    def read_all(cursor: OrderedCursor[Any], ids: set[int]) -> bool:
        assert cursor.position is not None
        return cursor.position >= max(ids) and not ids & set(cursor.gaps)

    wait_until(
        lambda: (
            all(read_all(d._chains.cursor.cursor, end_ids) for d in pair)
            and all(read_all(d._webhooks.cursor.cursor, set(calls)) for d in pair)
        ),
        30,
        "both daemons to read every event",
    )
    assert sorted(_upstreams(durable, "after_success")) == succeeded
    assert sorted(_upstreams(durable, "after_failure")) == failed
    assert sorted(_upstreams(durable, "after_any")) == sorted(ended)
    hooked_calls = [int(r.tags["webhook_call"]) for r in durable.runs("hooked", limit=10_000)]
    assert sorted(hooked_calls) == calls
    # The stored cursors are ids (below the oldest gap), for a restart to go on from.
    for name in (chain_cursor(workspace_key(WS.origin)), WEBHOOK_CURSOR):
        stored, _ = durable.sensor_store.get(name)
        assert stored is not None
        assert stored.isdigit()


@pytest.mark.parametrize("durable", ["postgres"], indirect=True)
def test_an_end_committed_after_a_later_one_still_fires(durable: Instance) -> None:
    daemon = Daemon(WS, durable, launch=lambda *_: None)
    daemon.fire_chained(time.time())  # the cursor starts here
    slow = durable.run_store.create(
        job_name="source", job_version="v", then=RunStatus.RUNNING, origin=WS.origin
    )
    # The slow end takes its id first and commits last.
    with durable.db.engine.connect() as held, held.begin():
        RunStore.set_status_in(held, slow.id, RunStatus.SUCCESS)
        fast = _end(durable, RunStatus.SUCCESS, time.time())
        daemon.fire_chained(time.time())
        assert _upstreams(durable, "after_success") == [fast]
    daemon.fire_chained(time.time())
    assert sorted(_upstreams(durable, "after_success")) == sorted([fast, slow.id])
    daemon.fire_chained(time.time())
    assert len(_upstreams(durable, "after_success")) == 2


def test_a_gap_is_read_again_for_a_while_then_given_up() -> None:
    rows: dict[int, str] = {1: "a", 3: "c"}
    clock = {"now": 0.0}
    cursor: OrderedCursor[tuple[int, str]] = OrderedCursor(
        after=lambda after, limit: sorted((i, v) for i, v in rows.items() if i > after)[:limit],
        among=lambda ids: [(i, rows[i]) for i in ids if i in rows],
        id_of=lambda row: row[0],
        keep_gaps=60.0,
        clock=lambda: clock["now"],
        batch=2,
    )
    cursor.start(0)
    batch = cursor.read()
    assert [v for _, v in batch.rows] == ["a", "c"]
    assert cursor.position == 0  # nothing moves before the commit
    cursor.commit(batch)
    assert (cursor.position, set(cursor.gaps), cursor.settled) == (3, {2}, 1)
    rows[2] = "b"  # committed late
    rows[4] = "d"
    batch = cursor.read()
    cursor.commit(batch)
    assert [v for _, v in batch.rows] == ["b", "d"]
    assert (cursor.gaps, cursor.settled) == ({}, 4)
    rows.update({6: "f", 7: "g", 8: "h"})  # 5 rolled back: it never shows up
    cursor.commit(cursor.read())
    assert set(cursor.gaps) == {5}
    clock["now"] = 59.0
    assert cursor.read().rows == []
    clock["now"] = 61.0
    cursor.commit(cursor.read())
    assert (cursor.gaps, cursor.settled) == ({}, 8)


def test_a_cursor_stored_as_a_time_before_ids_goes_on_from_that_time(
    durable: Instance,
) -> None:
    old = _call(durable, time.time() - 600)
    # What a daemon of before stored: an epoch time, a while after the old call.
    durable.sensor_store.save(WEBHOOK_CURSOR, repr(time.time() - 300), time.time())
    new = _call(durable, time.time())
    Daemon(WS, durable, launch=lambda *_: None).fire_webhooks(time.time())
    hooked = [int(r.tags["webhook_call"]) for r in durable.runs("hooked")]
    assert hooked == [new]
    assert old not in hooked
    assert durable.sensor_store.get(WEBHOOK_CURSOR)[0] == str(new)
