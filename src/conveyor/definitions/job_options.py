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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict, cast

from pydantic import BaseModel

from conveyor.definitions.access import AccessList, parse_access
from conveyor.definitions.config import as_config_dict, fields_of, merged, plain_data
from conveyor.definitions.deadlines import parse_deadline
from conveyor.definitions.display_names import split_display_name
from conveyor.definitions.execute import ExecuteOptions
from conveyor.definitions.freshness import REFRESH_POLICIES, FreshnessGate, parse_freshness
from conveyor.definitions.intervals import INCREMENTAL_MODES, JobInterval, parse_job_interval
from conveyor.definitions.job_meta import MetadataValue, parse_metadata, parse_owners
from conveyor.definitions.job_require import (
    JobExpose,
    check_placement,
    parse_expose,
    parse_require,
)
from conveyor.definitions.keys import check_keys
from conveyor.definitions.partitions import (
    PartitionConfig,
    PartitionSet,
    parse_partitions,
)
from conveyor.definitions.retry import RetryPolicy
from conveyor.definitions.schedule import Schedule
from conveyor.definitions.task import (
    Hook,
    Tags,
    check_pool,
    normalize_env_vars,
    normalize_hooks,
    normalize_tags,
)
from conveyor.definitions.timeout_spec import expand_timeout
from conveyor.definitions.triggers import Trigger, parse_triggers
from conveyor.errors import ConfigError, DefinitionError, ScheduleError

JobKind = Literal["workflow", "job"]
# The name a workspace file is imported under is this and the file's stem
# (conveyor.workspace uses it).
WORKSPACE_MODULE_PREFIX = "conveyor_workspace_"
EXECUTORS = ("in_process", "multiprocess", "dask")
CATCHUP = ("latest", "all", "none")


