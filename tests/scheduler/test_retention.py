"""Retention: with CONVEYOR_RETENTION_DAYS the daemon deletes old ended runs, never others."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor import ConfigError, Instance, RunStatus, task, workflow
from conveyor.scheduler import retention
from conveyor.scheduler.daemon import Daemon
from conveyor.scheduler.retention import DAY, ENV_RETENTION, Retention, retention_days
from conveyor.workspace import Workspace


@task
def work() -> int:
    return 1


@workflow
def kept() -> None:
    work()


@pytest.mark.parametrize(
    ("value", "days"), [(None, None), ("", None), ("  ", None), ("30", 30), (" 7 ", 7)]
)
def test_the_setting_is_off_by_default_and_a_whole_number_of_days(
    value: str | None, days: int | None
) -> None:
    assert retention_days(value) == days


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "30d", "thirty", "1e3", "+5", "٣"])
def test_a_bad_setting_is_a_clear_error(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        retention_days(value)
    message = str(caught.value)
    assert message.startswith(f"{ENV_RETENTION}={value!r}: give a whole number of days")
    assert f"{ENV_RETENTION}=30" in message
    assert "unset it" in message


def test_the_daemon_refuses_a_bad_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, instance: Instance
) -> None:
    monkeypatch.setenv(ENV_RETENTION, "a week")
    with pytest.raises(ConfigError, match=ENV_RETENTION):
        Daemon(Workspace(jobs={"kept": kept}, origin={}), instance, launch=lambda *_: None)
    workspace = tmp_path / "ws.py"
    workspace.write_text("from conveyor import job\n\n@job\ndef one():\n    pass\n")
    env = {**os.environ, "CONVEYOR_HOME": str(tmp_path / "home"), ENV_RETENTION: "a week"}
    out = subprocess.run(
        [sys.executable, "-m", "conveyor.cli", "daemon", str(workspace)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 2
    assert f"error: {ENV_RETENTION}='a week': give a whole number of days" in out.stderr


def test_old_ended_runs_go_and_the_others_stay(durable: Instance) -> None:
    old = kept.run(instance=durable)
    queued = durable.run_store.create(job_name="kept", job_version="x", status=RunStatus.QUEUED)
    young = kept.run(instance=durable)
    step = Retention(durable, days=2, every=10 * DAY)
    created = durable.run(young.run_id).created_at.timestamp()

    step(created + 1 * DAY)  # nothing is two days old yet
    assert len(durable.runs("kept")) == 3
    step(created + 3 * DAY)  # the next look is due 10 days after the last: nothing happens
    assert len(durable.runs("kept")) == 3
    step(created + 11 * DAY)
    assert [r.id for r in durable.runs("kept")] == [queued.id]
    assert old.run_id != young.run_id


def test_a_pass_deletes_a_batch_and_the_next_goes_on(
    instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "PASS_LIMIT", 2)
    for _ in range(5):
        kept.run(instance=instance)
    step = Retention(instance, days=1)
    later = instance.runs("kept")[0].created_at.timestamp() + 2 * DAY
    left = []
    for _ in range(3):
        step(later)
        left.append(len(instance.runs("kept")))
    assert left == [3, 1, 0]


def test_the_daemon_applies_retention_when_set(
    instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = kept.run(instance=instance)
    ws = Workspace(jobs={"kept": kept}, origin={})
    later = instance.run(run.run_id).created_at.timestamp() + 10 * DAY
    off = Daemon(ws, instance, clock=lambda: later, launch=lambda *_: None)
    off.tick()
    assert len(instance.runs("kept")) == 1  # off by default
    monkeypatch.setenv(ENV_RETENTION, "7")
    daemon = Daemon(ws, instance, clock=lambda: later, launch=lambda *_: None)
    assert "retention" in [name for name, _ in daemon.steps]
    daemon.tick()
    assert instance.runs("kept") == []
