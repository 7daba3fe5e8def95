"""The daemon's steps are isolated: user code runs outside the pass, a failing step does not
stop the others."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import update

from conveyor import Instance, RunRequest, RunStatus, SensorContext, job, sensor
from conveyor.definitions.intervals import parse_moment
from conveyor.scheduler.daemon import Daemon
from conveyor.storage.schema import runs
from conveyor.workspace import Workspace
from tests.waiting import wait_until

RELEASE = threading.Event()
CALLS: dict[str, int] = {}


@job(trigger="every:1m", execute={"concurrency": None})
def minutely() -> None: ...


@sensor(job=minutely, interval=1, name="hangs")
def hangs(context: SensorContext) -> list[RunRequest]:
    CALLS["hangs"] = CALLS.get("hangs", 0) + 1
    RELEASE.wait()
    return [RunRequest(run_key="late")]


@sensor(job=minutely, interval=1, name="raises")
def raises(context: SensorContext) -> list[RunRequest]:
    CALLS["raises"] = CALLS.get("raises", 0) + 1
    raise OSError("the bucket is away")


@pytest.fixture
def hung() -> Iterator[None]:
    RELEASE.clear()
    CALLS.clear()
    yield
    RELEASE.set()  # the hung sensor's thread ends


def _dead_run(instance: Instance) -> str:
    """A running run whose process has ended."""
    out = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    run = instance.run_store.create(job_name="minutely", job_version="v", then=RunStatus.RUNNING)
    with instance.db.write() as conn:
        conn.execute(update(runs).where(runs.c.id == run.id).values(pid=int(out.stdout)))
    return run.id


def _pass_within(daemon: Daemon, seconds: float) -> None:
    """One pass, which must end within ``seconds`` (run in a thread: a hung pass would
    hang the test)."""
    errors: list[BaseException] = []
    done = threading.Event()

    def one() -> None:
        try:
            daemon.tick()
        except BaseException as e:
            errors.append(e)
        finally:
            done.set()

    threading.Thread(target=one, daemon=True).start()
    wait_until(done.is_set, seconds, "the pass to end")
    assert errors == []


def test_hung_and_failing_sensors_do_not_hold_up_ticks_or_dead_runs(
    durable: Instance, hung: None, caplog: pytest.LogCaptureFixture
) -> None:
    ws = Workspace(
        jobs={"minutely": minutely},
        origin={"module": __name__},
        sensors={"hangs": hangs, "raises": raises},
    )
    clock = {"now": parse_moment("2026-01-10T00:00:01", "t").timestamp()}
    daemon = Daemon(ws, durable, clock=lambda: clock["now"], launch=lambda *_: None)
    daemon.started = clock["now"] - 5
    daemon._sensors.timeout = 0.5
    dead = _dead_run(durable)
    with caplog.at_level("INFO", logger="conveyor.daemon"):
        _pass_within(daemon, 10)
        # The tick that was due is queued, and the dead run is ended, in that pass.
        [ticked] = [r for r in durable.runs("minutely") if r.trigger == "every:1m"]
        assert ticked.status in (RunStatus.QUEUED, RunStatus.STARTING)
        assert durable.run(dead).status is RunStatus.FAILURE
        # Later passes take up the failure, and say once that the other sensor hangs.
        wait_until(lambda: CALLS.get("hangs") == 1, 10, "the hung sensor to be called")

        def logged() -> bool:
            clock["now"] += 10  # both sensors are due again, by their interval
            _pass_within(daemon, 10)
            text = caplog.text
            return "sensor raises failed" in text and "sensor hangs has run for more" in text

        wait_until(logged, 20, "the failure and the hung sensor to be logged")
        for _ in range(3):
            clock["now"] += 10
            _pass_within(daemon, 10)
        assert CALLS["hangs"] == 1  # not called again while it hangs
        assert CALLS["raises"] >= 2  # a failing sensor is called again at its interval
        assert caplog.text.count("sensor hangs has run for more") == 1
        assert "OSError: the bucket is away" in caplog.text  # its traceback
        # Once it returns, a later pass takes up what it asked for.
        RELEASE.set()

        def taken_up() -> bool:
            _pass_within(daemon, 10)
            return any(r.tags.get("run_key") == "late" for r in durable.runs("minutely"))

        wait_until(taken_up, 20, "the hung sensor's run")


def test_a_failing_step_does_not_stop_the_others(
    durable: Instance, caplog: pytest.LogCaptureFixture
) -> None:
    ws = Workspace(jobs={"minutely": minutely}, origin={"module": __name__})
    clock = {"now": parse_moment("2026-01-10T00:00:01", "t").timestamp()}
    daemon = Daemon(ws, durable, clock=lambda: clock["now"], launch=lambda *_: None)
    daemon.started = clock["now"] - 5

    calls = []

    def broken(now: float) -> None:
        calls.append(now)
        raise KeyError("a bug")

    daemon.steps.insert(0, ("broken", broken))
    dead = _dead_run(durable)
    with pytest.raises(KeyError):
        daemon.tick()
    assert [r.trigger for r in durable.runs("minutely") if r.id != dead] == ["every:1m"]
    assert durable.run(dead).status is RunStatus.FAILURE
    # In the daemon's loop, the step's traceback is logged once, then only counted.
    stop = threading.Event()
    thread = threading.Thread(target=daemon.run, args=(stop,), daemon=True)
    with caplog.at_level("INFO", logger="conveyor.daemon"):
        thread.start()
        try:
            wait_until(lambda: len(calls) >= 6, 20, "five passes of the loop")
        finally:
            stop.set()
            thread.join(timeout=10)
    assert caplog.text.count("scheduler step broken failed") == 1
    assert caplog.text.count("KeyError: 'a bug'") == 1
