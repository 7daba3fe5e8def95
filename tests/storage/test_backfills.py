"""Backfill records: made with their runs, listed, watched and canceled, on SQLite and
PostgreSQL."""

from __future__ import annotations

import pytest

from conveyor.errors import ConfigError, NotFoundError
from conveyor.storage.instance import Instance
from conveyor.storage.states import RunStatus


def queued(inst: Instance, n: int, job: str = "etl") -> list[str]:
    return [
        inst.run_store.create(job_name=job, job_version="v1", status=RunStatus.QUEUED).id
        for _ in range(n)
    ]


def finish(inst: Instance, run_id: str, status: RunStatus) -> None:
    for to in (RunStatus.STARTING, RunStatus.RUNNING, status):
        inst.run_store.set_status(run_id, to)


def test_a_backfill_is_requested_until_its_runs_end(durable: Instance) -> None:
    ids = queued(durable, 3)
    spec = {"start": "2026-01-01T00:00:00+00:00", "end": None, "intervals": 3}
    bid = durable.backfills.create("etl", spec, ids)
    record = durable.backfills.get(bid)
    assert (record.job_name, record.status, record.run_count) == ("etl", "requested", 3)
    assert record.spec == spec
    assert [r.id for r in durable.backfills.runs(bid)] == ids
    assert durable.backfills.progress(bid)["queued"] == 3

    finish(durable, ids[0], RunStatus.SUCCESS)
    finish(durable, ids[1], RunStatus.FAILURE)
    progress = durable.backfills.progress(bid)
    assert {k: v for k, v in progress.items() if v} == {"queued": 1, "success": 1, "failure": 1}
    assert set(progress) == {str(s) for s in RunStatus}
    assert durable.backfills.get(bid).status == "requested"
    finish(durable, ids[2], RunStatus.SUCCESS)
    assert durable.backfills.get(bid).status == "done"
    assert durable.backfills.get(bid).to_dict()["status"] == "done"
    # nothing left to cancel; a done backfill stays done
    assert durable.backfills.cancel(bid) == 0
    assert durable.backfills.get(bid).status == "done"


def test_cancel_stops_the_runs_that_have_not_ended(durable: Instance) -> None:
    ids = queued(durable, 4)
    finish(durable, ids[0], RunStatus.SUCCESS)
    durable.run_store.set_status(ids[1], RunStatus.STARTING)
    durable.run_store.set_status(ids[1], RunStatus.RUNNING)
    other = queued(durable, 1)
    bid = durable.backfills.create("etl", {}, ids)
    assert durable.backfills.cancel(bid) == 3
    statuses = [durable.run(r).status for r in ids]
    assert statuses[0] is RunStatus.SUCCESS
    # the running run is asked to stop (its process is this one, which is not gone)
    assert statuses[1] in (RunStatus.CANCELING, RunStatus.CANCELED)
    assert statuses[2:] == [RunStatus.CANCELED, RunStatus.CANCELED]
    assert durable.run(other[0]).status is RunStatus.QUEUED  # not the backfill's
    assert durable.backfills.get(bid).status == "canceled"
    assert durable.backfills.cancel(bid) == 0  # the running one is canceling already


def test_list_is_newest_first_and_by_job(durable: Instance) -> None:
    first = durable.backfills.create("etl", {"n": 1}, queued(durable, 1))
    second = durable.backfills.create("report", {"n": 2}, queued(durable, 2, job="report"))
    third = durable.backfills.create("etl", {"n": 3}, [])
    assert [b.id for b in durable.backfills.list()] == [third, second, first]
    assert [b.id for b in durable.backfills.list("etl")] == [third, first]
    assert [b.id for b in durable.backfills.list(limit=1)] == [third]
    assert durable.backfills.list("nobody") == []
    # a backfill that found everything done already queued nothing: it is done
    assert durable.backfills.get(third).status == "done"
    assert durable.backfills.get(third).run_count == 0


def test_deleting_a_backfill_run_leaves_the_backfill(durable: Instance) -> None:
    ids = queued(durable, 2)
    bid = durable.backfills.create("etl", {}, ids)
    finish(durable, ids[0], RunStatus.SUCCESS)
    durable.delete_runs([ids[0]])
    assert [r.id for r in durable.backfills.runs(bid)] == [ids[1]]
    assert durable.backfills.get(bid).run_count == 1


def test_an_unknown_backfill_is_not_found(instance: Instance) -> None:
    store = instance.backfills
    for call in (store.get, store.progress, store.runs, store.cancel):
        with pytest.raises(NotFoundError, match="no backfill 'nope'"):
            call("nope")


def test_bad_backfills_are_config_errors(instance: Instance) -> None:
    with pytest.raises(ConfigError, match="give the job's name"):
        instance.backfills.create("", {}, [])
    with pytest.raises(ConfigError, match="not JSON"):
        instance.backfills.create("etl", {"when": object()}, [])
    with pytest.raises(ConfigError, match="limit=0"):
        instance.backfills.list(limit=0)
