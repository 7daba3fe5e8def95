"""Log and result stores, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from conveyor.errors import NotFoundError
from conveyor.storage.instance import Instance
from conveyor.storage.states import RunStatus, TaskStatus


def _run_with_logs(inst: Instance) -> str:
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
    rid = _run_with_logs(durable)
    full = durable.logs(rid, "t[0]")
    assert full.startswith("--- attempt 1 ---\nline 0\n")
    assert full.endswith("--- attempt 2 ---\nhéllo\n")
    assert durable.logs(rid, "t[0]", lines=2) == "--- attempt 2 ---\nhéllo\n"
    assert durable.logs(rid, "t[0]", stderr=True) == "--- attempt 1 ---\noops\n"
    assert durable.logs(rid, "quiet") == ""


def test_results_and_missing_things(durable: Instance) -> None:
    rid = _run_with_logs(durable)
    assert durable.result(rid, "t[0]") == [1, 2, 3]
    with pytest.raises(NotFoundError, match="only tasks that succeeded"):
        durable.result(rid, "quiet")
    with pytest.raises(NotFoundError, match="has no task 'nope'"):
        durable.logs(rid, "nope")
    with pytest.raises(NotFoundError, match="is a run of job 'j', not 'k'"):
        durable.run_details(rid, job_name="k")


def test_unpicklable_results_are_a_storage_error(instance: Instance) -> None:
    from conveyor.errors import StorageError

    run = instance.run_store.create(job_name="j", job_version="v")
    rec = instance.recorder(run.id)
    with pytest.raises(StorageError, match="cannot be pickled"):
        rec.result("t", threading.Lock())


def test_large_blobs_go_to_the_blob_store_small_ones_stay_inline(durable: Instance) -> None:
    from conveyor.storage.blobs import INLINE_LIMIT

    run = durable.run_store.create(job_name="j", job_version="v")
    durable.run_store.set_status(run.id, RunStatus.RUNNING)
    rec = durable.recorder(run.id)
    big = b"x" * (INLINE_LIMIT + 1)
    rec.task("big", 1, TaskStatus.RUNNING)
    rec.result("big", big)
    rec.log("big", 1, "stdout", big)
    rec.task("big", 1, TaskStatus.SUCCESS)
    rec.task("small", 1, TaskStatus.RUNNING)
    rec.result("small", b"tiny")
    rec.task("small", 1, TaskStatus.SUCCESS)
    rec.close(run_status=RunStatus.SUCCESS)

    pointers = durable.result_store.pointers(run.id)
    assert pointers["small"]["uri"] is None
    assert pointers["big"]["data"] is None
    assert durable.home is not None
    assert (durable.home / pointers["big"]["uri"]).stat().st_size > INLINE_LIMIT
    assert durable.result(run.id, "big") == big
    assert durable.result(run.id, "small") == b"tiny"
    assert durable.logs(run.id, "big") == big.decode() + "\n"
