"""Timed triggers and sensors switched off and on: off, they do not fire (nor are
evaluated); back on, they go on from that moment, not with the ticks they missed."""

from __future__ import annotations

from pathlib import Path

from conveyor import Instance, RunRequest, SensorContext, job, sensor
from conveyor.scheduler.daemon import Daemon
from conveyor.storage.trigger_state import sensor_trigger
from conveyor.workspace import Workspace

MINUTE = 60.0
T0 = 1_800_000_000.0  # a whole minute


@job(trigger="every:1m", catchup="all", execute={"concurrency": None})
def minutely() -> None: ...


CALLS: list[str | None] = []


@job(execute={"concurrency": None})
def ingest() -> None: ...


@sensor(job=ingest, interval="10s")
def watcher(context: SensorContext) -> list[RunRequest]:
    CALLS.append(context.cursor)
    return [RunRequest(run_key=f"k{len(CALLS)}")]


def _daemon(instance: Instance, clock: dict[str, float]) -> Daemon:
    ws = Workspace(
        jobs={"minutely": minutely, "ingest": ingest},
        origin={"module": __name__},
        sensors={"watcher": watcher},
    )
    daemon = Daemon(ws, instance, clock=lambda: clock["now"], launch=lambda *_: None)
    daemon.started = T0 - 1
    return daemon


def _tick_times(instance: Instance) -> list[float]:
    return sorted(t["tick_at"] for t in instance.tick_store.for_job("minutely"))


def test_a_schedule_switched_off_does_not_fire_and_resumes_from_now(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    clock = {"now": T0 + 1}
    daemon = _daemon(instance, clock)
    daemon.fire_timed(clock["now"])
    assert _tick_times(instance) == [T0]

    instance.trigger_states.set_enabled("minutely", "every:1m", False, at=T0 + 2)
    for minutes in (1, 2, 3, 4, 5):
        clock["now"] = T0 + minutes * MINUTE + 1
        daemon.fire_timed(clock["now"])
    assert _tick_times(instance) == [T0]  # off: no tick, though catchup="all"

    clock["now"] = T0 + 5 * MINUTE + 30
    instance.trigger_states.set_enabled("minutely", "every:1m", True, at=clock["now"])
    daemon.fire_timed(clock["now"])
    assert _tick_times(instance) == [T0]  # the missed ticks are not fired
    # a daemon started now does not fire them either
    _daemon(instance, clock).fire_timed(clock["now"])
    assert _tick_times(instance) == [T0]

    clock["now"] = T0 + 6 * MINUTE + 1
    daemon.fire_timed(clock["now"])
    assert _tick_times(instance) == [T0, T0 + 6 * MINUTE]  # on again, from now
    assert len(instance.runs("minutely")) == 2


def test_a_schedule_switched_off_during_a_pass_loop_stops_firing(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    clock = {"now": T0 + 1}
    daemon = _daemon(instance, clock)
    daemon.tick()
    assert _tick_times(instance) == [T0]
    instance.trigger_states.set_enabled("minutely", "every:1m", False, at=T0 + 2)
    clock["now"] = T0 + MINUTE + 1
    daemon.tick()
    assert _tick_times(instance) == [T0]
    instance.trigger_states.set_enabled("minutely", "every:1m", True, at=T0 + MINUTE + 2)
    clock["now"] = T0 + 2 * MINUTE + 1
    daemon.tick()
    assert _tick_times(instance) == [T0, T0 + 2 * MINUTE]


def test_a_sensor_switched_off_is_not_evaluated(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    CALLS.clear()
    clock = {"now": T0}
    daemon = _daemon(instance, clock)
    daemon.evaluate_sensors(clock["now"])
    assert len(CALLS) == 1
    assert len(instance.runs("ingest")) == 1

    instance.trigger_states.set_enabled("watcher", sensor_trigger("watcher"), False)
    for step in (1, 2, 3):
        clock["now"] = T0 + step * 60
        daemon.evaluate_sensors(clock["now"])
        daemon.tick()
    assert len(CALLS) == 1
    assert len(instance.runs("ingest")) == 1

    instance.trigger_states.set_enabled("watcher", sensor_trigger("watcher"), True)
    clock["now"] = T0 + 240
    daemon.evaluate_sensors(clock["now"])
    assert len(CALLS) == 2
    assert len(instance.runs("ingest")) == 2
    # another job's trigger named like the sensor's does not switch it
    instance.trigger_states.set_enabled("ingest", sensor_trigger("watcher"), False)
    clock["now"] = T0 + 300
    daemon.evaluate_sensors(clock["now"])
    assert len(CALLS) == 3
