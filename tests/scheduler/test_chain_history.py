"""Chains fire for what happens after a daemon first saw them, in their own workspace, for
whole runs (issue 10, finding 4): a daemon started on a home full of old runs replays none."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from conveyor import Instance, RunStatus, job, task, workflow
from conveyor.scheduler.chains import CHAIN_CURSOR
from conveyor.scheduler.daemon import Daemon
from conveyor.workspace import Workspace


@task
def first() -> int:
    return 1


@task
def second(x: int) -> int:
    return x + 1


@workflow
def two_steps() -> None:
    second(first())


@job(trigger=two_steps.success, execute={"concurrency": None})
def whole_only() -> None: ...


@job(trigger=f"{two_steps.success}?partial", execute={"concurrency": None})
def partial_too() -> None: ...


@job(trigger=two_steps.fail, execute={"concurrency": None})
def after_failure() -> None: ...


@job(execute={"concurrency": None, "retries": 1})
def flaky() -> None: ...


HERE = str(Path(__file__).resolve())
WS = Workspace(
    jobs={j.name: j for j in (two_steps, whole_only, partial_too, after_failure, flaky)},
    origin={"file": HERE},
)


@job(execute={"concurrency": None})
def elsewhere_source() -> None: ...


@job(trigger=elsewhere_source.success, execute={"concurrency": None})
def elsewhere_after() -> None: ...


# Another workspace of the same home, whose daemon ran before.
OTHER = Workspace(
    jobs={j.name: j for j in (elsewhere_source, elsewhere_after)},
    origin={"file": "/srv/other/pipelines.py"},
)


def _end(
    instance: Instance,
    job_name: str,
    status: RunStatus = RunStatus.SUCCESS,
    *,
    origin: dict[str, Any] | None = None,
    selection: list[str] | None = None,
) -> str:
    """A run of ``job_name`` that ended ``status``, as the command line records it."""
    run = instance.run_store.create(
        job_name=job_name,
        job_version="v",
        then=RunStatus.RUNNING,
        origin=origin if origin is not None else {"file": HERE, "job": job_name},
        selection=selection,
    )
    instance.run_store.set_status(run.id, status)
    return run.id


def _daemon(instance: Instance, ws: Workspace = WS) -> Daemon:
    return Daemon(ws, instance, launch=lambda *_: None)


def _chained(instance: Instance, job_name: str) -> list[str]:
    return sorted(r.tags["upstream_run"] for r in instance.runs(job_name, limit=1000))


def _retried(instance: Instance) -> list[str]:
    return sorted(
        r.parent_run_id or "" for r in instance.runs("flaky", limit=1000) if r.parent_run_id
    )


@pytest.mark.parametrize("history", ["a moment ago", "after another workspace's daemon"])
def test_the_first_daemon_on_a_home_with_old_runs_fires_nothing_for_them(
    durable: Instance, history: str
) -> None:
    if history == "after another workspace's daemon":
        _daemon(durable, OTHER).fire_chained(time.time())  # it stored how far it read
    old = [_end(durable, "two_steps") for _ in range(5)]
    old.append(_end(durable, "two_steps", RunStatus.FAILURE))
    old_flaky = _end(durable, "flaky", RunStatus.FAILURE)
    daemon = _daemon(durable)
    for _ in range(3):
        daemon.fire_chained(time.time())
    for name in ("whole_only", "partial_too", "after_failure"):
        assert _chained(durable, name) == [], name
    assert _retried(durable) == []
    # what ends from now on fires, once
    new = _end(durable, "two_steps")
    failed = _end(durable, "flaky", RunStatus.FAILURE)
    daemon.fire_chained(time.time())
    daemon.fire_chained(time.time())
    assert _chained(durable, "whole_only") == [new]
    assert _chained(durable, "partial_too") == [new]
    assert _retried(durable) == [failed]
    assert not set(old) & set(_chained(durable, "after_failure"))
    assert old_flaky not in _retried(durable)


def test_where_a_chain_starts_is_stored_and_shared_by_every_daemon(durable: Instance) -> None:
    _daemon(durable).fire_chained(time.time())  # a first daemon saw the chains, and stopped
    while_down = _end(durable, "two_steps")
    # A daemon of another workspace reads the same run ends meanwhile.
    _daemon(durable, OTHER).fire_chained(time.time())
    # Two daemons of the workspace start again (say, on two hosts): the run that ended
    # while none ran fires its chain, once.
    first, second = _daemon(durable), _daemon(durable)
    first.fire_chained(time.time())
    second.fire_chained(time.time())
    assert _chained(durable, "whole_only") == [while_down]
    # Each workspace keeps its own position, not the instance-wide one of before.
    assert durable.sensor_store.get(CHAIN_CURSOR)[0] is None
    assert first._chains.after == second._chains.after


def test_runs_of_a_namesake_job_from_another_workspace_fire_no_chain(durable: Instance) -> None:
    daemon = _daemon(durable)
    daemon.fire_chained(time.time())
    namesake = _end(durable, "two_steps", origin={"file": "/srv/other/pipelines.py"})
    unknown = _end(durable, "two_steps", origin={})
    module = _end(durable, "two_steps", origin={"module": "other.pipelines", "job": "two_steps"})
    ours = _end(durable, "two_steps")
    from_python = two_steps.run(instance=durable).run_id  # records this file as its origin
    daemon.fire_chained(time.time())
    assert _chained(durable, "whole_only") == sorted([ours, from_python])
    assert not {namesake, unknown, module} & set(_chained(durable, "partial_too"))


def test_a_partial_run_fires_only_the_chains_that_ask_for_partial_runs(
    durable: Instance,
) -> None:
    daemon = _daemon(durable)
    daemon.fire_chained(time.time())
    partial = _end(durable, "two_steps", selection=["first"])
    partial_failure = _end(durable, "two_steps", RunStatus.FAILURE, selection=["second"])
    everything = _end(durable, "two_steps", selection=["*second"])  # selects every task
    whole = _end(durable, "two_steps")
    daemon.fire_chained(time.time())
    assert _chained(durable, "whole_only") == sorted([everything, whole])
    assert _chained(durable, "partial_too") == sorted([partial, everything, whole])
    assert partial_failure not in _chained(durable, "after_failure")
    [chained] = [r for r in durable.runs("partial_too") if r.tags["upstream_run"] == partial]
    assert chained.trigger == "job.success:two_steps?partial"
