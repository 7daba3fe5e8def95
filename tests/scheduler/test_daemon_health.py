"""The daemon's health row: a beat after its passes, with the first error of a pass."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from conveyor import Instance, job
from conveyor.scheduler.daemon import Daemon
from conveyor.workspace import Workspace
from tests.waiting import wait_until


@job(trigger="every:1h", execute={"concurrency": None})
def hourly() -> None: ...


def _daemon(instance: Instance) -> Daemon:
    ws = Workspace(jobs={"hourly": hourly}, origin={"module": __name__})
    return Daemon(ws, instance, launch=lambda *_: None)


def _fail(now: float) -> None:
    raise RuntimeError("the disk is full")


def test_each_pass_is_a_beat_with_its_first_error(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    daemon = _daemon(instance)
    daemon.tick()
    [row] = instance.daemon_status.all()
    assert row.daemon_id == daemon.id
    assert (row.host, row.pid, row.passes) == (daemon.host, daemon.pid, 1)
    assert row.last_error is None
    assert row.last_pass_seconds >= 0

    daemon.steps.insert(0, ("checking disks", _fail))
    daemon.steps.append(("second", _fail))
    with pytest.raises(ExceptionGroup):
        daemon.tick()
    [row] = instance.daemon_status.all()
    assert row.passes == 2
    assert row.last_error == "checking disks: RuntimeError: the disk is full"
    assert row.last_error_at == row.last_pass_at

    del daemon.steps[0]
    del daemon.steps[-1]
    daemon.tick()
    [row] = instance.daemon_status.all()
    assert row.passes == 3
    assert row.last_error == "checking disks: RuntimeError: the disk is full"
    assert row.last_error_at is not None
    assert row.last_error_at < row.last_pass_at


def test_a_beat_that_cannot_be_written_does_not_fail_the_pass(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    daemon = _daemon(instance)
    with instance.db.write() as conn:
        conn.execute(sa.text("DROP TABLE daemon_status"))
    daemon.tick()  # the beat is dropped; the pass is not failed for it
    assert not daemon.beat(0.01, [])


def test_a_running_daemon_beats_about_once_a_second_counting_every_pass(
    tmp_path: Path,
) -> None:
    instance = Instance.at(tmp_path / "home")
    daemon = _daemon(instance)
    daemon.poll = 0.02
    stop = threading.Event()
    thread = threading.Thread(target=daemon.run, args=(stop,), daemon=True)
    thread.start()
    try:
        first = wait_until(instance.daemon_status.all, 30, "the first beat")[0]
        assert first.daemon_id == daemon.id
        later = wait_until(
            lambda: [
                d for d in instance.daemon_status.all() if d.last_pass_at > first.last_pass_at
            ],
            30,
            "a second beat",
        )[0]
    finally:
        stop.set()
        thread.join(timeout=10)
    # the passes between two beats are counted, not written one by one
    assert later.passes > 2
    assert later.started_at == first.started_at


def test_a_daemon_that_stops_removes_its_row_one_that_dies_leaves_it(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    stopping, dying = _daemon(instance), _daemon(instance)
    dying.tick()  # a pass, then nothing: as if killed
    stop = threading.Event()
    thread = threading.Thread(target=stopping.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(
            lambda: stopping.id in {d.daemon_id for d in instance.daemon_status.all()},
            30,
            "the running daemon's first beat",
        )
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert [d.daemon_id for d in instance.daemon_status.all()] == [dying.id]
