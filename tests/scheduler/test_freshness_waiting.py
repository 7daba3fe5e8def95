"""A run waiting at a freshness gate: later intervals go ahead, and it says what it waits for.

Job ``report`` is gated on ``source.is_matching_interval_fresh`` and runs
hourly intervals; ``source`` covers hours 1 and 3, never hour 2. Most tests run
the daemon's launching step pass by pass, with the runs executed in this
process (or left holding their slot); the last runs the daemon's loop with its
run-worker processes.
"""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from conveyor import Instance, RunStatus
from conveyor.scheduler import launching
from conveyor.scheduler.admission import queued_ahead
from conveyor.scheduler.daemon import Daemon
from conveyor.scheduler.freshness import GATES_OPEN, WAITING, waiting_reason
from conveyor.workspace import Workspace, load_file
from tests.server.test_api import Api, executing_here, make_api
from tests.waiting import wait_until

WORKSPACE = """
from conveyor import job


@job(execute={"concurrency": None})
def source(context) -> str:
    return "covered"


@job(freshness=[source.is_matching_interval_fresh], execute={"concurrency": 1})
def report(context) -> str:
    return f"{context.interval.start:%H:%M}"


@job(schedule="0 * * * *", freshness=[source.is_matching_interval_fresh])
def hourly(context) -> str:
    return f"{context.interval.start:%H:%M}"


@job(freshness=[source.is_fresh], execute={"concurrency": None})
def fresh_report() -> int:
    return 1


@job(execute={"concurrency": None})
def other() -> int:
    return 3
"""


def at(hour: float) -> float:
    """2026-01-10 at ``hour`` o'clock UTC, in epoch seconds."""
    return datetime(2026, 1, 10, tzinfo=UTC).timestamp() + hour * 3600


def iso(hour: float) -> str:
    return datetime.fromtimestamp(at(hour), UTC).isoformat()


def waits_text(start: float, end: float, missing: str) -> str:
    return (
        f"waits for job 'source' to cover its interval [{iso(start)}, {iso(end)}) "
        f"(job.is_matching_interval_fresh:source): {missing}"
    )


NOTHING = "no successful run of 'source' covers any of it"


def queue(instance: Instance, ws: Workspace, name: str, span: tuple[float, float] | None) -> str:
    """Queue a run of job ``name`` for hours ``span``, as a schedule or a backfill does."""
    return instance.run_store.create(
        job_name=name,
        job_version=ws.job(name).version,
        status=RunStatus.QUEUED,
        origin={**ws.origin, "job": name},
        interval=None if span is None else (at(span[0]), at(span[1])),
    ).id


def status(instance: Instance, run_id: str) -> RunStatus:
    return instance.run(run_id).status


def reason(instance: Instance, run_id: str) -> str | None:
    return waiting_reason(instance.event_store.for_run(run_id))


def kinds(instance: Instance, run_id: str) -> list[str]:
    return [e.kind for e in instance.event_store.for_run(run_id, kinds=(WAITING, GATES_OPEN))]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    path = tmp_path / "pipelines.py"
    path.write_text(textwrap.dedent(WORKSPACE))
    return load_file(path)


def recording(ws: Workspace, execute: bool) -> tuple[list[str], Callable[[str, Instance], Any]]:
    """A launcher that notes each run started, and executes it here when ``execute``
    (else the run keeps its slots, as a run still running does)."""
    started: list[str] = []
    run_here = executing_here(ws)

    def launch(run_id: str, instance: Instance) -> None:
        started.append(run_id)
        if execute:
            run_here(run_id, instance)

    return started, launch


