"""The task-run store's contract: one row per attempt, updates guarded by the status they
were checked against, dead runs' tasks closed, listed in execution order; on SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.errors import StorageError
from conveyor.storage.instance import Instance
from conveyor.storage.states import RunStatus, TaskStatus
from conveyor.storage.task_runs import MUTABLE, TaskRunStore


def _run(inst: Instance) -> str:
    return inst.run_store.create(job_name="j", job_version="v", then=RunStatus.RUNNING).id


def row(run_id: str, key: str, attempt: int = 1, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "run_id": run_id,
        "task_key": key,
        "attempt": attempt,
        "task_name": key.split("[")[0],
        "status": str(TaskStatus.PENDING),
        "started_at": None,
        "ended_at": None,
        "depends_on": [],
        "error_type": None,
        "error_message": None,
        "error_traceback": None,
        "retry_wait": None,
        "cpu": None,
        "memory": None,
    }
    return {**base, **fields}


def update(before: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The update of ``before``'s row, checked against its status."""
    after = {**before, **changes}
    return {
        "b_run_id": before["run_id"],
        "b_task_key": before["task_key"],
        "b_attempt": before["attempt"],
        "b_prev_status": before["status"],
        **{c: after[c] for c in MUTABLE},
    }


def test_inserts_and_updates_land_as_written(durable: Instance) -> None:
    rid = _run(durable)
    a, b = row(rid, "a", depends_on=[]), row(rid, "b", depends_on=["a"])
    with durable.db.write() as conn:
        TaskRunStore.write(conn, [a, b], [])
        TaskRunStore.write(conn, [], [])  # nothing to write is no error
    with durable.db.write() as conn:
        TaskRunStore.write(conn, [], [update(a, status=str(TaskStatus.RUNNING), started_at=10.0)])
    got = {t.task_key: t for t in durable.task_run_store.for_run(rid)}
    assert got["a"].status is TaskStatus.RUNNING
    assert got["a"].started_at is not None
    assert got["a"].started_at.timestamp() == 10.0
    assert got["b"].status is TaskStatus.PENDING
    assert got["b"].depends_on == ["a"]
    assert got["b"].task_name == "b"
    assert durable.task_run_store.for_run("0" * 32) == []


def test_an_update_of_a_row_changed_meanwhile_is_a_lost_write(durable: Instance) -> None:
    rid = _run(durable)
    a = row(rid, "a")
    with durable.db.write() as conn:
        TaskRunStore.write(conn, [a], [])
    stale = update({**a, "status": str(TaskStatus.RUNNING)}, status=str(TaskStatus.SUCCESS))
    with (
        pytest.raises(StorageError, match="another process changed these task runs"),
        durable.db.write() as conn,
    ):
        TaskRunStore.write(conn, [], [stale])
    [only] = durable.task_run_store.for_run(rid)
    assert only.status is TaskStatus.PENDING  # the failed write left nothing behind


def test_end_unfinished_fails_running_and_cancels_pending_tasks(durable: Instance) -> None:
    rid, other = _run(durable), _run(durable)
    rows = [
        row(rid, "running", status=str(TaskStatus.RUNNING), started_at=1.0),
        row(rid, "pending"),
        row(rid, "done", status=str(TaskStatus.SUCCESS), started_at=1.0, ended_at=2.0),
        row(other, "running", status=str(TaskStatus.RUNNING), started_at=1.0),
    ]
    with durable.db.write() as conn:
        TaskRunStore.write(conn, rows, [])
    durable.task_run_store.end_unfinished(rid, "its worker died")
    got = {t.task_key: t for t in durable.task_run_store.for_run(rid)}
    assert got["running"].status is TaskStatus.FAILURE
    assert got["running"].error_type == "conveyor.errors.WorkerLostError"
    assert got["running"].error_message == "its worker died"
    assert got["running"].ended_at is not None
    assert got["pending"].status is TaskStatus.CANCELED
    assert got["pending"].error_type is None
    assert got["done"].status is TaskStatus.SUCCESS
    assert got["done"].error_message is None
    [untouched] = durable.task_run_store.for_run(other)
    assert untouched.status is TaskStatus.RUNNING


def test_for_run_lists_in_execution_order_attempts_ascending(durable: Instance) -> None:
    rid = _run(durable)
    retry = str(TaskStatus.UP_FOR_RETRY)
    rows = [
        row(rid, "z_first", status=retry, started_at=1.0, ended_at=2.0),
        row(rid, "z_first", 2, status=str(TaskStatus.RUNNING), started_at=5.0),
        row(rid, "a_second", status=str(TaskStatus.RUNNING), started_at=3.0),
        row(rid, "b_waiting"),
        row(rid, "a_waiting"),
    ]
    with durable.db.write() as conn:
        TaskRunStore.write(conn, rows[::-1], [])
    listed = [(t.task_key, t.attempt) for t in durable.task_run_store.for_run(rid)]
    assert listed == [
        ("z_first", 1),
        ("z_first", 2),
        ("a_second", 1),
        ("a_waiting", 1),
        ("b_waiting", 1),
    ]
    details = durable.run_details(rid)
    assert [t.key for t in details.tasks] == ["z_first", "a_second", "a_waiting", "b_waiting"]
    assert details.task("z_first").status is TaskStatus.RUNNING
