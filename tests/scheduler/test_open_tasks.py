"""The judge of dead runs closes task runs left open in a run that ended."""

from __future__ import annotations

from conveyor.scheduler.monitor import RunJudge
from conveyor.storage.instance import Instance
from conveyor.storage.states import RunStatus, TaskStatus


def _ended_with_open_tasks(instance: Instance, to: RunStatus) -> str:
    """A run that ended ``to`` while its tasks ``running`` and ``waiting`` stayed open."""
    store = instance.run_store
    run = store.create(job_name="j", job_version="v", then=RunStatus.RUNNING)
    recorder = instance.recorder(run.id, run.token)
    recorder.task("running", 1, TaskStatus.RUNNING)
    recorder.task("waiting", 1, TaskStatus.PENDING)
    recorder.task("done", 1, TaskStatus.RUNNING)
    recorder.task("done", 1, TaskStatus.SUCCESS)
    recorder.close()
    if to is RunStatus.CANCELED:
        store.set_status(run.id, RunStatus.CANCELING)
    store.set_status(run.id, to, error="ended")
    return run.id


def _statuses(instance: Instance, run_id: str) -> dict[str, TaskStatus]:
    return {t.key: t.status for t in instance.run_details(run_id).tasks}


def test_open_tasks_of_ended_runs_are_closed(durable: Instance) -> None:
    before = _ended_with_open_tasks(durable, RunStatus.CANCELED)
    judge = RunJudge(durable, lease=3600)
    # The first pass looks at every ended run, later ones at the runs that end meanwhile.
    assert [(v.run_id, v.action) for v in judge.judge()] == [(before, "had its open tasks closed")]
    assert _statuses(durable, before) == {
        "running": TaskStatus.CANCELED,
        "waiting": TaskStatus.CANCELED,
        "done": TaskStatus.SUCCESS,
    }
    assert judge.judge() == []
    later = _ended_with_open_tasks(durable, RunStatus.FAILURE)
    assert [v.run_id for v in judge.judge()] == [later]
    assert _statuses(durable, later) == {
        "running": TaskStatus.FAILURE,
        "waiting": TaskStatus.CANCELED,
        "done": TaskStatus.SUCCESS,
    }
    [task] = [t for t in durable.run_details(later).tasks if t.key == "running"]
    assert "ended failure with them still open" in (task.attempts[-1].error_message or "")
    assert judge.judge() == []