class JobArgs(TypedDict, total=False):
    """The keyword options of ``@workflow``, ``@job`` and ``Job``; see ``JobOptions``."""

    name: str | None
    description: str | None
    tags: Tags | None
    resources: Mapping[str, Any] | None
    config: Any
    retry: RetryPolicy | None
    trigger: str | Schedule | Sequence[str | Schedule | Sequence[str]] | None
    schedule: str | Schedule | None
    execute: Mapping[str, Any] | None
    catchup: str
    require: Mapping[str, Any] | None
    freshness: str | Sequence[str] | None
    refresh: str
    pool: str | None
    partitions: PartitionSet | Sequence[str] | None
    interval: Mapping[str, Any] | None
    incremental_mode: str
    executor: Any
    on_success: Hook | Sequence[Hook] | None
    on_failure: Hook | Sequence[Hook] | None
    access: Mapping[str, Any] | None
    env_vars: Mapping[str, str | int | float | bool] | None
    section: str | None
    spec: type | None
    deliver: Any
    expose: Mapping[str, Any] | None
    display_name: str | None
    allow_external_schedulers: bool
    fail_after: str | float | None
    expire_after: str | float | None
    metadata: Mapping[str, MetadataValue] | None
    owners: Sequence[str] | None
    run_tags: Tags | None
    on_task_success: Hook | Sequence[Hook] | None
    on_task_failure: Hook | Sequence[Hook] | None


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
        config: the default run config (``config=``, a dict or a ``RunConfig``) as a
            run config dict; a run's own config is laid over it field by field.
        require: what the job needs of where it runs: ``timezone``,
            ``dependency_groups`` (a list), ``profile`` (a config profile
            name), ``machine`` (``{"cpu": cores, "memory": bytes}``), ``region``.
        execute: run-level limits (timeout, concurrency, retries).
        catchup: after downtime, fire the ``"latest"`` missed tick, ``"all"``, or ``"none"``.
        freshness: the gates on upstream jobs a run waits for.
        refresh: how a refresh travels through the job (``"auto"``, ``"always"``, ``"block"``).
        pool: the concurrency pool each run takes a slot of, if any.
        partitions: the partitions its runs split over, if any (``StaticPartitions``,
            ``DailyPartitions``..., ``MultiPartitions``).
        partition_config: ``config=partition_config(fn)``: each run's default config
            is ``fn(its partition key)``, laid over ``config`` (``None``: none).
        interval: the span of time the job covers, if given.
        incremental_mode: ``"latest"`` or ``"interval"``.
        executor: a name from ``EXECUTORS``, an executor object, or ``None``.
        on_success: hooks called when a run succeeds.
        on_failure: hooks called when a run fails.
        access: who may do what to the job (``AccessList``); ``None``: the
            instance roles decide.
        section: the job's config section (dlt's ``section=``): the last part of
            its module's name unless given.
        spec: a config spec class (a pydantic model such as a ``Config``
            subclass), or ``None``.
        deliver: what the job delivers to (e.g. a dlt pipeline or source), as
            given, or ``None``.
        expose: how the job is shown and whether people may start it
            (``JobExpose``).
        env_vars: environment variables set in each of its tasks' processes while the
            task runs; a task's own ``env_vars`` (and a call's ``update_env_vars``) win.
        fail_after: seconds from a run's start after which the daemon fails it,
            stopping its running tasks (``None``: no limit).
        expire_after: seconds from a run's queueing after which the daemon cancels it
            as expired if it has not started (``None``: no limit).
        metadata: shown on the job's page (Dagster's ``metadata=``): plain values, a
            string starting with http(s):// shown as a link (``job_meta``).
        owners: the teams (``team:<name>``), emails and user names that own the job.
        run_tags: the tags copied onto its runs in place of ``tags`` (Dagster's
            ``run_tags=``); ``None``: ``tags`` are copied.
        on_task_success: hooks called with each task's context when it succeeds,
            after the task's own (Dagster's job-level ``hooks=``).
        on_task_failure: hooks called with each task's context and error when it
            fails, after the task's own.
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
    partitions: PartitionSet | None
    interval: JobInterval | None
    incremental_mode: str
    executor: Any
    on_success: tuple[Hook, ...]
    on_failure: tuple[Hook, ...]
    access: AccessList | None = None
    section: str = ""
    spec: type | None = None
    deliver: Any = None
    expose: JobExpose = field(default_factory=JobExpose)
    config: dict[str, Any] = field(default_factory=dict)
    partition_config: PartitionConfig | None = None
    env_vars: dict[str, str] = field(default_factory=dict)
    fail_after: float | None = None
    expire_after: float | None = None
    metadata: dict[str, MetadataValue] = field(default_factory=dict)
    owners: tuple[str, ...] = ()
    run_tags: dict[str, str] | None = None
    on_task_success: tuple[Hook, ...] = ()
    on_task_failure: tuple[Hook, ...] = ()

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
    name, display_name = split_display_name(
        options.get("name") or fn.__name__, options.get("display_name"), f"@{kind}"
    )
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
    require = parse_require(options.get("require"), fn, owner)
    expose = parse_expose(options.get("expose"), display_name, owner)
    tag_triggers = [f"tag:{t}" for t in expose.tags]
    triggers = parse_triggers([*_trigger_list(options), *tag_triggers], name)
    triggers = _in_zone(triggers, require, owner)
    execute = ExecuteOptions.parse(expand_timeout(options.get("execute"), owner), owner)
    catchup = _one_of(options.get("catchup", "latest"), CATCHUP, owner, "catchup", _CATCHUP)
    freshness = parse_freshness(options.get("freshness"), name)
    refresh = _one_of(options.get("refresh", "auto"), REFRESH_POLICIES, owner, "refresh", _REFRESH)
    pool = check_pool(options.get("pool"), owner)
    partitions = parse_partitions(options.get("partitions"), owner)
    interval = parse_job_interval(options.get("interval"), owner)
    mode = _mode(options, owner)
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
        executor=check_placement(_executor(options.get("executor"), owner), require, owner),
        on_success=normalize_hooks(options.get("on_success"), owner, "on_success"),
        on_failure=normalize_hooks(options.get("on_failure"), owner, "on_failure"),
        access=parse_access(options.get("access"), owner),
        section=_section(options.get("section"), fn, owner),
        spec=_spec(options.get("spec"), owner),
        deliver=_deliver(options.get("deliver"), owner),
        expose=expose,
        config=_config(options.get("config"), owner),
        partition_config=_partition_config(options.get("config"), partitions, owner),
        env_vars=_env_vars(options.get("env_vars"), owner),
        fail_after=parse_deadline(options.get("fail_after"), "fail_after", owner),
        expire_after=parse_deadline(options.get("expire_after"), "expire_after", owner),
        metadata=parse_metadata(options.get("metadata"), owner),
        owners=parse_owners(options.get("owners"), owner),
        run_tags=_run_tags(options.get("run_tags"), owner),
        on_task_success=normalize_hooks(options.get("on_task_success"), owner, "on_task_success"),
        on_task_failure=normalize_hooks(options.get("on_task_failure"), owner, "on_task_failure"),
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


def _trigger_list(options: JobArgs) -> list[object]:
    """``schedule=`` then ``trigger=``, as one list; a cron string gets its ``schedule:``.

    Items of ``trigger=`` may be tuples (``up.completed``); ``parse_triggers`` flattens them.
    """
    triggers: list[object] = []
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


