"""The run store's contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

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


def test_list_by_several_statuses(durable: Instance) -> None:
    queued = _create(durable, status=RunStatus.QUEUED)
    running = _create(durable, then=RunStatus.RUNNING)
    _create(durable)  # starting
    listed = durable.run_store.list(status=[RunStatus.QUEUED, "running"], limit=10)
    assert {r.id for r in listed} == {queued.id, running.id}


def test_add_tags_merges_and_an_unknown_run_is_not_found(durable: Instance) -> None:
    run = _create(durable, tags={"team": "a", "env": "dev"})
    durable.run_store.add_tags(run.id, {"env": "prod", "owner": "b"})
    assert durable.run_store.get(run.id).tags == {"team": "a", "env": "prod", "owner": "b"}
    with pytest.raises(NotFoundError, match=r"no run '0{32}'"):
        durable.run_store.add_tags("0" * 32, {"x": "y"})


def test_request_cancel_ends_a_waiting_run_and_asks_a_running_one(durable: Instance) -> None:
    store = durable.run_store
    queued = _create(durable, status=RunStatus.QUEUED)
    assert store.request_cancel(queued.id) is RunStatus.CANCELED
    assert store.get(queued.id).error == "canceled on request"
    running = _create(durable, then=RunStatus.RUNNING)
    assert store.request_cancel(running.id) is RunStatus.CANCELING
    assert store.request_cancel(running.id) is RunStatus.CANCELING  # asking twice is once
    done = _create(durable, then=RunStatus.RUNNING)
    store.set_status(done.id, RunStatus.SUCCESS)
    assert store.request_cancel(done.id) is RunStatus.SUCCESS  # an ended run stays ended
    with pytest.raises(NotFoundError):
        store.request_cancel("0" * 32)


def test_heartbeat_stamps_the_database_time_and_returns_the_status(durable: Instance) -> None:
    run = _create(durable, then=RunStatus.RUNNING)
    before = time.time()
    assert durable.run_store.heartbeat(run.id) is RunStatus.RUNNING
    beat = durable.run_store.get(run.id).heartbeat_at
    assert beat is not None
    assert abs(beat.timestamp() - before) < 60  # the database's clock, near this one
    with pytest.raises(NotFoundError):
        durable.run_store.heartbeat("0" * 32)


def _succeeded(inst: Instance, job: str, **kw: object) -> str:
    rid: str = _create(inst, job, then=RunStatus.RUNNING, **kw).id
    inst.run_store.set_status(rid, RunStatus.SUCCESS)
    return rid


def test_interval_and_partition_queries_see_successful_runs_only(durable: Instance) -> None:
    store = durable.run_store
    _succeeded(durable, "daily", interval=(0.0, 10.0))
    _succeeded(durable, "daily", interval=(10.0, 20.0), partition="eu")
    failed = _create(durable, "daily", then=RunStatus.RUNNING, interval=(20.0, 30.0)).id
    store.set_status(failed, RunStatus.FAILURE)
    _succeeded(durable, "other", interval=(50.0, 60.0))

    assert store.last_interval_end("daily") == 20.0
    assert store.last_interval_end("nobody") is None
    assert sorted(store.success_intervals("daily", 5.0, 25.0)) == [(0.0, 10.0), (10.0, 20.0)]
    assert store.success_intervals("daily", 20.0, 30.0) == []
    assert store.completed_interval_starts("daily", [0.0, 10.0, 20.0]) == {0.0, 10.0}
    assert store.completed_interval_starts("daily", [0.0, 10.0], partition="eu") == {10.0}
    assert store.completed_interval_starts("daily", []) == set()
    assert [r.id for r in store.interval_runs("daily", 20.0)] == [failed]
    assert store.interval_runs("daily", 20.0, [RunStatus.SUCCESS]) == []
    assert store.completed_partitions("daily", ["eu", "us"]) == {"eu"}
    assert store.completed_partitions("daily", []) == set()
    ends = store.success_interval_ends_since(0.0)
    assert sorted(ends) == [("daily", 10.0), ("daily", 20.0), ("other", 60.0)]
    assert store.success_interval_ends_since(time.time() + 3600) == []


def test_last_success_end_is_the_newest_success(durable: Instance) -> None:
    store = durable.run_store
    assert store.last_success_end("j") is None
    _succeeded(durable, "j")
    newest = _succeeded(durable, "j")
    failed = _create(durable, "j", then=RunStatus.RUNNING).id
    store.set_status(failed, RunStatus.FAILURE)
    ended = store.get(newest).ended_at
    assert ended is not None
    # (a datetime keeps microseconds; the stored float has more)
    assert store.last_success_end("j") == pytest.approx(ended.timestamp(), abs=1e-5)


def test_every_terminal_change_adds_a_run_end_in_its_transaction(durable: Instance) -> None:
    store = durable.run_store
    start = store.last_end_id()
    done = _create(durable, then=RunStatus.RUNNING)
    store.set_status(done.id, RunStatus.SUCCESS, at=1000.0)
    canceled = _create(durable, status=RunStatus.QUEUED)
    store.request_cancel(canceled.id)
    lost = _create(durable, job="other", then=RunStatus.RUNNING)
    durable.end_lost_run(lost.id, "its process is gone")
    with pytest.raises(InvalidTransitionError):  # refused: no end
        store.set_status(done.id, RunStatus.FAILURE)
    ends = store.ends_after(start, 10)
    assert [(e.run_id, e.job_name, e.status) for e in ends] == [
        (done.id, "etl", RunStatus.SUCCESS),
        (canceled.id, "etl", RunStatus.CANCELED),
        (lost.id, "other", RunStatus.FAILURE),
    ]
    assert ends[0].at == 1000.0
    assert [e.id for e in ends] == sorted(e.id for e in ends)
    assert store.ends_after(start, 2) == ends[:2]
    assert store.ends_among([ends[2].id, ends[0].id, ends[2].id + 1000]) == [ends[0], ends[2]]
    assert store.last_end_id() == ends[2].id
    assert store.last_end_id(before=1001.0) == ends[0].id
    assert store.last_end_id(before=0.0) == 0


def test_the_queue_is_read_per_job_oldest_first(durable: Instance) -> None:
    store = durable.run_store
    a = [_create(durable, status=RunStatus.QUEUED) for _ in range(3)]
    b = _create(durable, job="other", status=RunStatus.QUEUED)
    _create(durable, job="started")  # starting: not queued
    per_job = store.oldest_queued_per_job(["etl", "other", "started", "none"], 2)
    assert {k: [r.id for r in v] for k, v in per_job.items()} == {
        "etl": [a[0].id, a[1].id],
        "other": [b.id],
    }
    assert [r.id for r in store.oldest_queued("etl", 2)] == [a[0].id, a[1].id]
    assert store.count_queued_before("etl", a[2].cursor) == 2
    assert store.count_queued_before("other", b.cursor) == 0
    store.set_status(a[0].id, RunStatus.STARTING)
    assert [r.id for r in store.oldest_queued("etl", 5)] == [a[1].id, a[2].id]


def test_running_and_active_runs_are_all_found(durable: Instance) -> None:
    store = durable.run_store
    running = [_create(durable, then=RunStatus.RUNNING) for _ in range(3)]
    starting = _create(durable)
    _create(durable, job="other", then=RunStatus.RUNNING)
    store.set_status(running[0].id, RunStatus.SUCCESS)
    assert {r.id for r in store.running(["etl"])} == {running[1].id, running[2].id}
    now, rows = store.active()
    assert now > 0
    assert {r.id for r in rows if r.job_name == "etl"} == {
        running[1].id,
        running[2].id,
        starting.id,
    }
    assert [r.id for r in store.ended_among([running[0].id, running[1].id])] == [running[0].id]
    assert set(store.get_many([running[1].id, "nothing"])) == {running[1].id}


def test_runs_that_ended_before_the_upgrade_are_run_ends_oldest_first(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from conveyor.storage.db import Database
    from conveyor.storage.migrate import upgrade
    from conveyor.storage.runs import RunStore

    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    with db.write() as conn:
        upgrade(conn, "0005")
        for rid, status, ended in (
            ("b", "failure", 20.0),
            ("a", "success", 10.0),
            ("q", "queued", None),
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO runs (id, job_name, job_version, status, created_at, updated_at, "
                    "ended_at, tags, run_config, trigger) VALUES (:id, 'etl', 'v', :status, 1, 2, "
                    ":ended, '{}', '{}', 'manual')"
                ),
                {"id": rid, "status": status, "ended": ended},
            )
    db.migrate()
    store = RunStore(db)
    ends = store.ends_after(0, 10)
    assert [(e.run_id, e.status, e.at) for e in ends] == [
        ("a", RunStatus.SUCCESS, 10.0),
        ("b", RunStatus.FAILURE, 20.0),
    ]
    assert store.last_end_id(before=15.0) == ends[0].id
    db.dispose()


def test_children_are_the_runs_whose_parent_it_is_oldest_first(durable: Instance) -> None:
    store = durable.run_store
    parent = store.create(job_name="j", job_version="v", status=RunStatus.QUEUED)
    first = store.create(
        job_name="j",
        job_version="v",
        status=RunStatus.QUEUED,
        parent_run_id=parent.id,
        root_run_id=parent.id,
    )
    second = store.create(
        job_name="j",
        job_version="v",
        status=RunStatus.QUEUED,
        parent_run_id=parent.id,
        root_run_id=parent.id,
    )
    grandchild = store.create(
        job_name="j",
        job_version="v",
        status=RunStatus.QUEUED,
        parent_run_id=first.id,
        root_run_id=parent.id,
    )
    store.create(job_name="j", job_version="v", status=RunStatus.QUEUED)
    assert [r.id for r in store.children(parent)] == [first.id, second.id]
    assert [r.id for r in store.children(store.get(first.id))] == [grandchild.id]
    assert store.children(store.get(second.id)) == []
