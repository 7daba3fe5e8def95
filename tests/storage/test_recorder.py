"""The batched write path of a run, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from conveyor.errors import InvalidTransitionError, StorageError
from conveyor.storage.instance import Instance
from conveyor.storage.schema import task_runs
from conveyor.storage.states import RunStatus, TaskStatus
from tests.waiting import wait_until


def _run(inst: Instance) -> str:
    run = inst.run_store.create(job_name="j", job_version="v")
    inst.run_store.set_status(run.id, RunStatus.RUNNING)
    return run.id


def test_states_events_logs_and_results_land_together(durable: Instance) -> None:
    rid = _run(durable)
    rec = durable.recorder(rid)
    rec.task("a", 1, TaskStatus.PENDING, task_name="a_task", depends_on=[])
    rec.task("b", 1, TaskStatus.PENDING, task_name="b_task", depends_on=["a"])
    rec.task("a", 1, TaskStatus.RUNNING, started_at=time.time())
    rec.log("a", 1, "stdout", b"hello\n")
    rec.result("a", {"rows": 3})
    rec.task("a", 1, TaskStatus.SUCCESS, ended_at=time.time())
    rec.flush()
    rec.task("b", 1, TaskStatus.RUNNING, started_at=time.time())
    rec.task(
        "b",
        1,
        TaskStatus.UP_FOR_RETRY,
        ended_at=time.time(),
        retry_wait=1.5,
        error_type="builtins.ValueError",
        error_message="x",
    )
    rec.event("retry", "b will retry", task_key="b", attempt=1, data={"wait": 1.5})
    rec.task(
        "b", 2, TaskStatus.RUNNING, task_name="b_task", depends_on=["a"], started_at=time.time()
    )
    rec.task("b", 2, TaskStatus.SUCCESS, ended_at=time.time())
    rec.close(run_status=RunStatus.SUCCESS)

    details = durable.run_details(rid)
    assert details.status is RunStatus.SUCCESS
    by_key = {t.key: t for t in details.tasks}
    assert by_key["a"].status is TaskStatus.SUCCESS
    assert by_key["a"].task_name == "a_task"
    assert [a.status for a in by_key["b"].attempts] == [TaskStatus.UP_FOR_RETRY, TaskStatus.SUCCESS]
    assert by_key["b"].attempts[0].retry_wait == 1.5
    assert by_key["b"].depends_on == ["a"]
    assert [e.kind for e in details.events] == ["retry"]
    assert details.events[0].data == {"wait": 1.5}
    assert durable.logs(rid, "a") == "hello\n"
    assert durable.result(rid, "a") == {"rows": 3}


def test_a_forbidden_task_transition_raises_at_once(durable: Instance) -> None:
    rec = durable.recorder(_run(durable))
    rec.task("a", 1, TaskStatus.PENDING)
    with pytest.raises(InvalidTransitionError, match="from pending to success"):
        rec.task("a", 1, TaskStatus.SUCCESS)
    rec.close(run_status=RunStatus.FAILURE)


def test_a_row_changed_by_someone_else_is_a_lost_write_error(durable: Instance) -> None:
    rid = _run(durable)
    rec = durable.recorder(rid)
    rec.task("a", 1, TaskStatus.PENDING)
    rec.flush()
    with durable.db.write() as conn:
        conn.execute(
            sa.update(task_runs).where(task_runs.c.run_id == rid).values(status="canceled")
        )
    rec.task("a", 1, TaskStatus.RUNNING)
    with pytest.raises(StorageError, match="another process changed"):
        rec.flush()


def test_background_flushes_make_progress_visible_during_a_run(durable: Instance) -> None:
    rid = _run(durable)
    rec = durable.recorder(rid)
    rec.task("slow", 1, TaskStatus.RUNNING, started_at=time.time())

    def running() -> bool:
        tasks = durable.run_details(rid).tasks
        return bool(tasks) and tasks[0].status is TaskStatus.RUNNING

    wait_until(running, 5, "the running task to become visible")
    rec.task("slow", 1, TaskStatus.SUCCESS, ended_at=time.time())
    rec.close(run_status=RunStatus.SUCCESS)


def test_many_rows_in_one_flush(durable: Instance) -> None:
    rid = _run(durable)
    rec = durable.recorder(rid)
    for i in range(2000):
        rec.task(f"t{i}", 1, TaskStatus.PENDING)
    rec.flush()
    for i in range(2000):
        rec.task(f"t{i}", 1, TaskStatus.RUNNING)
        rec.task(f"t{i}", 1, TaskStatus.SUCCESS)
    rec.close(run_status=RunStatus.SUCCESS)
    tasks = durable.run_details(rid).tasks
    assert len(tasks) == 2000
    assert all(t.status is TaskStatus.SUCCESS for t in tasks)
