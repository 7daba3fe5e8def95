"""Webhooks: each call runs each job with the matching webhook: trigger, once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conveyor import ConfigError, Instance, job
from conveyor.scheduler.daemon import Daemon
from conveyor.workspace import Workspace


@job(trigger="webhook:/prices/loaded", execute={"concurrency": None})
def reprice() -> None: ...


@job(trigger=["webhook:/prices/loaded", "every:1h"], execute={"concurrency": None})
def report() -> None: ...


@job(trigger="webhook:/other", execute={"concurrency": None})
def other() -> None: ...


def test_each_call_runs_each_hooked_job_once(durable: Instance) -> None:
    jobs = {j.name: j for j in (reprice, report, other)}
    clock = {"now": 1_000_000.0}
    daemon = Daemon(
        Workspace(jobs=jobs, origin={"module": __name__}),
        durable,
        clock=lambda: clock["now"],
        launch=lambda *_: None,
    )
    first = durable.webhook("/prices/loaded", {"date": "2026-11-20"})
    durable.webhook("/prices/loaded")
    for _ in range(3):  # passes after the calls: still one run per call per job
        daemon.fire_webhooks(clock["now"])
    assert len(durable.runs("reprice")) == 2
    assert len(durable.runs("report")) == 2
    assert durable.runs("other") == []
    with_payload = [r for r in durable.runs("reprice") if r.tags["webhook_call"] == str(first)]
    assert json.loads(with_payload[0].tags["webhook_payload"]) == {"date": "2026-11-20"}
    assert with_payload[0].trigger == "webhook:/prices/loaded"
    with pytest.raises(ConfigError, match="give the path"):
        durable.webhook(" ")


def test_calls_from_before_the_daemon_started_are_not_replayed(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    instance.webhook("/prices/loaded")
    daemon = Daemon(
        Workspace(jobs={"reprice": reprice}, origin={"module": __name__}),
        instance,
        clock=lambda: 4_000_000_000.0,
        launch=lambda *_: None,
    )
    daemon.fire_webhooks(4_000_000_000.0)
    assert instance.runs("reprice") == []
    instance.close()


def test_calls_made_while_no_daemon_ran_fire_after_a_restart(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    ws = Workspace(jobs={"reprice": reprice}, origin={"module": __name__})
    first = Daemon(ws, instance, launch=lambda *_: None)
    instance.webhook("/prices/loaded")
    first.fire_webhooks(first.clock())
    assert len(instance.runs("reprice")) == 1
    # the daemon stops; a call comes in; a new daemon starts much later
    instance.webhook("/prices/loaded")
    later = Daemon(ws, instance, clock=lambda: 4_000_000_000.0, launch=lambda *_: None)
    later.fire_webhooks(4_000_000_000.0)
    assert len(instance.runs("reprice")) == 2
    instance.close()
