"""The options of ``@workflow`` and ``@job``, validated together into one value.

``JobArgs`` says once which options a job takes and of what types (the
decorators and ``Job`` share it); ``job_options`` checks each of them, and the
rules that tie several together, and returns a frozen ``JobOptions``. Each
error names the job and the fix, as ``@job 'nightly': catchup='some' must be
one of latest, all, none``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from conveyor.definitions.access import AccessList, parse_access
from conveyor.definitions.execute import ExecuteOptions
from conveyor.definitions.freshness import REFRESH_POLICIES, FreshnessGate, parse_freshness
from conveyor.definitions.intervals import INCREMENTAL_MODES, JobInterval, parse_job_interval
from conveyor.definitions.keys import check_keys
from conveyor.definitions.partitions import StaticPartitions, parse_partitions
from conveyor.definitions.retry import RetryPolicy
from conveyor.definitions.schedule import Schedule
from conveyor.definitions.task import Hook, Tags, check_pool, normalize_hooks, normalize_tags
from conveyor.definitions.triggers import Trigger, parse_triggers
from conveyor.errors import DefinitionError, ScheduleError

JobKind = Literal["workflow", "job"]
EXECUTORS = ("in_process", "multiprocess", "dask")
CATCHUP = ("latest", "all", "none")
REQUIRE_KEYS = ("timezone",)


class JobArgs(TypedDict, total=False):
    """The keyword options of ``@workflow``, ``@job`` and ``Job``; see ``JobOptions``."""

    name: str | None
    description: str | None
    tags: Tags | None
    resources: Mapping[str, Any] | None
    retry: RetryPolicy | None
    trigger: str | Schedule | Sequence[str | Schedule] | None
    schedule: str | Schedule | None
    execute: Mapping[str, Any] | None
    catchup: str
    require: Mapping[str, Any] | None
    freshness: str | Sequence[str] | None
    refresh: str
    pool: str | None
    partitions: StaticPartitions | Sequence[str] | None
    interval: Mapping[str, Any] | None
    incremental_mode: str
    executor: Any
    on_success: Hook | Sequence[Hook] | None
    on_failure: Hook | Sequence[Hook] | None
    access: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class JobOptions:
    """A job's options, checked.

    Attributes:
        name: unique within a workspace; the function's name unless given.
        description: from the docstring unless given.
        tags: labels copied onto every run.
        resources: objects injected into tasks by parameter name.
        retry: the default ``RetryPolicy`` of the job's tasks.
        triggers: when the job runs, parsed from ``trigger=`` and ``schedule=``.
        require: what the job needs of where it runs (``timezone``).
        execute: run-level limits (timeout, concurrency, retries).
        catchup: after downtime, fire the ``"latest"`` missed tick, ``"all"``, or ``"none"``.
        freshness: the gates on upstream jobs a run waits for.
        refresh: how a refresh travels through the job (``"auto"``, ``"always"``, ``"block"``).
        pool: the concurrency pool each run takes a slot of, if any.
        partitions: the ``StaticPartitions`` its runs split over, if any.
        interval: the span of time the job covers, if given.
        incremental_mode: ``"latest"`` or ``"interval"``.
        executor: a name from ``EXECUTORS``, an executor object, or ``None``.
        on_success: hooks called when a run succeeds.
        on_failure: hooks called when a run fails.
        access: who may do what to the job (``AccessList``); ``None``: the
            instance roles decide.
    """

    name: str
    description: str | None
    tags: dict[str, str]
    resources: dict[str, Any]
    retry: RetryPolicy | None
    triggers: tuple[Trigger, ...]
    require: dict[str, Any]
    execute: ExecuteOptions
    catchup: str
    freshness: tuple[FreshnessGate, ...]
    refresh: str
    pool: str | None
    partitions: StaticPartitions | None
    interval: JobInterval | None
    incremental_mode: str
    executor: Any
    on_success: tuple[Hook, ...]
    on_failure: tuple[Hook, ...]
    access: AccessList | None = None

    @property
    def timed_trigger(self) -> Trigger | None:
        """The trigger that cuts time into the job's intervals: its schedule or ``every:``."""
        return timed_trigger(self.triggers)


def timed_trigger(triggers: Sequence[Trigger]) -> Trigger | None:
    """The first ``schedule`` or ``every:`` trigger of ``triggers``."""
    return next((t for t in triggers if t.type in ("schedule", "every")), None)