def test_a_never_covered_interval_waits_and_later_covered_ones_run(
    durable: Instance, ws: Workspace
) -> None:
    started, launch = recording(ws, execute=True)
    daemon = Daemon(ws, durable, launch=launch)
    hours = {h: queue(durable, ws, "report", (h, h + 1)) for h in (1, 2, 3)}
    daemon.launch_queued()
    daemon.launch_queued()
    for h, rid in hours.items():
        assert status(durable, rid) is RunStatus.QUEUED
        assert reason(durable, rid) == waits_text(h, h + 1, NOTHING)
        assert kinds(durable, rid) == [WAITING]  # said once, however many passes

    covering = [queue(durable, ws, "source", (h, h + 1)) for h in (1, 3)]
    daemon.launch_queued()  # the source runs
    assert [status(durable, r) for r in covering] == [RunStatus.SUCCESS] * 2
    daemon.launch_queued()
    # Hour 3 went ahead of hour 2, whose interval the source never covered.
    assert status(durable, hours[1]) is RunStatus.SUCCESS
    assert status(durable, hours[3]) is RunStatus.SUCCESS
    assert status(durable, hours[2]) is RunStatus.QUEUED
    assert started[-2:] == [hours[1], hours[3]]
    assert reason(durable, hours[2]) == waits_text(2, 3, NOTHING)
    assert reason(durable, hours[3]) is None
    assert kinds(durable, hours[3]) == [WAITING, GATES_OPEN]
    assert durable.result_store.get(hours[3], "report") == "03:00"

    # Half of hour 2 covered: the reason names the half that is not.
    half = durable.run_store.create(
        job_name="source",
        job_version=ws.job("source").version,
        status=RunStatus.QUEUED,
        origin={**ws.origin, "job": "source"},
        interval=(at(2), at(2.5)),
    )
    daemon.launch_queued()
    daemon.launch_queued()
    assert status(durable, half.id) is RunStatus.SUCCESS
    assert status(durable, hours[2]) is RunStatus.QUEUED
    gap = f"[{iso(2.5)}, {iso(3)}) is not covered yet"
    assert reason(durable, hours[2]) == waits_text(2, 3, gap)
    assert kinds(durable, hours[2]) == [WAITING, WAITING]

    queue(durable, ws, "source", (2.5, 3))
    daemon.launch_queued()
    daemon.launch_queued()
    assert status(durable, hours[2]) is RunStatus.SUCCESS
    assert reason(durable, hours[2]) is None


def test_runs_not_waiting_keep_their_order_and_the_job_its_concurrency(
    durable: Instance, ws: Workspace
) -> None:
    for h in (2, 3):
        queue(durable, ws, "source", (h, h + 1))
    Daemon(ws, durable, launch=executing_here(ws)).launch_queued()
    waiting = queue(durable, ws, "report", (1, 2))
    second, third = (queue(durable, ws, "report", (h, h + 1)) for h in (2, 3))

    # Runs that stay running: the job's one slot stays taken.
    held, launch = recording(ws, execute=False)
    daemon = Daemon(ws, durable, launch=launch)
    daemon.launch_queued()
    daemon.launch_queued()
    assert held == [second]  # the oldest covered run, and no more than the limit
    assert status(durable, third) is RunStatus.QUEUED
    assert queued_ahead(durable, ws.job("report"), durable.run(third)) == 0

    # Its run ends (its process lost, here): the slot goes to the next covered run.
    durable.end_lost_run(second, "ended by the test")
    done, launch = recording(ws, execute=True)
    Daemon(ws, durable, launch=launch).launch_queued()
    assert done == [third]
    assert status(durable, waiting) is RunStatus.QUEUED
    assert reason(durable, waiting) == waits_text(1, 2, NOTHING)


def test_queued_ahead_counts_older_runs_but_not_those_waiting_for_their_interval(
    durable: Instance, ws: Workspace
) -> None:
    report = ws.job("report")
    queue(durable, ws, "source", (2, 3))
    Daemon(ws, durable, launch=executing_here(ws)).launch_queued()
    queue(durable, ws, "report", (1, 2))  # never covered
    queue(durable, ws, "report", (2, 3))  # covered: it starts before a newer run
    newest = durable.run(queue(durable, ws, "report", None))
    assert queued_ahead(durable, report, newest) == 1


def test_an_is_fresh_gate_holds_the_whole_queue_and_says_why(
    durable: Instance, ws: Workspace
) -> None:
    started, launch = recording(ws, execute=True)
    daemon = Daemon(ws, durable, launch=launch)
    runs = [queue(durable, ws, "fresh_report", None) for _ in range(2)]
    daemon.launch_queued()
    daemon.launch_queued()
    why = "waits for job 'source' to be fresh (job.is_fresh:source): it has never succeeded"
    for rid in runs:
        assert status(durable, rid) is RunStatus.QUEUED
        assert reason(durable, rid) == why
        assert kinds(durable, rid) == [WAITING]
    up = queue(durable, ws, "source", None)
    daemon.launch_queued()
    daemon.launch_queued()
    assert status(durable, up) is RunStatus.SUCCESS
    assert started[-2:] == runs  # in the order they were queued
    assert all(status(durable, r) is RunStatus.SUCCESS for r in runs)


