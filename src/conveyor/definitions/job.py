"""``Job``: the deployable, triggerable unit, made by ``@workflow`` or ``@job``.

``@workflow`` builds a static graph from its body at definition time; ``@job``
keeps a function whose body is the work and runs at run time. Both give a
``Job``, which runs in-process with ``run()`` and is inspected with ``runs()``,
``run_details()``, ``logs()`` and ``result()``. Those methods are thin calls
into the execution and storage layers, imported only when used.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, create_model

from conveyor.definitions.execute import ExecuteOptions
from conveyor.definitions.frames import current_frame
from conveyor.definitions.freshness import REFRESH_POLICIES, FreshnessGate, parse_freshness
from conveyor.definitions.graph import Graph
from conveyor.definitions.intervals import INCREMENTAL_MODES, parse_job_interval
from conveyor.definitions.keys import check_keys
from conveyor.definitions.params import (
    Param,
    ParamKind,
    classify_params,
    config_param,
    definition_locals,
)
from conveyor.definitions.partitions import StaticPartitions, parse_partitions
from conveyor.definitions.retry import RetryPolicy
from conveyor.definitions.schedule import Schedule
from conveyor.definitions.task import (
    Hook,
    Tags,
    Task,
    check_pool,
    normalize_hooks,
    normalize_tags,
)
from conveyor.definitions.triggers import Trigger, parse_triggers
from conveyor.definitions.version import digest, function_fingerprint, stable_repr
from conveyor.definitions.workflow import compose
from conveyor.errors import DefinitionError

if TYPE_CHECKING:
    from conveyor.execution.result import RunResult
    from conveyor.scheduler.backfill import BackfillResult
    from conveyor.storage.instance import Instance
    from conveyor.storage.records import RunDetails, RunRecord

JobKind = Literal["workflow", "job"]
EXECUTORS = ("in_process", "multiprocess", "dask")
CATCHUP = ("latest", "all", "none")


class Job:
    """A job: what is triggered, run and recorded.

    Attributes:
        name: unique within a workspace.
        kind: ``"workflow"`` (a static graph) or ``"job"`` (a function body).
        graph: the static graph of a workflow; ``None`` for a ``@job``.
        description: from the docstring unless given.
        tags: labels copied onto every run.
        resources: objects injected into tasks by parameter name.
        retry: the default ``RetryPolicy`` of the job's tasks.
        triggers: when the job runs, parsed from ``trigger=``/``schedule=``.
        execute: run-level limits (timeout, concurrency, retries).
        pool: the concurrency pool each run takes a slot of, if any.
        partitions: the ``StaticPartitions`` its runs split over, if any.
        interval: the span of time the job covers (``JobInterval``), if given.
        incremental_mode: ``"latest"`` (a timed run takes the last elapsed
            period) or ``"interval"`` (the scheduler walks ``interval`` one
            period per run, the next started as soon as one succeeds).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        kind: JobKind,
        name: str | None = None,
        description: str | None = None,
        tags: Tags | None = None,
        resources: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        trigger: str | Schedule | Sequence[str | Schedule] | None = None,
        schedule: str | Schedule | None = None,
        execute: Mapping[str, Any] | None = None,
        catchup: str = "latest",
        require: Mapping[str, Any] | None = None,
        freshness: str | Sequence[str] | None = None,
        refresh: str = "auto",
        pool: str | None = None,
        partitions: StaticPartitions | Sequence[str] | None = None,
        interval: Mapping[str, Any] | None = None,
        incremental_mode: str = "latest",
        executor: Any = None,
        on_success: Hook | Sequence[Hook] | None = None,
        on_failure: Hook | Sequence[Hook] | None = None,
    ) -> None:
        if not callable(fn):
            raise DefinitionError(f"@{kind} decorates functions, got {fn!r}")
        self.fn = fn
        self.kind: JobKind = kind
        self.name = name or fn.__name__
        owner = f"@{kind} {self.name!r}"
        if not self.name.replace("-", "_").replace(".", "_").isidentifier():
            raise DefinitionError(
                f"{owner}: a job name may hold letters, digits, '_', '-' and '.', "
                f"and must not start with a digit"
            )
        self.description = description if description is not None else inspect.getdoc(fn)
        self.tags = normalize_tags(tags, owner)
        self.resources: dict[str, Any] = dict(resources or {})
        for key in self.resources:
            if not isinstance(key, str) or not key.isidentifier():
                raise DefinitionError(
                    f"{owner}: resource key {key!r} must be a Python identifier, since tasks "
                    f"receive resources by parameter name"
                )
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise DefinitionError(f"{owner}: retry must be a RetryPolicy, got {retry!r}")
        self.retry = retry
        triggers: list[str | Schedule] = []
        if isinstance(schedule, str):
            prefixed = schedule.startswith("schedule:")
            triggers.append(schedule if prefixed else f"schedule:{schedule}")
        elif schedule is not None:
            triggers.append(schedule)
        if trigger is not None:
            triggers.extend([trigger] if isinstance(trigger, str | Schedule) else trigger)
        self.require = dict(require or {})
        self.triggers: tuple[Trigger, ...] = _in_zone(
            parse_triggers(triggers, self.name), self.require, owner
        )
        self.execute = ExecuteOptions.parse(execute, owner)
        if catchup not in CATCHUP:
            raise DefinitionError(
                f"{owner}: catchup={catchup!r} must be one of {', '.join(CATCHUP)}: after "
                f"downtime, fire the latest missed tick, all of them, or none"
            )
        self.catchup = catchup
        self.freshness: tuple[FreshnessGate, ...] = parse_freshness(freshness, self.name)
        if refresh not in REFRESH_POLICIES:
            raise DefinitionError(
                f"{owner}: refresh={refresh!r} must be one of {', '.join(REFRESH_POLICIES)}: "
                f"pass a received refresh on, send one whenever it starts, or stop it"
            )
        self.refresh = refresh
        self.pool = check_pool(pool, owner)
        self.partitions = parse_partitions(partitions, owner)
        self.interval = parse_job_interval(interval, owner)
        self.incremental_mode = self._check_incremental(incremental_mode, owner)
        if (
            executor is not None
            and executor not in EXECUTORS
            and not (hasattr(executor, "run") and hasattr(executor, "name"))
        ):
            raise DefinitionError(
                f"{owner}: unknown executor {executor!r}; use one of {', '.join(EXECUTORS)} or "
                f"an executor object such as MultiprocessExecutor(max_workers=4)"
            )
        self.executor = executor
        self.on_success = normalize_hooks(on_success, owner, "on_success")
        self.on_failure = normalize_hooks(on_failure, owner, "on_failure")
        self.params: tuple[Param, ...] = ()
        self.config_model: type[BaseModel] | None = None
        self.graph: Graph | None = None
        if kind == "workflow":
            self.graph = compose(fn, self.name, self.resources)
        else:
            self.params = classify_params(fn, owner, definition_locals())
            self.config_model = self._job_config_model(owner)
        self.__doc__ = fn.__doc__
        self.__module__ = fn.__module__
        self.__wrapped__ = fn

    @property
    def timed_trigger(self) -> Trigger | None:
        """The trigger that cuts time into the job's intervals: its schedule or ``every:``."""
        return next((t for t in self.triggers if t.type in ("schedule", "every")), None)

    def _check_incremental(self, mode: str, owner: str) -> str:
        if mode not in INCREMENTAL_MODES:
            raise DefinitionError(
                f"{owner}: incremental_mode={mode!r} must be one of "
                f"{', '.join(INCREMENTAL_MODES)}: each run takes the last elapsed period, or "
                f"the scheduler walks the job's interval one period per run"
            )
        if (self.interval is not None or mode == "interval") and self.timed_trigger is None:
            raise DefinitionError(
                f"{owner}: interval= and incremental_mode='interval' need a schedule or an "
                f"every: trigger to cut time into periods, e.g. schedule='@daily'"
            )
        if mode == "interval" and self.partitions is not None:
            raise DefinitionError(
                f"{owner}: incremental_mode='interval' walks one line of periods and cannot "
                f"be combined with partitions=; backfill the partitions instead"
            )
        if mode == "interval" and self.interval is None:
            raise DefinitionError(
                f"{owner}: incremental_mode='interval' needs interval={{'start': ..., "
                f"'end': None}}: where the scheduler starts walking"
            )
        return mode

    def _job_config_model(self, owner: str) -> type[BaseModel] | None:
        """The model that validates ``run_config['config']`` for a ``@job`` body."""
        cfg = config_param(self.params)
        plain = [
            p
            for p in self.params
            if p.kind is ParamKind.VALUE and not p.variadic and p.name not in self.resources
        ]
        if cfg is not None:
            required = [p.name for p in plain if p.required]
            if required:
                raise DefinitionError(
                    f"{owner}: parameters {', '.join(required)} have no value; with a Config "
                    f"parameter ({cfg.name}), put every config field in that class"
                )
            assert isinstance(cfg.annotation, type)
            return cfg.annotation
        if not plain:
            return None
        fields: dict[str, Any] = {
            p.name: (
                Any if p.annotation is inspect.Parameter.empty else p.annotation,
                ... if p.required else p.default,
            )
            for p in plain
        }
        try:
            return create_model(
                f"{self.name}_config",
                __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
                **fields,
            )
        except Exception as e:
            raise DefinitionError(f"{owner}: its parameters cannot be used as config: {e}") from e

    # -- identity ---------------------------------------------------------------------------

    @cached_property
    def version(self) -> str:
        """A hash of the definition: tasks, edges, options and the source of their functions."""
        parts = [
            self.kind,
            self.name,
            stable_repr(self.tags),
            repr(self.retry),
            repr(self.execute),
            stable_repr([(str(t), t.timezone) for t in self.triggers]),
            stable_repr(self.executor),
            stable_repr({k: _resource_fingerprint(v) for k, v in self.resources.items()}),
        ]
        # Options added later count only when set, so that older versions stay as they were.
        extra = {
            "pool": self.pool,
            "partitions": self.partitions,
            "interval": self.interval,
            "mode": None if self.incremental_mode == "latest" else self.incremental_mode,
        }
        parts += [f"{k}={v}" for k, v in extra.items() if v is not None]
        parts.append(function_fingerprint(self.fn))
        for t in self._tasks():
            parts.append(
                f"task {t.name} cpu={t.cpu} memory={t.memory} timeout={t.timeout} "
                f"retry={t.retry!r} tags={stable_repr(t.tags)}"
                + (f" pool={t.pool}" if t.pool is not None else "")
            )
            parts.append(function_fingerprint(t.fn))
        if self.graph is not None:
            for n in self.graph.nodes.values():
                parts.append(
                    f"node {n.key} {n.task.name} deps={n.deps} "
                    f"args={stable_repr(n.args)} kwargs={stable_repr(n.kwargs)}"
                )
        return digest(parts)

    def _tasks(self) -> list[Task[Any]]:
        """The tasks of the job: the graph's, or for a ``@job`` the tasks its body names."""
        if self.graph is not None:
            unique = {id(n.task): n.task for n in self.graph.nodes.values()}
            return list(unique.values())
        code = getattr(self.fn, "__code__", None)
        names = code.co_names if code is not None else ()
        globs = getattr(self.fn, "__globals__", {})
        return [globs[n] for n in sorted(set(names)) if isinstance(globs.get(n), Task)]

    @property
    def success(self) -> str:
        """The trigger string that fires when this job succeeds."""
        return f"job.success:{self.name}"

    @property
    def fail(self) -> str:
        """The trigger string that fires when this job fails."""
        return f"job.fail:{self.name}"

    @property
    def completed(self) -> str:
        """The trigger string that fires when this job ends, with success or failure."""
        return f"job.completed:{self.name}"

    @property
    def is_fresh(self) -> str:
        """The freshness gate: this job has completed since its latest scheduled tick."""
        return f"job.is_fresh:{self.name}"

    @property
    def is_matching_interval_fresh(self) -> str:
        """The freshness gate: this job's completed intervals cover the downstream's interval."""
        return f"job.is_matching_interval_fresh:{self.name}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.kind == "workflow" or current_frame.get() is not None:
            raise DefinitionError(
                f"{self.kind} {self.name!r} is not called directly; run it with "
                f"{self.name}.run(...)"
            )
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        size = f", {len(self.graph)} tasks" if self.graph is not None else ""
        return f"<Job {self.name} ({self.kind}{size})>"

    # -- running and inspecting -------------------------------------------------------------

    def run(
        self,
        run_config: Mapping[str, Any] | None = None,
        *,
        selection: str | Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
        instance: Instance | None = None,
        raise_on_error: bool = True,
        input_values: Mapping[str, Any] | None = None,
        executor: Any = None,
        partition: str | None = None,
        interval: Any = None,
    ) -> RunResult:
        """Run the job in this process and record the run.

        Args:
            run_config: ``{"tasks": {key: {"config": ...}}, "config": ..., "resources": ...}``.
            selection: run only these tasks (``"*t"``, ``"t+"``...; workflows only).
            tags: added to the run's tags.
            instance: where the run is recorded (default: ``Instance.default()``).
            raise_on_error: raise the failing task's own exception when the run fails.
            input_values: outputs of unselected upstream tasks, by task key.
            executor: ``"in_process"`` (default), ``"multiprocess"``, ``"dask"``, or an
                executor object; overrides the job's ``executor=``.
            partition: the key of the job's ``StaticPartitions`` to process
                (``context.partition``).
            interval: the ``(start, end)`` the run processes (``context.interval``),
                as dates, datetimes or ISO strings; UTC unless they say otherwise.

        Returns:
            The ``RunResult``, also when the run failed and ``raise_on_error`` is false.
        """
        from conveyor.execution.launch import execute_job

        return execute_job(
            self,
            run_config=run_config,
            selection=selection,
            tags=tags,
            instance=instance,
            raise_on_error=raise_on_error,
            input_values=input_values,
            executor=executor,
            partition=partition,
            interval=interval,
        )

    def rerun(
        self,
        run_id: str,
        full: bool = False,
        *,
        instance: Instance | None = None,
        raise_on_error: bool = True,
        executor: Any = None,
    ) -> RunResult:
        """Run again from a previous run.

        With ``full=False`` only the failed and not-run tasks and everything
        downstream of them execute; tasks that succeeded are ``reused`` from
        their stored results. ``full=True`` executes everything again.
        """
        from conveyor.execution.rerun import rerun_job

        return rerun_job(
            self,
            run_id,
            full=full,
            instance=instance,
            raise_on_error=raise_on_error,
            executor=executor,
        )

    def backfill(
        self,
        start: Any = None,
        end: Any = None,
        *,
        partitions: Sequence[str] | None = None,
        instance: Instance | None = None,
    ) -> BackfillResult:
        """Queue one run per missing interval from ``start`` to ``end``, or per partition key.

        The scheduler daemon starts the runs within the job's concurrency;
        what a successful run covers, or a run already queued, is skipped.
        See ``conveyor.scheduler.backfill.backfill``.
        """
        from conveyor.scheduler.backfill import backfill

        return backfill(self, start, end, partitions=partitions, instance=instance)

    def runs(
        self, limit: int = 20, status: str | None = None, *, instance: Instance | None = None
    ) -> list[RunRecord]:
        """The most recent runs of this job, newest first."""
        return _instance(instance).runs(self.name, limit=limit, status=status)

    def run_details(self, run_id: str, *, instance: Instance | None = None) -> RunDetails:
        """A run with its tasks: states, attempts, times and dependencies."""
        return _instance(instance).run_details(run_id, job_name=self.name)

    def logs(
        self,
        run_id: str,
        task_name: str,
        stderr: bool = False,
        lines: int = 5000,
        *,
        instance: Instance | None = None,
    ) -> str:
        """The last ``lines`` lines a task wrote to stdout (or stderr) in a run."""
        return _instance(instance).logs(
            run_id, task_name, stderr=stderr, lines=lines, job_name=self.name
        )

    def result(self, run_id: str, task_name: str, *, instance: Instance | None = None) -> Any:
        """The stored output of a task in a run."""
        return _instance(instance).result(run_id, task_name, job_name=self.name)


