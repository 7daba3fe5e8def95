"""The judge of dead runs: evidence from the host, or silence watched while the database
answered; never a healthy run, never because the database was away."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import update

from conveyor.scheduler.monitor import MAX_STARTS, RunJudge
from conveyor.storage.instance import Instance
from conveyor.storage.schema import runs
from conveyor.storage.states import RunStatus
from tests.tcpproxy import TcpProxy
from tests.waiting import wait_until


def _ended_pid() -> int:
    """The id of a process that has ended, as the process itself reported it."""
    out = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout)


def _run(instance: Instance, status: RunStatus = RunStatus.RUNNING, **owner: Any) -> str:
    store = instance.run_store
    rid = store.create(job_name="j", job_version="v", status=RunStatus.QUEUED).id
    instance.lease_store.acquire("job:j", rid, 5)
    store.set_status(rid, RunStatus.STARTING)
    if status is not RunStatus.STARTING:
        store.claim(rid, 1)
    if status is RunStatus.CANCELING:
        store.request_cancel(rid)
    if owner:
        with instance.db.write() as conn:
            conn.execute(update(runs).where(runs.c.id == rid).values(**owner))
    return rid


def test_a_run_whose_process_is_gone_ends_at_once(durable: Instance) -> None:
    gone = _run(durable, pid=_ended_pid())
    canceling = _run(durable, RunStatus.CANCELING, pid=_ended_pid())
    verdicts = RunJudge(durable, lease=3600).judge()
    assert {v.run_id for v in verdicts} == {gone, canceling}
    lost = durable.run(gone)
    assert lost.status is RunStatus.FAILURE
    assert lost.error is not None
    assert "is gone" in lost.error
    assert durable.run(canceling).status is RunStatus.CANCELED
    assert durable.lease_store.held("job:j") == []


def test_a_live_process_on_this_host_is_never_judged_by_its_silence(durable: Instance) -> None:
    rid = _run(durable)  # this test's own process, which sends no heartbeat
    judge = RunJudge(durable, lease=0.05)
    for _ in range(3):
        assert judge.judge() == []
        time.sleep(0.1)
    assert durable.run(rid).status is RunStatus.RUNNING
    assert durable.lease_store.held("job:j") == [rid]


def test_a_silent_run_elsewhere_ends_after_a_lease_watched_by_the_judge(
    durable: Instance,
) -> None:
    rid = _run(durable, host="elsewhere/0", pid=1)
    judge = RunJudge(durable, lease=0.5)
    assert judge.judge() == []  # a new judge first watches for a whole lease
    [verdict] = wait_until(judge.judge, 20, "the silent run to be judged")
    assert verdict.run_id == rid
    assert "no heartbeat" in verdict.reason
    assert durable.run(rid).status is RunStatus.FAILURE


def test_a_heartbeat_keeps_a_run_elsewhere_alive(durable: Instance) -> None:
    rid = _run(durable, host="elsewhere/0", pid=1)
    judge = RunJudge(durable, lease=0.5)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        durable.run_store.heartbeat(rid, 1)
        assert judge.judge() == []
        time.sleep(0.1)
    assert durable.run(rid).status is RunStatus.RUNNING


def test_after_an_outage_the_judge_watches_afresh(pg_server_url: str, tmp_path: Path) -> None:
    direct = Instance.at(tmp_path / "home", database_url=pg_server_url)
    rid = _run(direct, host="elsewhere/0", pid=1)
    with TcpProxy(("127.0.0.1", 5432)) as proxy:
        through = Instance.at(tmp_path / "home", database_url=proxy.url_for(pg_server_url))
        judge = RunJudge(through, lease=1.0)
        assert judge.judge() == []
        proxy.cut()
        cut_at = time.monotonic()
        wait_until(lambda: _fails(judge), 30, "the judge to see the outage")
        wait_until(lambda: time.monotonic() - cut_at > 2.0, 10, "an outage longer than the lease")
        proxy.restore()
        # The run could not heartbeat during the outage: it gets a whole lease now.
        assert rid not in wait_until(lambda: _answers(judge), 30, "the database to answer")
        assert direct.run(rid).status is RunStatus.RUNNING
        wait_until(
            lambda: rid in {v.run_id for v in judge.judge()},
            20,
            "the silent run to be judged after a lease",
        )
        assert direct.run(rid).status is RunStatus.FAILURE
        through.close()
    direct.close()


def _fails(judge: RunJudge) -> bool:
    try:
        judge.judge()
    except Exception:
        return True
    return False


def _answers(judge: RunJudge) -> list[str] | None:
    """The runs the judge ended in a pass that could read the database, else None."""
    try:
        return [v.run_id for v in judge.judge()] or ["(none)"]
    except Exception:
        return None


def test_a_start_without_its_starter_goes_back_to_the_queue(durable: Instance) -> None:
    rid = _run(durable, RunStatus.STARTING, pid=_ended_pid())
    [verdict] = RunJudge(durable).judge()
    assert verdict.action == "requeued"
    assert "starter" in verdict.reason
    run = durable.run(rid)
    assert run.status is RunStatus.QUEUED
    assert run.token == 1
    assert durable.lease_store.held("job:j") == []  # its slot is free at once
    assert any(e.kind == "requeued" for e in durable.run_details(rid).events)


def test_a_start_no_worker_began_goes_back_then_fails_after_many(durable: Instance) -> None:
    rid = _run(durable, RunStatus.STARTING, host="elsewhere/0", pid=1)
    judge = RunJudge(durable, start_timeout=0.2)
    [verdict] = wait_until(judge.judge, 20, "the lost start to be requeued")
    assert verdict.action == "requeued"
    assert "no worker began it" in verdict.reason
    with durable.db.write() as conn:
        conn.execute(update(runs).where(runs.c.id == rid).values(token=MAX_STARTS - 1))
    durable.run_store.set_status(rid, RunStatus.STARTING)
    with durable.db.write() as conn:
        conn.execute(update(runs).where(runs.c.id == rid).values(host="elsewhere/0", pid=1))
    [verdict] = wait_until(judge.judge, 20, "the last start to be judged")
    assert verdict.action == "ended failure"
    assert durable.run(rid).status is RunStatus.FAILURE
