"""Sensors: evaluated every interval, run keys deduplicated, cursors kept across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor import (
    Config,
    DefinitionError,
    Instance,
    RunRequest,
    SensorContext,
    WorkspaceError,
    job,
    sensor,
)
from conveyor.scheduler.daemon import Daemon, check_references
from conveyor.workspace import Workspace

FILES = ["a.csv", "b.csv"]


class Target(Config):
    path: str


@job(execute={"concurrency": None})
def ingest(cfg: Target) -> str:
    return cfg.path


@sensor(job=ingest, interval="10s")
def new_files(context: SensorContext) -> list[RunRequest]:
    seen = int(context.cursor or 0)
    fresh = FILES[seen:]
    context.cursor = str(len(FILES))
    return [RunRequest(run_key=name, run_config={"config": {"path": name}}) for name in fresh]


def _daemon(instance: Instance, clock: dict[str, float], *sensors: object) -> Daemon:
    ws = Workspace(
        jobs={"ingest": ingest}, origin={"module": __name__}, sensors={s.name: s for s in sensors}
    )  # type: ignore[attr-defined]
    return Daemon(ws, instance, clock=lambda: clock["now"], launch=lambda *_: None)


def test_sensor_requests_run_once_and_the_cursor_survives_restarts(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    clock = {"now": 1000.0}
    FILES[:] = ["a.csv", "b.csv"]
    daemon = _daemon(instance, clock, new_files)
    daemon.evaluate_sensors(clock["now"])
    runs = instance.runs("ingest")
    assert sorted(r.run_config["config"]["path"] for r in runs) == ["a.csv", "b.csv"]
    assert {r.tags["run_key"] for r in runs} == {"a.csv", "b.csv"}
    assert all(r.trigger == "sensor:new_files" for r in runs)
    assert instance.sensor_store.get("new_files") == ("2", 1000.0)

    clock["now"] = 1005.0  # before the interval: not evaluated
    FILES.append("c.csv")
    daemon.evaluate_sensors(clock["now"])
    assert len(instance.runs("ingest")) == 2

    # a new daemon (a restart) goes on from the stored cursor
    clock["now"] = 1011.0
    _daemon(instance, clock, new_files).evaluate_sensors(clock["now"])
    assert sorted(r.run_config["config"]["path"] for r in instance.runs("ingest")) == [
        "a.csv",
        "b.csv",
        "c.csv",
    ]

    # asking again for a run key that already ran queues nothing
    @sensor(job=ingest, interval=1, name="again")
    def again() -> RunRequest:
        return RunRequest(run_key="same", run_config={"config": {"path": "x"}})

    repeat = _daemon(instance, clock, again)
    for t in (1020.0, 1030.0, 1040.0):
        clock["now"] = t
        repeat.evaluate_sensors(t)
    assert sum(r.tags.get("run_key") == "same" for r in instance.runs("ingest")) == 1
    instance.close()


def test_failing_sensors_and_bad_requests(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    clock = {"now": 50.0}

    @sensor(job=ingest, interval=1, name="broken")
    def broken(context: SensorContext) -> None:
        context.cursor = "moved"
        raise OSError("listing failed")

    @sensor(job=ingest, interval=1, name="bad_config")
    def bad_config() -> RunRequest:
        return RunRequest(run_key="k", run_config={"config": {"path": 3, "extra": 1}})

    daemon = _daemon(instance, clock, broken, bad_config)
    daemon.evaluate_sensors(50.0)
    assert instance.runs("ingest") == []
    assert instance.sensor_store.get("broken") == (None, 50.0)  # cursor not moved
    instance.close()


def test_bad_sensor_definitions() -> None:
    def body() -> None: ...

    with pytest.raises(DefinitionError, match="job= must be a job"):
        sensor(job=None)(body)
    with pytest.raises(DefinitionError, match="invalid sensor interval 'often'"):
        sensor(job=ingest, interval="often")(body)

    def two(a: object, b: object) -> None: ...

    with pytest.raises(DefinitionError, match="at most one parameter"):
        sensor(job=ingest)(two)
    odd = sensor(job=ingest, name="odd")(lambda: ["not a request"])
    with pytest.raises(DefinitionError, match="return RunRequest"):
        odd.evaluate(SensorContext("odd", None, None))
    orphan = sensor(job="nowhere", name="orphan")(body)
    with pytest.raises(WorkspaceError, match="runs job 'nowhere'"):
        check_references(Workspace(jobs={}, origin={"file": "x.py"}, sensors={"orphan": orphan}))


@job(partitions=["us", "eu"], execute={"concurrency": None})
def regional() -> None: ...


@sensor(job=regional, interval="10s")
def regional_files(context: SensorContext) -> list[RunRequest]:
    return [
        RunRequest(run_key="eu-1", partition="eu"),
        RunRequest(run_key="all-1"),
        RunRequest(run_key="bad", partition="mars"),
    ]


def test_a_sensor_asks_for_a_partition_or_every_key(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    ws = Workspace(
        jobs={"regional": regional},
        origin={"module": __name__},
        sensors={"regional_files": regional_files},
    )
    daemon = Daemon(ws, instance, clock=lambda: 1000.0, launch=lambda *_: None)
    daemon.evaluate_sensors(1000.0)
    runs = instance.runs("regional")
    keys = sorted((r.tags["run_key"], r.partition_key or "") for r in runs)
    # the request for an unknown key is logged and skipped; the others run
    assert keys == [("all-1", "eu"), ("all-1", "us"), ("eu-1", "eu")]
    instance.close()
