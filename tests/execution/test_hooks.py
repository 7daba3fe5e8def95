"""Hooks on tasks and jobs: called with the context (and the error); their errors are kept."""

from __future__ import annotations

from typing import Any

from conveyor import Instance, RunStatus, TaskStatus, task, workflow


def test_task_and_job_hooks(instance: Instance) -> None:
    calls: list[Any] = []

    def on_ok(context: Any) -> None:
        calls.append(("task ok", context.task_key, context.attempt))

    def on_bad(context: Any, error: BaseException) -> None:
        calls.append(("task bad", context.task_key, type(error).__name__))

    def job_bad(context: Any, error: BaseException) -> None:
        calls.append(("job bad", context.job_name, str(error)))

    @task(on_success=on_ok)
    def good() -> int:
        return 1

    @task(on_failure=[on_bad])
    def bad(x: int) -> None:
        raise LookupError("missing")

    @workflow(on_failure=job_bad, on_success=lambda ctx: calls.append("never"))
    def wf() -> None:
        bad(good())

    wf.run(instance=instance, raise_on_error=False)
    assert calls == [
        ("task ok", "good", 1),
        ("task bad", "bad", "LookupError"),
        ("job bad", "wf", "missing"),
    ]


def test_a_raising_hook_is_recorded_and_changes_nothing(instance: Instance) -> None:
    def broken_hook(context: Any) -> None:
        raise RuntimeError("hook exploded")

    @task(on_success=broken_hook)
    def fine() -> int:
        return 3

    @workflow(on_success=broken_hook)
    def wf() -> None:
        fine()

    result = wf.run(instance=instance)
    assert result.status is RunStatus.SUCCESS
    assert result.task_status("fine") is TaskStatus.SUCCESS
    hook_events = [e for e in result.details().events if e.kind == "hook_error"]
    assert len(hook_events) == 2
    assert "hook 'broken_hook' of task 'fine' raised RuntimeError: hook exploded" in (
        hook_events[0].message
    )
    assert hook_events[0].data is not None
    assert "Traceback" in hook_events[0].data["traceback"]
