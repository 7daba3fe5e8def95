"""The log store's contract: each attempt's stdout and stderr, read back joined with the
last lines kept, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from conveyor.errors import NotFoundError
from conveyor.storage.blobs import INLINE_LIMIT
from conveyor.storage.instance import Instance
from conveyor.storage.logs import LogStore
from conveyor.storage.states import RunStatus, TaskStatus


def run_with_logs(inst: Instance) -> str:
    """A run whose task ``t[0]`` wrote output in two attempts, and ``quiet`` wrote none."""
    run = inst.run_store.create(job_name="j", job_version="v")
    inst.run_store.set_status(run.id, RunStatus.RUNNING)
    rec = inst.recorder(run.id)
    rec.task("t[0]", 1, TaskStatus.RUNNING)
    rec.log("t[0]", 1, "stdout", "".join(f"line {i}\n" for i in range(10)).encode())
    rec.log("t[0]", 1, "stderr", b"oops")
    rec.task("t[0]", 1, TaskStatus.UP_FOR_RETRY)
    rec.task("t[0]", 2, TaskStatus.RUNNING)
    rec.log("t[0]", 2, "stdout", "héllo\n".encode())
    rec.result("t[0]", [1, 2, 3])
    rec.task("t[0]", 2, TaskStatus.SUCCESS)
    rec.task("quiet", 1, TaskStatus.RUNNING)
    rec.task("quiet", 1, TaskStatus.FAILURE)
    rec.close(run_status=RunStatus.SUCCESS)
    return run.id


def test_logs_join_attempts_and_keep_the_last_lines(durable: Instance) -> None:
    rid = run_with_logs(durable)
    full = durable.logs(rid, "t[0]")
    assert full.startswith("--- attempt 1 ---\nline 0\n")
    assert full.endswith("--- attempt 2 ---\nhéllo\n")
    assert durable.logs(rid, "t[0]", lines=2) == "--- attempt 2 ---\nhéllo\n"
    assert durable.logs(rid, "t[0]", stderr=True) == "--- attempt 1 ---\noops\n"
    assert durable.logs(rid, "quiet") == ""


def test_read_keeps_all_none_or_the_last_lines(durable: Instance) -> None:
    rid = run_with_logs(durable)
    store = durable.log_store
    assert store.read(rid, "t[0]", lines=None).count("\n") == 13
    assert store.read(rid, "t[0]", lines=0) == ""
    assert store.read(rid, "t[0]", lines=1) == "héllo\n"
    assert store.read(rid, "nope") == ""  # the store itself does not check the task
    assert store.read("0" * 32, "t[0]") == ""


def test_one_attempt_is_not_introduced_and_bad_bytes_are_replaced(durable: Instance) -> None:
    run = durable.run_store.create(job_name="j", job_version="v", then=RunStatus.RUNNING)
    rec = durable.recorder(run.id)
    rec.task("t", 1, TaskStatus.RUNNING)
    rec.log("t", 1, "stdout", b"ok \xff\n")
    rec.task("t", 1, TaskStatus.SUCCESS)
    rec.close(run_status=RunStatus.SUCCESS)
    assert durable.log_store.read(run.id, "t") == "ok \ufffd\n"
    assert durable.log_store.read(run.id, "t", stream="stderr") == ""


def test_put_returns_the_pointer_row_inline_or_in_a_blob(durable: Instance) -> None:
    store: LogStore = durable.log_store
    small = store.put("r1", "t[0]", 2, "stderr", b"small")
    assert small == {
        "run_id": "r1",
        "task_key": "t[0]",
        "attempt": 2,
        "stream": "stderr",
        "uri": None,
        "data": b"small",
        "size": 5,
    }
    big = store.put("r1", "t[0]", 2, "stdout", b"x" * (INLINE_LIMIT + 1))
    assert big["uri"] == "logs/r1/t%5B0%5D.2.out"
    assert big["data"] is None
    assert big["size"] == INLINE_LIMIT + 1


def test_logs_of_a_missing_task_or_run_are_not_found(durable: Instance) -> None:
    rid = run_with_logs(durable)
    with pytest.raises(NotFoundError, match="has no task 'nope'"):
        durable.logs(rid, "nope")
    with pytest.raises(NotFoundError, match="no run"):
        durable.logs("0" * 32, "t[0]")
