"""The run store's contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest

from conveyor.errors import ConfigError, InvalidTransitionError, NotFoundError
from conveyor.storage.instance import Instance
from conveyor.storage.states import RunStatus


def _create(inst: Instance, job: str = "etl", **kw: object):  # type: ignore[no-untyped-def]
    return inst.run_store.create(job_name=job, job_version="v1", **kw)  # type: ignore[arg-type]


def test_create_and_get(durable: Instance) -> None:
    run = _create(
        durable,
        tags={"team": "a"},
        run_config={"config": {"x": 1}},
        selection=["a+"],
        origin={"file": "/x.py"},
    )
    got = durable.run_store.get(run.id)
    assert got.id == run.id
    assert got.status is RunStatus.STARTING
    assert got.tags == {"team": "a"}
    assert got.run_config == {"config": {"x": 1}}
    assert got.selection == ["a+"]
    assert got.origin == {"file": "/x.py"}
    assert got.started_at is None
    assert got.ended_at is None
    assert got.trigger == "manual"


def test_status_moves_through_the_table(durable: Instance) -> None:
    run = _create(durable)
    durable.run_store.set_status(run.id, RunStatus.RUNNING)
    running = durable.run_store.get(run.id)
    assert running.status is RunStatus.RUNNING
    assert running.started_at is not None
    durable.run_store.set_status(run.id, RunStatus.FAILURE, error="boom")
    done = durable.run_store.get(run.id)
    assert done.status is RunStatus.FAILURE
    assert done.error == "boom"
    assert done.ended_at is not None
    assert done.duration is not None
    assert done.duration >= 0


def test_forbidden_transitions_raise_and_change_nothing(durable: Instance) -> None:
    run = _create(durable)
    durable.run_store.set_status(run.id, RunStatus.RUNNING)
    durable.run_store.set_status(run.id, RunStatus.SUCCESS)
    with pytest.raises(InvalidTransitionError, match="from success to running"):
        durable.run_store.set_status(run.id, RunStatus.RUNNING)
    assert durable.run_store.get(run.id).status is RunStatus.SUCCESS
    with pytest.raises(InvalidTransitionError):
        _create(durable, status=RunStatus.RUNNING)


def test_unknown_runs(durable: Instance) -> None:
    with pytest.raises(NotFoundError):
        durable.run_store.get("0" * 32)
    with pytest.raises(NotFoundError):
        durable.run_store.set_status("0" * 32, RunStatus.RUNNING)


def test_list_filters_orders_and_pages(durable: Instance) -> None:
    ids = []
    for i in range(6):
        run = _create(durable, job="a" if i % 2 == 0 else "b")
        ids.append(run.id)
        time.sleep(0.002)
    durable.run_store.set_status(ids[0], RunStatus.RUNNING)
    newest_first = [r.id for r in durable.run_store.list(limit=10)]
    assert newest_first == list(reversed(ids))
    assert [r.id for r in durable.runs("a")] == [ids[4], ids[2], ids[0]]
    assert [r.id for r in durable.runs(status="running")] == [ids[0]]
    page1 = durable.run_store.list(limit=4)
    last = page1[-1]
    page2 = durable.run_store.list(limit=4, before=last.cursor)
    assert [r.id for r in page1 + page2] == newest_first
    assert durable.run_store.count() == 6
    assert durable.run_store.count(job_name="b") == 3


def test_bad_list_arguments(durable: Instance) -> None:
    with pytest.raises(ConfigError, match="must be one of"):
        durable.run_store.list(status="done")
    with pytest.raises(ConfigError, match="at least 1"):
        durable.run_store.list(limit=0)


def test_resolve_id_by_prefix(durable: Instance) -> None:
    run = _create(durable)
    assert durable.run_store.resolve_id(run.id[:8]) == run.id
    assert durable.run_store.resolve_id(run.id.upper()) == run.id
    with pytest.raises(ConfigError, match="at least its first 4"):
        durable.run_store.resolve_id("ab")
    with pytest.raises(ConfigError):
        durable.run_store.resolve_id("xyz!")
    missing = "f" * 8 if not run.id.startswith("ffff") else "0" * 8
    with pytest.raises(NotFoundError):
        durable.run_store.resolve_id(missing)


def test_create_and_start_in_one_step(durable: Instance) -> None:
    run = _create(durable, then=RunStatus.RUNNING)
    assert run.status is RunStatus.RUNNING
    assert run.started_at is not None
    stored = durable.run_store.get(run.id)
    assert stored.status is RunStatus.RUNNING
    assert stored.started_at == run.started_at
    with pytest.raises(InvalidTransitionError):
        _create(durable, then=RunStatus.SUCCESS)
