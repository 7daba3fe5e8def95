"""Fencing tokens: a process that lost its run cannot write to it, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.errors import JournalKeptError, LeaseLostError
from conveyor.storage.hosts import this_process
from conveyor.storage.instance import Instance
from conveyor.storage.states import RunStatus, TaskStatus
from tests.tcpproxy import TcpProxy


def _starting(instance: Instance) -> str:
    rid = instance.run_store.create(job_name="j", job_version="v", status=RunStatus.QUEUED).id
    instance.run_store.set_status(rid, RunStatus.STARTING)
    return rid


def test_each_start_has_a_greater_token_and_records_its_starter(durable: Instance) -> None:
    store = durable.run_store
    rid = _starting(durable)
    first = store.get(rid)
    assert first.token == 1
    assert (first.host, first.pid) == (this_process().host, this_process().pid)
    assert store.requeue(rid, first.token)
    queued = store.get(rid)
    assert queued.status is RunStatus.QUEUED
    assert queued.pid is None
    store.set_status(rid, RunStatus.STARTING)
    assert store.get(rid).token == 2
    # The first start's worker comes late: it is refused, and the second's begins.
    with pytest.raises(LeaseLostError, match="not the run's to begin"):
        store.claim(rid, 1)
    assert store.claim(rid, 2).status is RunStatus.RUNNING
    assert not store.requeue(rid, 2)  # a begun run is not put back


def test_an_old_token_cannot_heartbeat_end_or_record(durable: Instance) -> None:
    store = durable.run_store
    rid = _starting(durable)
    store.claim(rid, 1)
    rec = durable.recorder(rid, token=1)
    rec.task("a", 1, TaskStatus.RUNNING, started_at=1.0)
    rec.flush()
    assert store.heartbeat(rid, 1) is RunStatus.RUNNING
    assert store.get(rid).heartbeat_at is not None
    # The judge ends the run while its process was paused.
    assert durable.end_lost_run(rid, "judged dead", token=1) is RunStatus.FAILURE
    with pytest.raises(LeaseLostError, match="failure now"):
        store.heartbeat(rid, 1)
    rec.task("a", 1, TaskStatus.SUCCESS, ended_at=2.0)
    rec.event("late", "written after the run was lost")
    with pytest.raises(LeaseLostError):
        rec.flush(run_status=RunStatus.SUCCESS)
    assert rec.lost is not None
    with pytest.raises(LeaseLostError):
        store.set_status(rid, RunStatus.SUCCESS, token=1)
    # Nothing of the lost process landed: the judge's record stands.
    details = durable.run_details(rid)
    assert details.run.status is RunStatus.FAILURE
    assert details.run.error == "judged dead"
    assert [t.status for t in details.tasks] == [TaskStatus.FAILURE]
    assert all(e.kind != "late" for e in details.events)


def test_the_judge_does_not_end_a_run_started_again_since(durable: Instance) -> None:
    store = durable.run_store
    rid = _starting(durable)
    store.requeue(rid, 1)
    store.set_status(rid, RunStatus.STARTING)
    store.claim(rid, 2)
    assert durable.end_lost_run(rid, "judged on start 1", token=1) is RunStatus.RUNNING
    assert store.get(rid).status is RunStatus.RUNNING


def test_a_run_cut_off_keeps_its_records_in_a_journal_and_recover_writes_them(
    pg_server_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    direct = Instance.at(home, database_url=pg_server_url)
    with TcpProxy(("127.0.0.1", 5432)) as proxy:
        cut_off = Instance.at(home, database_url=proxy.url_for(pg_server_url))
        rid = _starting(cut_off)
        cut_off.run_store.claim(rid, 1)
        rec = cut_off.recorder(rid, token=1)
        rec.wait_limit = 1.0
        path = cut_off.journal_path(rid)
        assert path is not None
        rec.task("a", 1, TaskStatus.RUNNING, started_at=1.0)
        rec.flush()
        proxy.cut()
        rec.task("a", 1, TaskStatus.SUCCESS, ended_at=2.0)
        rec.task("b", 1, TaskStatus.RUNNING, started_at=2.0)
        rec.task("b", 1, TaskStatus.SUCCESS, ended_at=3.0)
        rec.event("note", "kept while away")
        with pytest.raises(JournalKeptError, match="runs recover"):
            rec.close(run_status=RunStatus.SUCCESS)
        assert path.exists()
        cut_off.close()
    # Nothing of it reached the database; the journal has it all, and its end.
    assert direct.run_store.get(rid).status is RunStatus.RUNNING
    assert "2 task records, 1 event, " in direct.recover(rid)
    assert not path.exists()
    details = direct.run_details(rid)
    assert details.run.status is RunStatus.SUCCESS
    assert sorted((t.key, t.status) for t in details.tasks) == [
        ("a", TaskStatus.SUCCESS),
        ("b", TaskStatus.SUCCESS),
    ]
    assert any(e.kind == "note" for e in details.events)
    direct.close()
