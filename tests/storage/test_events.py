"""The event store's contract: a run's events in the order they were recorded, filtered by
kind, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from conveyor.errors import NotFoundError
from conveyor.storage.events import EventStore
from conveyor.storage.instance import Instance
from conveyor.storage.states import RunStatus


def _run(inst: Instance) -> str:
    return inst.run_store.create(job_name="j", job_version="v", then=RunStatus.RUNNING).id


def test_events_come_back_in_the_order_recorded(durable: Instance) -> None:
    rid, other = _run(durable), _run(durable)
    store = durable.event_store
    assert store.for_run(rid) == []
    for i, kind in enumerate(["requeued", "retry", "requeued", "hook_error"]):
        store.add(rid, kind, f"message {i}")
    store.add(other, "retry", "another run's")
    events = store.for_run(rid)
    assert [e.message for e in events] == [f"message {i}" for i in range(4)]
    assert [e.id for e in events] == sorted(e.id for e in events)
    first = events[0]
    assert (first.run_id, first.kind, first.task_key, first.attempt, first.data) == (
        rid,
        "requeued",
        None,
        None,
        None,
    )
    assert first.at.tzinfo is not None


def test_kinds_filter(durable: Instance) -> None:
    rid = _run(durable)
    store = durable.event_store
    for kind in ["a", "b", "c", "a"]:
        store.add(rid, kind, kind)
    assert [e.kind for e in store.for_run(rid, kinds=["a", "c"])] == ["a", "c", "a"]
    assert store.for_run(rid, kinds=["none"]) == []
    assert len(store.for_run(rid, kinds=[])) == 4  # no filter


def test_rows_written_in_a_transaction_keep_their_fields(durable: Instance) -> None:
    rid = _run(durable)
    rows = [
        {
            "run_id": rid,
            "task_key": "t[1]",
            "attempt": 2,
            "at": 100.0,
            "kind": "retry",
            "message": "again",
            "data": {"wait": 1.5, "why": ["x"]},
        }
    ]
    with durable.db.write() as conn:
        EventStore.write(conn, rows)
        EventStore.write(conn, [])
    [event] = durable.event_store.for_run(rid)
    assert (event.task_key, event.attempt, event.data) == ("t[1]", 2, {"wait": 1.5, "why": ["x"]})
    assert event.at.timestamp() == 100.0


def test_an_event_for_an_unknown_run_is_not_found(durable: Instance) -> None:
    with pytest.raises(NotFoundError, match=r"no run '0{32}' to record a 'requeued' event for"):
        durable.event_store.add("0" * 32, "requeued", "lost")
