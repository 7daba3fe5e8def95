"""The result store's contract: each succeeded task's output, pickled, read back by run and
task key, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from conveyor.errors import NotFoundError, StorageError
from conveyor.storage.blobs import INLINE_LIMIT
from conveyor.storage.instance import Instance
from conveyor.storage.states import RunStatus, TaskStatus
from tests.storage.test_logs import run_with_logs


def test_results_and_missing_things(durable: Instance) -> None:
    rid = run_with_logs(durable)
    assert durable.result(rid, "t[0]") == [1, 2, 3]
    assert durable.result_store.get(rid, "t[0]") == [1, 2, 3]
    with pytest.raises(NotFoundError, match="only tasks that succeeded"):
        durable.result(rid, "quiet")
    with pytest.raises(NotFoundError, match=f"run {rid} has no stored result for task 'x'"):
        durable.result_store.get(rid, "x")
    with pytest.raises(NotFoundError, match="is a run of job 'j', not 'k'"):
        durable.run_details(rid, job_name="k")


def test_pointers_of_a_run_by_task_key(durable: Instance) -> None:
    rid = run_with_logs(durable)
    pointers = durable.result_store.pointers(rid)
    assert list(pointers) == ["t[0]"]
    pointer = pointers["t[0]"]
    assert pointer["type_name"] == "builtins.list"
    assert durable.result_store.load(pointer) == [1, 2, 3]
    assert durable.result_store.pointers("0" * 32) == {}


def test_unpicklable_results_are_a_storage_error(instance: Instance) -> None:
    run = instance.run_store.create(job_name="j", job_version="v")
    rec = instance.recorder(run.id)
    with pytest.raises(StorageError, match="'t' \\(lock\\) cannot be pickled") as caught:
        rec.result("t", threading.Lock())
    assert caught.value.__cause__ is not None


def test_large_blobs_go_to_the_blob_store_small_ones_stay_inline(durable: Instance) -> None:
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
