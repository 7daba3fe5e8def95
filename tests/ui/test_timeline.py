"""The run page's read models without a browser: the order of a run's tasks, and the
timeline's bars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from conveyor.server.run_views import RunDetail, TaskAttempt, TaskRun, ordered_tasks
from conveyor.server.ui.gantt import MIN_WIDTH, timeline

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _attempt(n: int, status: str, start: float | None, end: float | None) -> TaskAttempt:
    return TaskAttempt(
        attempt=n,
        status=status,
        started_at=None if start is None else _at(start),
        ended_at=None if end is None else _at(end),
        duration=None if start is None or end is None else end - start,
        error_type="RuntimeError" if status in ("failure", "up_for_retry") else None,
        error_message="busy" if status in ("failure", "up_for_retry") else None,
        error_traceback=None,
        retry_wait=None,
    )


def _task(key: str, deps: list[str], *attempts: TaskAttempt) -> TaskRun:
    starts = [a.started_at for a in attempts if a.started_at is not None]
    return TaskRun(
        key=key,
        task_name=key.split("[")[0],
        status=attempts[-1].status,
        depends_on=deps,
        started_at=min(starts) if starts else None,
        ended_at=attempts[-1].ended_at,
        duration=None,
        attempts=list(attempts),
    )


def _run(tasks: list[TaskRun], **kw: Any) -> RunDetail:
    return RunDetail(
        id="a" * 32,
        job_name="job",
        status="success",
        trigger="manual",
        created_at=_at(-20),
        started_at=_at(-10),
        ended_at=_at(10),
        duration=20.0,
        tags={},
        partition=None,
        interval_start=None,
        interval_end=None,
        parent_run_id=None,
        root_run_id=None,
        error=None,
        job_version="1",
        run_config={},
        selection=None,
        tasks=tasks,
        parent=None,
        children=[],
        **kw,
    )


def test_tasks_are_in_the_plans_order_not_by_start_or_name() -> None:
    # As a rerun stores them: the rerun task first (it started), the reused and the
    # pending ones after it, alphabetically.
    tasks = [
        _task("transform", ["load"], _attempt(1, "success", 1, 2)),
        _task("b_publish", ["transform"], _attempt(1, "pending", None, None)),
        _task("load", [], _attempt(1, "reused", None, 0)),
        _task("a_report", ["transform"], _attempt(1, "pending", None, None)),
    ]
    order = ["load", "transform", "a_report", "b_publish"]
    assert [t.key for t in ordered_tasks(tasks, order)] == order
    # Without the graph: still each after its upstream, the free ones by name.
    keys = [t.key for t in ordered_tasks(tasks)]
    assert keys.index("load") < keys.index("transform") < keys.index("b_publish")


def test_dynamic_tasks_follow_their_body_in_number_order() -> None:
    tasks = [
        _task("score[10]", [], _attempt(1, "pending", None, None)),
        _task("score[2]", [], _attempt(1, "success", 1, 2)),
        _task("fan", [], _attempt(1, "running", 0, None)),
        _task("score[1]", [], _attempt(1, "pending", None, None)),
    ]
    keys = [t.key for t in ordered_tasks(tasks, ["fan"])]
    assert keys == ["fan", "score[1]", "score[2]", "score[10]"]


def test_a_retried_failure_is_a_visible_red_bar_and_the_axis_starts_at_the_first_task() -> None:
    run = _run(
        [
            _task(
                "clean",
                [],
                _attempt(1, "up_for_retry", 0, 0.01),
                _attempt(2, "success", 1.0, 10),
            )
        ]
    )
    line = timeline(run)
    bars = line.rows[0].bars
    assert [b.status for b in bars] == ["failure", "success"]
    assert bars[0].width >= MIN_WIDTH
    assert "failed, retried" in bars[0].title
    # The axis starts where the first task did (not 10 s earlier, at the run's start).
    assert bars[0].left == 0.0
    assert abs(bars[1].left - 10.0) < 0.01
    assert line.ticks[-1][1].startswith("+10")
    (wait,) = line.rows[0].waits
    assert "before attempt 2" in wait.title
    assert wait.width > 0
