"""The refresh cascade through the freshness graph: always, auto and block."""

from __future__ import annotations

from pathlib import Path

from conveyor import Instance, RunContext, RunStatus, job
from conveyor.execution.launch import execute_run
from conveyor.execution.state import REFRESH_TAG
from conveyor.scheduler.daemon import Daemon
from conveyor.workspace import Workspace


@job(refresh="always")
def a() -> None: ...


@job(freshness=[a.is_fresh])  # refresh="auto"
def b(context: RunContext) -> bool:
    return context.refresh


@job(freshness=[b.is_fresh], refresh="block")
def c() -> None: ...


@job(freshness=[c.is_fresh])
def d() -> None: ...


JOBS = {j.name: j for j in (a, b, c, d)}


def _start(daemon: Daemon, instance: Instance, name: str, refresh: bool = False) -> str:
    """Queue a run, let one daemon pass start it, and record it as succeeded."""
    tags = {REFRESH_TAG: "true"} if refresh else {}
    run = instance.run_store.create(
        job_name=name, job_version="v", status=RunStatus.QUEUED, tags=tags
    )
    daemon.launch_queued()
    assert instance.run(run.id).status is RunStatus.STARTING
    instance.run_store.set_status(run.id, RunStatus.RUNNING)
    instance.run_store.set_status(run.id, RunStatus.SUCCESS)
    instance.lease_store.release(run.id)  # as the run's worker does when it ends
    return run.id


def _refreshes(instance: Instance, run_id: str) -> bool:
    return instance.run(run_id).tags.get(REFRESH_TAG) == "true"


def test_the_cascade_honours_always_auto_and_block(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    launched: list[str] = []
    daemon = Daemon(
        Workspace(jobs=JOBS, origin={"module": __name__}),
        instance,
        launch=lambda run_id, _: launched.append(run_id),
    )
    signals = instance.signal_store

    # a refreshes nothing itself, but "always" sends a refresh to b when it starts
    run_a = _start(daemon, instance, "a")
    assert not _refreshes(instance, run_a)
    assert signals.pending("refresh") == ["b"]

    # b receives it; "auto" passes it on to c
    run_b = _start(daemon, instance, "b")
    assert _refreshes(instance, run_b)
    assert signals.pending("refresh") == ["c"]

    # c receives it; "block" stops it there
    run_c = _start(daemon, instance, "c")
    assert _refreshes(instance, run_c)
    assert signals.pending("refresh") == []
    assert not _refreshes(instance, _start(daemon, instance, "d"))

    # without a refresh to pass on, "auto" passes nothing
    assert not _refreshes(instance, _start(daemon, instance, "b"))
    assert signals.pending("refresh") == []

    # a refresh asked for when triggering (conveyor trigger --refresh) cascades too
    assert _refreshes(instance, _start(daemon, instance, "b", refresh=True))
    assert signals.pending("refresh") == ["c"]
    assert len(launched) == 6
    instance.close()


def test_the_job_sees_context_refresh(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    for refresh in (True, False):
        run = instance.run_store.create(
            job_name="b",
            job_version="v",
            status=RunStatus.STARTING,
            tags={REFRESH_TAG: "true"} if refresh else {},
        )
        assert execute_run(run.id, b, instance=instance).output("b") is refresh
    instance.close()
