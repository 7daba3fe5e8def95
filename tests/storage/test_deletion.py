"""Deleting runs: every record and file of a run goes; runs that have not ended stay.

Runs on SQLite and PostgreSQL (``durable``), with the instance's files on disk.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from conveyor import Instance, NotFoundError, RunStatus, TaskStatus, task, workflow
from conveyor.errors import StorageError
from conveyor.storage import journal
from conveyor.storage.blobs import INLINE_LIMIT
from conveyor.storage.schema import events, logs, results, run_ends, runs, task_runs

BIG = INLINE_LIMIT + 1000
state = {"broken": True}


@task
def big() -> bytes:
    print("x" * BIG)  # a log large enough for a file of its own
    return b"r" * BIG  # and a result too


@task
def fragile(data: bytes) -> int:
    if state["broken"]:
        raise RuntimeError("not yet")
    return len(data)


@workflow
def heavy() -> None:
    fragile(big())


def _rows(instance: Instance, run_id: str) -> dict[str, int]:
    counts = {}
    with instance.db.read() as conn:
        for table in (runs, task_runs, events, logs, results, run_ends):
            column = table.c.id if table is runs else table.c.run_id
            q = sa.select(sa.func.count()).select_from(table).where(column == run_id)
            counts[table.name] = int(conn.execute(q).scalar() or 0)
    return counts


def _files(home: Path, run_id: str) -> list[str]:
    return sorted(
        p.relative_to(home).as_posix()
        for folder in ("results", "logs")
        for p in (home / folder / run_id).rglob("*")
        if p.is_file()
    )


def test_deleting_a_run_removes_its_rows_and_files(durable: Instance) -> None:
    home = durable.home
    assert home is not None
    state["broken"] = False
    run = heavy.run(instance=durable)
    assert _files(home, run.run_id)  # its big log and result have files
    worker_log = home / "workers" / f"{run.run_id}.log"
    worker_log.parent.mkdir(parents=True, exist_ok=True)
    worker_log.write_text("worker output\n")
    kept = journal.journal_path(home, run.run_id)
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_bytes(b"left over")
    # What a task wrote before its process was killed stays in its live file.
    live = home / "logs" / "live" / run.run_id / "big.1.out"
    live.parent.mkdir(parents=True, exist_ok=True)
    live.write_text("a line before a SIGKILL\n")
    other = heavy.run(instance=durable)

    done = durable.delete_runs([run.run_id])
    assert done.run_ids == [run.run_id]
    assert not live.exists()
    # the result and the stdout of big (fragile's are small), and the live file
    assert done.files == 3
    assert done.bytes >= 2 * BIG
    assert set(_rows(durable, run.run_id).values()) == {0}
    assert not (home / "results" / run.run_id).exists()
    assert not (home / "logs" / run.run_id).exists()
    assert not worker_log.exists()
    assert not kept.exists()
    with pytest.raises(NotFoundError):
        durable.run(run.run_id)
    # the other run is whole
    assert durable.result(other.run_id, "big") == b"r" * BIG
    assert durable.logs(other.run_id, "big").startswith("xxx")


def test_a_rerun_keeps_the_results_it_reuses_from_a_deleted_parent(durable: Instance) -> None:
    home = durable.home
    assert home is not None
    state["broken"] = True
    parent = heavy.run(instance=durable, raise_on_error=False)
    state["broken"] = False
    child = heavy.rerun(parent.run_id, instance=durable)
    assert child.task_status("big") is TaskStatus.REUSED

    durable.delete_runs([parent.run_id])
    # the child's reused result points at the parent's file, which stays
    assert durable.result(child.run_id, "big") == b"r" * BIG
    assert _files(home, parent.run_id) == [f"results/{parent.run_id}/big.pkl"]

    durable.delete_runs([child.run_id])
    assert not (home / "results" / parent.run_id).exists()


def test_runs_that_have_not_ended_are_never_deleted(durable: Instance) -> None:
    state["broken"] = False
    ended = heavy.run(instance=durable)
    queued = durable.run_store.create(job_name="heavy", job_version="x", status=RunStatus.QUEUED)
    with pytest.raises(StorageError, match=rf"have not ended: {queued.id[:8]} \(queued\); cancel"):
        durable.delete_runs([ended.run_id, queued.id])
    assert durable.run(ended.run_id).status is RunStatus.SUCCESS  # nothing was deleted
    with pytest.raises(NotFoundError, match="no run 'nope'"):
        durable.delete_runs(["nope"])

    done = durable.delete_runs(job_name="heavy")
    assert done.run_ids == [ended.run_id]
    assert [r.id for r in durable.runs("heavy")] == [queued.id]
    # even when asked for by id, the storage statement leaves it
    assert durable.run_deletion.delete([queued.id]).run_ids == []


def test_delete_by_job_and_by_date(durable: Instance) -> None:
    state["broken"] = False

    @task
    def small() -> int:
        return 1

    @workflow
    def light() -> None:
        small()

    old = light.run(instance=durable)
    time.sleep(0.05)
    cutoff = time.time()
    time.sleep(0.05)
    new = light.run(instance=durable)
    other_job = heavy.run(instance=durable)

    assert durable.delete_runs(job_name="light", before=cutoff).run_ids == [old.run_id]
    assert {r.id for r in durable.runs(limit=10)} == {new.run_id, other_job.run_id}
    assert durable.delete_runs(before="2000-01-01").run_ids == []
    assert set(durable.delete_runs(before="2999-01-01").run_ids) == {new.run_id, other_job.run_id}
    assert durable.runs(limit=10) == []


def test_delete_runs_needs_to_be_told_which(instance: Instance) -> None:
    with pytest.raises(StorageError, match="name the runs to delete"):
        instance.delete_runs()
    with pytest.raises(StorageError, match="not both"):
        instance.delete_runs(["a"], job_name="heavy")
    from conveyor import ConfigError

    with pytest.raises(ConfigError, match="before 'last week' is not an ISO date"):
        instance.delete_runs(before="last week")


def test_an_ephemeral_instance_deletes_its_blobs_too(instance: Instance) -> None:
    state["broken"] = False
    run = heavy.run(instance=instance)
    assert instance.blobs.under(f"results/{run.run_id}")
    assert instance.delete_runs([run.run_id]).run_ids == [run.run_id]
    assert instance.blobs.under(f"results/{run.run_id}") == []
    assert instance.blobs.under(f"logs/{run.run_id}") == []