def job_options(fn: Callable[..., Any], kind: JobKind, options: JobArgs) -> JobOptions:
    """Check the options ``@kind`` was given for ``fn``.

    Raises:
        DefinitionError: an option is unknown, of the wrong kind or out of
            range, or two options contradict each other.
    """
    name = options.get("name") or fn.__name__
    owner = f"@{kind} {name!r}"
    check_keys(options, JobArgs.__optional_keys__, owner, "option")
    if not isinstance(name, str) or not name.replace("-", "_").replace(".", "_").isidentifier():
        raise DefinitionError(
            f"{owner}: a job name may hold letters, digits, '_', '-' and '.', "
            f"and must not start with a digit"
        )
    description = options.get("description")
    tags = normalize_tags(options.get("tags"), owner)
    resources = _resources(options.get("resources"), owner)
    retry = _retry(options.get("retry"), owner)
    require = dict(options.get("require") or {})
    triggers = _in_zone(parse_triggers(_trigger_list(options), name), require, owner)
    execute = ExecuteOptions.parse(options.get("execute"), owner)
    catchup = _one_of(options.get("catchup", "latest"), CATCHUP, owner, "catchup", _CATCHUP)
    freshness = parse_freshness(options.get("freshness"), name)
    refresh = _one_of(options.get("refresh", "auto"), REFRESH_POLICIES, owner, "refresh", _REFRESH)
    pool = check_pool(options.get("pool"), owner)
    partitions = parse_partitions(options.get("partitions"), owner)
    interval = parse_job_interval(options.get("interval"), owner)
    mode = options.get("incremental_mode", "latest")
    return JobOptions(
        name=name,
        description=description if description is not None else inspect.getdoc(fn),
        tags=tags,
        resources=resources,
        retry=retry,
        triggers=triggers,
        require=require,
        execute=execute,
        catchup=catchup,
        freshness=freshness,
        refresh=refresh,
        pool=pool,
        partitions=partitions,
        interval=interval,
        incremental_mode=_incremental(mode, triggers, partitions, interval, owner),
        executor=_executor(options.get("executor"), owner),
        on_success=normalize_hooks(options.get("on_success"), owner, "on_success"),
        on_failure=normalize_hooks(options.get("on_failure"), owner, "on_failure"),
        access=parse_access(options.get("access"), owner),
    )


_CATCHUP = "after downtime, fire the latest missed tick, all of them, or none"
_REFRESH = "pass a received refresh on, send one whenever it starts, or stop it"


def _one_of(value: object, choices: tuple[str, ...], owner: str, option: str, why: str) -> str:
    if value not in choices:
        raise DefinitionError(
            f"{owner}: {option}={value!r} must be one of {', '.join(choices)}: {why}"
        )
    assert isinstance(value, str)
    return value


def _trigger_list(options: JobArgs) -> list[str | Schedule]:
    """``schedule=`` then ``trigger=``, as one list; a cron string gets its ``schedule:``."""
    triggers: list[str | Schedule] = []
    schedule = options.get("schedule")
    if isinstance(schedule, str):
        prefixed = schedule.startswith("schedule:")
        triggers.append(schedule if prefixed else f"schedule:{schedule}")
    elif schedule is not None:
        triggers.append(schedule)
    trigger = options.get("trigger")
    if trigger is not None:
        triggers.extend([trigger] if isinstance(trigger, str | Schedule) else trigger)
    return triggers


def _resources(value: Mapping[str, Any] | None, owner: str) -> dict[str, Any]:
    resources = dict(value or {})
    for key in resources:
        if not isinstance(key, str) or not key.isidentifier():
            raise DefinitionError(
                f"{owner}: resource key {key!r} must be a Python identifier, since tasks "
                f"receive resources by parameter name"
            )
    return resources


def _retry(value: object, owner: str) -> RetryPolicy | None:
    if value is not None and not isinstance(value, RetryPolicy):
        raise DefinitionError(f"{owner}: retry must be a RetryPolicy, got {value!r}")
    return value


def _executor(value: object, owner: str) -> Any:
    if (
        value is not None
        and value not in EXECUTORS
        and not (hasattr(value, "run") and hasattr(value, "name"))
    ):
        raise DefinitionError(
            f"{owner}: unknown executor {value!r}; use one of {', '.join(EXECUTORS)} or "
            f"an executor object such as MultiprocessExecutor(max_workers=4)"
        )
    return value


def _incremental(
    mode: str,
    triggers: tuple[Trigger, ...],
    partitions: StaticPartitions | None,
    interval: JobInterval | None,
    owner: str,
) -> str:
    if mode not in INCREMENTAL_MODES:
        raise DefinitionError(
            f"{owner}: incremental_mode={mode!r} must be one of "
            f"{', '.join(INCREMENTAL_MODES)}: each run takes the last elapsed period, or "
            f"the scheduler walks the job's interval one period per run"
        )
    if (interval is not None or mode == "interval") and timed_trigger(triggers) is None:
        raise DefinitionError(
            f"{owner}: interval= and incremental_mode='interval' need a schedule or an "
            f"every: trigger to cut time into periods, e.g. schedule='@daily'"
        )
    if mode == "interval" and partitions is not None:
        raise DefinitionError(
            f"{owner}: incremental_mode='interval' walks one line of periods and cannot "
            f"be combined with partitions=; backfill the partitions instead"
        )
    if mode == "interval" and interval is None:
        raise DefinitionError(
            f"{owner}: incremental_mode='interval' needs interval={{'start': ..., "
            f"'end': None}}: where the scheduler starts walking"
        )
    return mode


def _in_zone(
    triggers: tuple[Trigger, ...], require: dict[str, Any], owner: str
) -> tuple[Trigger, ...]:
    """Put the job's cron-string triggers in ``require["timezone"]`` (a Schedule keeps its own)."""
    check_keys(require, REQUIRE_KEYS, owner, "require key")
    zone = require.get("timezone")
    if zone is None:
        return triggers
    try:
        Schedule(at_hours=0, timezone=zone)
    except ScheduleError as e:
        raise DefinitionError(f"{owner}: require={{'timezone': {zone!r}}}: {e}") from None
    return tuple(
        Trigger(t.type, t.expr, zone) if t.type == "schedule" and t.timezone is None else t
        for t in triggers
    )
