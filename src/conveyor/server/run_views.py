"""Read models of runs shared by the API and the UI: what a page or a response shows of a run.

Each model is a pydantic class (the API's schema documents it), built by one
function from the instance, so that the JSON of ``/api/runs/...`` and the HTML
of a run's page never disagree. ``job_views`` holds the same for jobs.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from conveyor.errors import ConfigError, NotFoundError
from conveyor.scheduler.freshness import waiting_reason
from conveyor.storage.instance import Instance
from conveyor.storage.records import EventRecord, RunRecord, TaskDetails, TaskRunRecord


class RunSummary(BaseModel):
    """One run as a list shows it."""

    id: str
    job_name: str
    status: str
    trigger: str
    launched_by: str | None = Field(
        None,
        description="who or what started the run: a user, a token (`alice (token ID)`), "
        "`local:<OS user>`, or a trigger kind (`schedule`, `chain`, `sensor`, `webhook`, "
        "`backfill`, `retry`); empty for runs recorded before access control",
    )
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    duration: float | None = Field(description="seconds from start to end (or to now)")
    tags: dict[str, str]
    partition: str | None
    interval_start: datetime | None
    interval_end: datetime | None
    parent_run_id: str | None
    root_run_id: str | None
    error: str | None
    deployed_version: int | None = Field(
        None, description="the deployed version whose code ran; empty: the files on disk"
    )
    environment: str | None = Field(
        None, description="the environment it ran in (`dev`, `prod`...); empty: `local`"
    )


class TaskAttempt(BaseModel):
    """One attempt of a task in a run."""

    attempt: int
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    duration: float | None
    error_type: str | None
    error_message: str | None
    error_traceback: str | None
    retry_wait: float | None = Field(description="seconds waited before the next attempt")


class TaskRun(BaseModel):
    """A task in a run, with all of its attempts; ``status`` is the latest attempt's."""

    key: str
    task_name: str
    status: str
    depends_on: list[str]
    started_at: datetime | None
    ended_at: datetime | None
    duration: float | None
    attempts: list[TaskAttempt]
    cpu: float | None = None
    memory: int | None = None


class Event(BaseModel):
    """Something that happened in a run: a failure, a retry, a hook error..."""

    id: int
    task_key: str | None
    attempt: int | None
    at: datetime
    kind: str
    message: str
    data: dict[str, Any] | None


class RunDetail(RunSummary):
    """One run with what its page shows: config, tasks, errors, and related runs."""

    job_version: str
    run_config: dict[str, Any]
    selection: list[str] | None
    tasks: list[TaskRun]
    parent: RunSummary | None
    children: list[RunSummary] = Field(description="reruns and retries of this run")
    waiting_for: str | None = Field(
        None,
        description="what a queued run waits for: the upstream job and interval of a shut "
        "freshness gate; empty when it waits only for a daemon or a free slot",
    )


def run_summary(run: RunRecord) -> RunSummary:
    return RunSummary(
        id=run.id,
        job_name=run.job_name,
        status=str(run.status),
        trigger=run.trigger,
        launched_by=run.launched_by,
        created_at=run.created_at,
        started_at=run.started_at,
        ended_at=run.ended_at,
        duration=run.duration,
        tags=run.tags,
        partition=run.partition_key,
        deployed_version=run.deployed_version,
        environment=run.environment,
        interval_start=run.interval_start,
        interval_end=run.interval_end,
        parent_run_id=run.parent_run_id,
        root_run_id=run.root_run_id,
        error=run.error,
    )


def task_attempt(a: TaskRunRecord) -> TaskAttempt:
    return TaskAttempt(
        attempt=a.attempt,
        status=str(a.status),
        started_at=a.started_at,
        ended_at=a.ended_at,
        duration=a.duration,
        error_type=a.error_type,
        error_message=a.error_message,
        error_traceback=a.error_traceback,
        retry_wait=a.retry_wait,
    )


def task_run(t: TaskDetails) -> TaskRun:
    return TaskRun(
        key=t.key,
        task_name=t.task_name,
        status=str(t.status),
        depends_on=t.depends_on,
        started_at=t.started_at,
        ended_at=t.ended_at,
        duration=t.duration,
        attempts=[task_attempt(a) for a in t.attempts],
        cpu=None if t.resources is None else t.resources.cpu,
        memory=None if t.resources is None else t.resources.memory,
    )