def test_a_full_window_of_waiting_runs_holds_up_no_other_job(
    durable: Instance, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(launching, "PER_JOB", 2)
    started, launch = recording(ws, execute=False)
    daemon = Daemon(ws, durable, launch=launch)
    for h in (1, 2, 3):
        queue(durable, ws, "report", (h, h + 1))
    newer = queue(durable, ws, "other", None)
    daemon.launch_queued()
    assert started == [newer]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from make_api(tmp_path, WORKSPACE)


def test_the_api_and_the_run_page_say_what_a_run_waits_for(api: Api) -> None:
    ws = api.state.workspace.workspace
    assert ws is not None
    rid = queue(api.instance, ws, "report", (2, 3))
    plain = queue(api.instance, ws, "other", None)
    assert api.get(f"/api/runs/{rid}")["waiting_for"] is None  # no daemon looked at it yet
    api.daemon.launch_queued()
    expected = waits_text(2, 3, NOTHING)
    assert api.get(f"/api/runs/{rid}")["waiting_for"] == expected
    page = api.client.get(f"/runs/{rid}").text
    assert f'<span id="run-waiting">queued: {escape(expected)}</span>' in page
    assert api.get(f"/api/runs/{plain}")["waiting_for"] is None  # it ran
    events = api.get(f"/api/runs/{rid}/events")
    assert [e["kind"] for e in events] == [WAITING]


def test_a_scheduled_job_ticks_past_an_interval_that_waits(
    durable: Instance, ws: Workspace
) -> None:
    """The hour-2 run waits; the 04:00 tick's run covers hour 3 only (not hours 2 and 3,
    which would wait as long), and starts once the source covers hour 3."""
    clock = {"now": at(2) + 1}
    started, launch = recording(ws, execute=True)
    daemon = Daemon(ws, durable, clock=lambda: clock["now"], launch=launch)
    daemon.started = at(2) - 60

    def tick(hour: int) -> str:
        clock["now"] = at(hour) + 1
        daemon.fire_timed(clock["now"])
        newest = durable.runs("hourly")[0]
        assert newest.interval_start is not None
        assert newest.interval_end is not None
        assert (newest.interval_start.timestamp(), newest.interval_end.timestamp()) == (
            at(hour - 1),
            at(hour),
        )
        return newest.id

    first = tick(2)
    queue(durable, ws, "source", (1, 2))
    daemon.launch_queued()
    daemon.launch_queued()
    assert status(durable, first) is RunStatus.SUCCESS
    second = tick(3)
    daemon.launch_queued()
    third = tick(4)
    queue(durable, ws, "source", (3, 4))
    daemon.launch_queued()
    daemon.launch_queued()
    assert status(durable, third) is RunStatus.SUCCESS
    assert status(durable, second) is RunStatus.QUEUED
    assert reason(durable, second) == waits_text(2, 3, NOTHING)
    assert durable.result_store.get(third, "hourly") == "03:00"
    assert second not in started


def test_under_a_running_daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same, with the daemon's loop and its run-worker processes."""
    home = tmp_path / "home"
    monkeypatch.setenv("CONVEYOR_HOME", str(home))
    path = tmp_path / "pipelines.py"
    path.write_text(textwrap.dedent(WORKSPACE))
    ws = load_file(path)
    instance = Instance.at(home)
    daemon = Daemon(ws, instance)
    stop = threading.Event()
    thread = threading.Thread(target=daemon.run, args=(stop,), daemon=True)
    thread.start()
    try:
        hours = {h: queue(instance, ws, "report", (h, h + 1)) for h in (1, 2, 3)}
        wait_until(
            lambda: all(reason(instance, r) is not None for r in hours.values()),
            30,
            "each run to say what it waits for",
        )
        for h in (1, 3):
            queue(instance, ws, "source", (h, h + 1))
        wait_until(
            lambda: status(instance, hours[3]) is RunStatus.SUCCESS,
            60,
            "the run of hour 3 to succeed",
        )
        assert status(instance, hours[1]) is RunStatus.SUCCESS
        assert status(instance, hours[2]) is RunStatus.QUEUED
        assert reason(instance, hours[2]) == waits_text(2, 3, NOTHING)
    finally:
        stop.set()
        thread.join(timeout=10)
        daemon.reap(wait=10)
        instance.close()