def variant_args(
    base: JobOptions,
    args: JobArgs,
    options: JobArgs,
    resource_defs: Mapping[str, Any] | None,
) -> JobArgs:
    """The options of a variant (``Job.to_job``) of the job made with ``args`` (checked as
    ``base``): ``options`` replace ``args``, but for ``resources``, ``tags`` and ``config``,
    which are laid over the job's, key by key (``config`` field by field).

    Raises:
        DefinitionError: both ``resources`` and ``resource_defs``, or one not a mapping.
    """
    owner = f"{base.name}.to_job()"
    if resource_defs is not None:
        if "resources" in options:
            raise DefinitionError(
                f"{owner}: give resources= or its Dagster name resource_defs=, not both"
            )
        options = {**options, "resources": resource_defs}
    out = cast(JobArgs, {**args, **options})
    for key, mine in (("resources", base.resources), ("tags", base.tags)):
        given = options.get(key)
        if given is None:
            continue
        if not isinstance(given, Mapping):
            raise DefinitionError(
                f"{owner}: {key}= must be a dict by key, got {type(given).__name__}"
            )
        out[key] = {**mine, **given}  # type: ignore[literal-required]
    if isinstance(options.get("config"), PartitionConfig):
        pass  # a variant's partition_config replaces the job's config
    elif options.get("config") is not None:
        if base.partition_config is not None:
            raise DefinitionError(
                f"{owner}: the job's config is {base.partition_config!r}, made per partition; "
                f"give the variant config=partition_config(...) too"
            )
        try:
            given_config = as_config_dict(options["config"], "config=")
        except ConfigError as e:
            raise DefinitionError(f"{owner}: {e}") from None
        # Field by field: a Config instance becomes its fields, to merge with a dict.
        out["config"] = merged(fields_of(base.config), fields_of(given_config))
    return out


def _config(value: object, owner: str) -> dict[str, Any]:
    """``config=`` as a run config dict, checked to be config the run can store."""
    if isinstance(value, PartitionConfig):
        return {}
    try:
        out = as_config_dict(value, "config=")
        plain_data(fields_of(out), "config=")
    except ConfigError as e:
        raise DefinitionError(f"{owner}: {e}") from None
    return out


def _partition_config(
    value: object, partitions: PartitionSet | None, owner: str
) -> PartitionConfig | None:
    """``config=partition_config(fn)``, which needs partitions to give it keys."""
    if not isinstance(value, PartitionConfig):
        return None
    if partitions is None:
        raise DefinitionError(
            f"{owner}: config={value!r} makes config per partition, but the job has no "
            f"partitions=; give it partitions, e.g. partitions=DailyPartitions('2024-01-01')"
        )
    return value


def _run_tags(value: Tags | None, owner: str) -> dict[str, str] | None:
    """``run_tags=``: ``None`` when not given, so that ``tags`` are copied onto runs."""
    return None if value is None else normalize_tags(value, f"{owner}: run_tags")


def _retry(value: object, owner: str) -> RetryPolicy | None:
    if value is not None and not isinstance(value, RetryPolicy):
        raise DefinitionError(f"{owner}: retry must be a RetryPolicy, got {value!r}")
    return value


def _mode(options: JobArgs, owner: str) -> str:
    """``incremental_mode=``, or dlt 1.26's ``allow_external_schedulers=True`` for "interval"."""
    external = options.get("allow_external_schedulers", False)
    if not isinstance(external, bool):
        raise DefinitionError(
            f"{owner}: allow_external_schedulers={external!r} must be True or False"
        )
    mode = options.get("incremental_mode")
    if not external:
        return "latest" if mode is None else mode
    if mode not in (None, "interval"):
        raise DefinitionError(
            f"{owner}: allow_external_schedulers=True means incremental_mode='interval' "
            f"(dlt's name for it), but incremental_mode={mode!r} was given too; keep one"
        )
    return "interval"


def _env_vars(value: object, owner: str) -> dict[str, str]:
    """``env_vars=``: set in each task's process while it runs (a task's own win)."""
    try:
        return normalize_env_vars(value, owner)
    except ConfigError as e:
        raise DefinitionError(str(e)) from None


def _section(value: object, fn: Callable[..., Any], owner: str) -> str:
    """dlt's config section: given, or the last part of the function's module name."""
    if value is None:
        module = str(getattr(fn, "__module__", None) or "__main__")
        if module == "__main__":  # dlt names the section after the script's file
            try:
                stem = Path(inspect.getfile(fn)).stem
            except (TypeError, OSError):
                return module
            return stem if stem.isidentifier() else module
        # A workspace file is imported as conveyor_workspace_<stem>: its section is <stem>.
        return module.rsplit(".", 1)[-1].removeprefix(WORKSPACE_MODULE_PREFIX)
    if not isinstance(value, str) or not value.isidentifier():
        raise DefinitionError(
            f"{owner}: section={value!r} must be a Python identifier such as 'sources' "
            f"(config keys are looked up under jobs.<section>.<name>)"
        )
    return value


def _spec(value: object, owner: str) -> type | None:
    if value is None:
        return None
    if not (isinstance(value, type) and issubclass(value, BaseModel)):
        raise DefinitionError(
            f"{owner}: spec={value!r} must be a config class: a pydantic model such as a "
            f"subclass of conveyor.Config"
        )
    return value


def _deliver(value: object, owner: str) -> Any:
    if isinstance(value, str | int | float | bool) and value is not None:
        raise DefinitionError(
            f"{owner}: deliver={value!r} must be the object the job delivers to (a dlt "
            f"pipeline, source or resource), not a {type(value).__name__}"
        )
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
    partitions: PartitionSet | None,
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
