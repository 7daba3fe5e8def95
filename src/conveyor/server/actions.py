"""What the API and the UI do to runs: launch, cancel, rerun, backfill.

Each action checks everything it can before it records anything (bad config
raises ``ConfigError`` naming the field's path, so the answer is a 422), then
*queues* what it makes: the scheduler daemon starts queued runs within their
jobs' concurrency and pools, as it does for every other trigger. Actions take
the ``ServerState`` so they see the workspace as last loaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conveyor.definitions.job import Job
from conveyor.errors import ConfigError, ExecutionError
from conveyor.execution.rerun import RERUN_TAG, RETRY_TAG
from conveyor.server.state import ServerState
from conveyor.storage.records import RunRecord
from conveyor.storage.states import RunStatus

# The ``trigger`` of the runs these actions make.
MANUAL = "manual"
RERUN = "rerun"


def _origin(state: ServerState, job: Job) -> dict[str, Any]:
    ws = state.workspace.workspace
    where = dict(ws.origin) if ws is not None else {}
    return {**where, "job": job.name}


def check_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    """``tags`` as a dict of strings; ``ConfigError`` naming ``tags.<key>`` otherwise."""
    out: dict[str, str] = {}
    for key, value in (tags or {}).items():
        if not isinstance(key, str) or not key.strip():
            raise ConfigError(f"tags: the key {key!r} must be a non-empty string")
        if not isinstance(value, str):
            raise ConfigError(f"tags.{key}: the value {value!r} must be a string")
        if key.startswith("conveyor/"):
            raise ConfigError(
                f"tags.{key}: tags starting with 'conveyor/' are Conveyor's own; choose another key"
            )
        out[key] = value
    return out


def validate(
    job: Job,
    run_config: Mapping[str, Any] | None,
    *,
    selection: Sequence[str] | None = None,
    partition: str | None = None,
    interval: tuple[Any, Any] | None = None,
) -> dict[str, Any]:
    """Check a launch of ``job`` without recording it; returns the config as it would
    be recorded. Raises ``ConfigError`` whose message starts with the field's path
    (``tasks.extract.config.limit: ...``), ``SelectionError`` for a bad selection.

    The launchpad calls this as the user types.
    """
    from conveyor.execution.launch import as_interval, check_partition, prepare

    key = check_partition(job, partition)
    _, cfg = prepare(job, run_config, selection, None, key)
    as_interval(interval)
    return cfg.raw


def launch(
    state: ServerState,
    job_name: str,
    run_config: Mapping[str, Any] | None = None,
    *,
    tags: Mapping[str, Any] | None = None,
    partition: str | None = None,
    interval: tuple[Any, Any] | None = None,
    selection: Sequence[str] | None = None,
    launched_by: str | None = None,
) -> RunRecord:
    """Queue a run of job ``job_name``, validated first; returns the queued run, which
    records ``launched_by`` (the caller's ``Principal.label``).

    Raises:
        NotFoundError: no such job in the workspace.
        ConfigError: bad config, tags, partition or interval; nothing is recorded.
        ExecutionError: the job's expose says manual=False (409).
    """
    from conveyor.execution.launch import as_interval, check_partition, prepare

    job = state.workspace.job(job_name)
    job.check_manual("a launch from the API or the UI")
    run_tags = {**job.run_tags, **check_tags(tags)}
    key = check_partition(job, partition)
    plan, cfg = prepare(job, run_config, selection, None, key)
    span = as_interval(interval)
    return state.instance.run_store.create(
        status=RunStatus.QUEUED,
        job_name=job.name,
        job_version=job.version,
        tags=run_tags,
        run_config=cfg.raw,
        selection=plan.selection if plan is not None else None,
        trigger=MANUAL,
        origin=_origin(state, job),
        interval=None if span is None else (span.start.timestamp(), span.end.timestamp()),
        partition=key,
        launched_by=launched_by,
    )


def cancel(state: ServerState, run_id: str) -> RunStatus:
    """Ask run ``run_id`` to stop; returns its status now (``canceled`` for a run that had
    not started, ``canceling`` while its process stops it, or the status it had ended in).

    ``NotFoundError`` if there is no such run.
    """
    return state.instance.cancel_run(state.instance.run_store.resolve_id(run_id))


def rerun(
    state: ServerState,
    run_id: str,
    *,
    full: bool = False,
    run_config: Mapping[str, Any] | None = None,
    launched_by: str | None = None,
) -> RunRecord:
    """Queue run ``run_id`` again: from failure (its succeeded tasks reused, unless
    ``run_config`` changes their config) or in ``full``; returns the queued run.

    The new run has the run as its parent, the same selection, partition and
    interval, and the tag ``conveyor/rerun`` (``failure`` or ``full``); it records
    ``launched_by``.

    Raises:
        NotFoundError: no such run, or its job is not in the workspace any more.
        ExecutionError: the run has not ended, or it succeeded and neither ``full``
            nor new config gives anything to run again (409).
        ConfigError: ``run_config`` does not fit the job (422, naming the field).
    """
    from conveyor.execution.launch import prepare
    from conveyor.execution.rerun import plan_rerun

    instance = state.instance
    parent = instance.run(instance.run_store.resolve_id(run_id))
    job = state.workspace.job(parent.job_name)
    if not parent.status.is_terminal:
        raise ExecutionError(
            f"run {parent.id} is still {parent.status}; rerun it once it has ended, or cancel "
            f"it first (POST /api/runs/{parent.id[:8]}/cancel)"
        )
    config = parent.run_config if run_config is None else run_config
    _, cfg = prepare(job, config, parent.selection, None)
    try:
        plan_rerun(job, parent.id, full=full, run_config=cfg.raw, instance=instance)
    except ExecutionError:
        if parent.status is not RunStatus.SUCCESS:
            raise
        # plan_rerun says it in Python's and the command line's words
        raise ExecutionError(
            f"run {parent.id} of job {job.name!r} succeeded, so there is nothing to rerun "
            f'from failure: send {{"full": true}} to run every task again, or a new '
            f'"run_config" to run what it changes (the run page: Rerun all)'
        ) from None
    tags = {k: v for k, v in parent.tags.items() if k not in (RETRY_TAG, RERUN_TAG)}
    interval = None
    if parent.interval_start is not None and parent.interval_end is not None:
        interval = (parent.interval_start.timestamp(), parent.interval_end.timestamp())
    return instance.run_store.create(
        status=RunStatus.QUEUED,
        job_name=job.name,
        job_version=job.version,
        tags={**tags, RERUN_TAG: "full" if full else "failure"},
        run_config=cfg.raw,
        selection=parent.selection,
        trigger=RERUN,
        origin=parent.origin or _origin(state, job),
        parent_run_id=parent.id,
        root_run_id=parent.root_run_id or parent.id,
        interval=interval,
        partition=parent.partition_key,
        launched_by=launched_by,
        deployed_version=parent.deployed_version,
        environment=parent.environment,
    )


@dataclass(frozen=True, slots=True)
class Backfilled:
    """What a backfill queued: its record's id, its runs, and how many intervals or keys
    it skipped (a successful run covers them already, or they are queued)."""

    backfill_id: str
    job_name: str
    queued: list[str]
    skipped: int
    intervals: list[tuple[str, str]]
    partitions: list[str]


def backfill(
    state: ServerState,
    job_name: str,
    *,
    start: str | None = None,
    end: str | None = None,
    partitions: Sequence[str] | None = None,
    launched_by: str | None = None,
) -> Backfilled:
    """Queue one run per missing interval (between ``start`` and ``end``) and/or partition
    key of job ``job_name``; what a successful run covers already is skipped. Each run
    records ``launched_by`` (``backfill`` when not given).

    Raises:
        NotFoundError: no such job.
        ConfigError: the job has no schedule or partitions to backfill, or the span or
            keys are wrong (the message says which).
    """
    from conveyor.scheduler.backfill import backfill as queue_backfill

    job = state.workspace.job(job_name)
    if partitions is not None and not partitions:
        raise ConfigError("partitions: give at least one key, or leave it out for every key")
    done = queue_backfill(
        job,
        start,
        end,
        partitions=partitions,
        instance=state.instance,
        origin=_origin(state, job),
        launched_by=launched_by or "backfill",
    )
    assert done.backfill_id is not None
    return Backfilled(
        backfill_id=done.backfill_id,
        job_name=job.name,
        queued=done.queued,
        skipped=done.skipped,
        intervals=[(i.start.isoformat(), i.end.isoformat()) for i in done.intervals],
        partitions=done.partitions,
    )