def event(e: EventRecord) -> Event:
    return Event(
        id=e.id,
        task_key=e.task_key,
        attempt=e.attempt,
        at=e.at,
        kind=e.kind,
        message=e.message,
        data=e.data,
    )


def task_runs(instance: Instance, run_id: str) -> list[TaskRun]:
    """The tasks of run ``run_id`` with their attempts (``NotFoundError`` if no such run)."""
    return [task_run(t) for t in instance.run_details(run_id).tasks]


def run_events(instance: Instance, run_id: str, kinds: list[str] | None = None) -> list[Event]:
    """The events of run ``run_id``, oldest first (of ``kinds`` only, if given)."""
    instance.run(run_id)
    return [event(e) for e in instance.event_store.for_run(run_id, kinds=kinds)]


def child_runs(instance: Instance, run: RunRecord, limit: int = 100) -> list[RunRecord]:
    """The runs whose parent is ``run`` (its reruns and retries), oldest first."""
    return instance.run_store.children(run, limit)


def _natural(key: str) -> tuple[tuple[int, str | int], ...]:
    """``key`` sorted as a person reads it: ``score[2]`` before ``score[10]``."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", key) if p)


def ordered_tasks(tasks: list[TaskRun], graph_order: Sequence[str] = ()) -> list[TaskRun]:
    """``tasks`` in the order of the job's plan: each after the tasks it depends on; among
    those free to go, the job graph's order (``graph_order``, its node keys), then the
    tasks the graph does not hold (made as the job ran: after the body that made them),
    by key with numbers read as numbers. The order does not change as the run goes on."""
    rank = {key: i for i, key in enumerate(graph_order)}
    by_key = {t.key: t for t in tasks}

    def priority(t: TaskRun) -> tuple[int, tuple[tuple[int, str | int], ...]]:
        return (rank.get(t.key, len(rank)), _natural(t.key))

    waiting = {t.key: {d for d in t.depends_on if d in by_key and d != t.key} for t in tasks}
    ready = [(priority(t), t.key) for t in tasks if not waiting[t.key]]
    heapq.heapify(ready)
    out: list[TaskRun] = []
    placed: set[str] = set()
    while ready:
        _, key = heapq.heappop(ready)
        out.append(by_key[key])
        placed.add(key)
        for other, deps in waiting.items():
            if key in deps:
                deps.discard(key)
                if not deps and other not in placed:
                    heapq.heappush(ready, (priority(by_key[other]), other))
    # A cycle cannot be recorded; were one there, its tasks go last rather than vanish.
    out += sorted((t for t in tasks if t.key not in placed), key=priority)
    return out


def run_detail(instance: Instance, run_id: str) -> RunDetail:
    """Run ``run_id`` with its tasks, attempts, config and related runs."""
    details = instance.run_details(run_id)
    run = details.run
    parent = None
    if run.parent_run_id is not None:
        parent = run_summary(instance.run(run.parent_run_id))
    return RunDetail(
        **run_summary(run).model_dump(),
        job_version=run.job_version,
        run_config=run.run_config,
        selection=run.selection,
        tasks=ordered_tasks([task_run(t) for t in details.tasks]),
        parent=parent,
        children=[run_summary(r) for r in child_runs(instance, run)],
        waiting_for=waiting_reason(details.events) if run.status == "queued" else None,
    )


def resolve_run(instance: Instance, run_id: str) -> str:
    """The full id of run ``run_id`` (its first characters will do); ``NotFoundError``
    when no run has it, or it is not a run id at all."""
    text = run_id.strip().lower()
    if not text or len(text) > 32 or any(c not in "0123456789abcdef" for c in text):
        raise NotFoundError(
            f"no run {run_id!r}: a run id is 32 hex characters (its first 4 or more will do); "
            f"list runs with GET /api/runs"
        )
    try:
        return instance.run_store.resolve_id(text)
    except ConfigError as e:  # too short, or more than one run starts so
        raise NotFoundError(f"no one run {run_id!r}: {e}") from None


# -- jobs --------------------------------------------------------------------------------------