REQUIRE_KEYS = ("timezone",)


def _in_zone(
    triggers: tuple[Trigger, ...], require: dict[str, Any], owner: str
) -> tuple[Trigger, ...]:
    """Put the job's cron-string triggers in ``require["timezone"]`` (a Schedule keeps its own)."""
    check_keys(require, REQUIRE_KEYS, owner, "require key")
    zone = require.get("timezone")
    if zone is None:
        return triggers
    from conveyor.definitions.schedule import Schedule
    from conveyor.errors import ScheduleError

    try:
        Schedule(at_hours=0, timezone=zone)
    except ScheduleError as e:
        raise DefinitionError(f"{owner}: require={{'timezone': {zone!r}}}: {e}") from None
    return tuple(
        Trigger(t.type, t.expr, zone) if t.type == "schedule" and t.timezone is None else t
        for t in triggers
    )


def _instance(instance: Instance | None) -> Instance:
    from conveyor.storage.instance import Instance

    return instance if instance is not None else Instance.default()


def _resource_fingerprint(value: Any) -> str:
    if isinstance(value, BaseModel):
        return f"{type(value).__qualname__}{stable_repr(value.model_dump())}"
    return type(value).__qualname__


def _decorator(kind: JobKind, fn: Callable[..., Any] | None, options: dict[str, Any]) -> Any:
    if fn is not None:
        return Job(fn, kind=kind, **options)

    def decorate(f: Callable[..., Any]) -> Job:
        return Job(f, kind=kind, **options)

    return decorate


def workflow(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Make a job from a function whose body composes task calls into a static graph.

    Works bare (``@workflow``) or with options: ``name``, ``description``,
    ``tags``, ``resources``, ``retry`` (default for its tasks), ``trigger``,
    ``schedule``, ``execute``, ``catchup``, ``require``, ``freshness``,
    ``refresh``, ``pool``, ``partitions``, ``interval``, ``incremental_mode``,
    ``executor``, ``on_success``, ``on_failure``.
    The body runs once, now; an exception in it propagates unchanged.
    """
    return _decorator("workflow", fn, options)


def job(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Make a job from a function whose body is the work and runs at run time.

    Takes the same options as ``@workflow``. The body receives ``context`` by
    name or type, resources by parameter name, and its other parameters as
    config validated from the signature. Inside it, calling a task runs it as
    a recorded step; ``task.submit()`` returns a future; ``task.map()`` fans out.
    """
    return _decorator("job", fn, options)
