from __future__ import annotations

from enum import StrEnum
from typing import Any

import pytest

from conveyor.errors import InvalidTransitionError
from conveyor.storage.states import (
    RUN_TRANSITIONS,
    TASK_TRANSITIONS,
    RunStatus,
    TaskStatus,
    check_run,
    check_task,
    run_sources,
)


def test_terminal_states_have_no_way_out() -> None:
    for run_from, _ in RUN_TRANSITIONS:
        assert run_from is None or not run_from.is_terminal
    for task_from, _ in TASK_TRANSITIONS:
        assert task_from is None or not task_from.is_terminal


def test_every_state_is_reachable_from_nothing() -> None:
    tables: list[tuple[type[StrEnum], frozenset[tuple[Any, Any]]]] = [
        (RunStatus, RUN_TRANSITIONS),
        (TaskStatus, TASK_TRANSITIONS),
    ]
    for states, table in tables:
        reached: set[Any] = {None}
        changed = True
        while changed:
            new = {to for frm, to in table if frm in reached} - reached
            reached |= new
            changed = bool(new)
        assert reached - {None} == set(states)


@pytest.mark.parametrize(
    ("frm", "to"),
    [
        (RunStatus.SUCCESS, RunStatus.RUNNING),
        (None, RunStatus.RUNNING),
        (RunStatus.QUEUED, RunStatus.SUCCESS),
        (RunStatus.CANCELED, RunStatus.QUEUED),
    ],
)
def test_forbidden_run_transitions(frm: RunStatus | None, to: RunStatus) -> None:
    with pytest.raises(InvalidTransitionError, match=f"to {to}"):
        check_run(frm, to, "r1")


@pytest.mark.parametrize(
    ("frm", "to"),
    [
        (TaskStatus.SUCCESS, TaskStatus.RUNNING),
        (TaskStatus.PENDING, TaskStatus.SUCCESS),
        (TaskStatus.UP_FOR_RETRY, TaskStatus.RUNNING),
        (TaskStatus.SKIPPED, TaskStatus.PENDING),
    ],
)
def test_forbidden_task_transitions(frm: TaskStatus, to: TaskStatus) -> None:
    with pytest.raises(InvalidTransitionError):
        check_task(frm, to, "t")


def test_run_sources() -> None:
    assert set(run_sources(RunStatus.SUCCESS)) == {RunStatus.RUNNING}
    assert set(run_sources(RunStatus.CANCELED)) == {
        RunStatus.QUEUED,
        RunStatus.STARTING,
        RunStatus.CANCELING,
    }
