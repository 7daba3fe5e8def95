"""``Job``: the deployable, triggerable unit, made by ``@workflow`` or ``@job``.

``@workflow`` builds a static graph from its body at definition time; ``@job``
keeps a function whose body is the work and runs at run time. Both give a
``Job``, which runs in-process with ``run()`` and is inspected with ``runs()``,
``run_details()``, ``logs()`` and ``result()``. Those methods are thin calls
through ``run_facade``, the one module of the definitions that reaches the
execution, scheduler and storage layers. The options are checked in
``job_options`` and the version hash is made in ``version``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Unpack, cast, overload

from pydantic import BaseModel, ConfigDict, create_model

from conveyor.definitions import run_facade
from conveyor.definitions.config import (
    Config,
    ConfigMapping,
    RunConfig,
    as_config_dict,
    check_default_config,
    merged,
)
from conveyor.definitions.frames import current_frame
from conveyor.definitions.graph import Graph
from conveyor.definitions.job_options import (
    CATCHUP,
    EXECUTORS,
    JobArgs,
    JobKind,
    JobOptions,
    job_options,
    variant_args,
)
from conveyor.definitions.job_require import REQUIRE_KEYS
from conveyor.definitions.job_spec import spec_config_model
from conveyor.definitions.manifest import job_definition
from conveyor.definitions.params import (
    Param,
    ParamKind,
    classify_params,
    config_param,
    definition_locals,
)
from conveyor.definitions.task import Hook, normalize_hooks
from conveyor.definitions.triggers import Trigger
from conveyor.definitions.version import job_version
from conveyor.definitions.workflow import Composer, compose
from conveyor.errors import DefinitionError, ExecutionError

if TYPE_CHECKING:
    from conveyor.definitions.run_facade import (
        BackfillResult,
        Instance,
        RunDetails,
        RunRecord,
        RunResult,
    )

__all__ = [
    "CATCHUP",
    "EXECUTORS",
    "REQUIRE_KEYS",
    "Job",
    "JobArgs",
    "JobKind",
    "JobOptions",
    "graph",
    "job",
    "workflow",
]


class Job:
    """A job: what is triggered, run and recorded.

    Attributes:
        name: unique within a workspace.
        kind: ``"workflow"`` (a static graph) or ``"job"`` (a function body).
        graph: the static graph of a workflow; ``None`` for a ``@job``.
        options: every option, checked (``JobOptions``); the ones below are
            also attributes of the job itself.
        description: from the docstring unless given.
        tags: labels copied onto every run.
        resources: objects injected into tasks by parameter name (and found as
            ``context.resources.<name>``): ``Resource`` instances, context
            managers, ``@resource`` functions, or any object, passed as it is.
        default_config: ``config=`` as a run config dict; each run's config is
            laid over it, field by field. A workflow's includes the ``config=`` of
            the workflows composed into it (task keys prefixed).
        config_mapping: ``config=`` when it is a ``ConfigMapping`` (a run's config is
            then its simplified config), else ``None``.
        retry: the default ``RetryPolicy`` of the job's tasks.
        triggers: when the job runs, parsed from ``trigger=``/``schedule=``.
        execute: run-level limits (timeout, concurrency, retries).
        fail_after: seconds from a run's start after which it fails, or ``None``.
        expire_after: seconds a queued run may wait to start before it is canceled
            as expired, or ``None``.
        pool: the concurrency pool each run takes a slot of, if any.
        partitions: the partitions its runs split over, if any (``StaticPartitions``,
            ``DailyPartitions``..., ``MultiPartitions``).
        partition_config: ``config=partition_config(fn)``, else ``None``: each run's
            default config is ``fn(its partition key)``.
        interval: the span of time the job covers (``JobInterval``), if given.
        incremental_mode: ``"latest"`` (a timed run takes the last elapsed
            period) or ``"interval"`` (the scheduler walks ``interval`` one
            period per run, the next started as soon as one succeeds).
        expose: how the job is shown and started (``JobExpose``).
        display_name: ``expose``'s display name, else ``name``.
        metadata: shown on the job's page; a str starting with http(s):// is a link.
        owners: the teams (``team:<name>``), emails and user names that own it.
        run_tags: the tags copied onto every run: ``run_tags=`` if given, else
            ``tags`` (Dagster's rule); tags given when a run starts win.
        on_task_success: hooks called with each task's context when it succeeds.
        on_task_failure: hooks called with each task's context and error when it fails.
        environment: the environment a deployed job runs in (its name is then
            ``<environment>.<name>``), or ``None`` for the files on disk.
    """

    # Set on the copies of a deployed version's jobs (execution.environments.scope).
    environment: str | None = None

    @property
    def base_name(self) -> str:
        """The name the job has in its code: ``etl`` for ``prod.etl``."""
        if self.environment is None:
            return self.name
        return self.name.removeprefix(f"{self.environment}.")

    def __init__(
        self, fn: Callable[..., Any], *, kind: JobKind, **options: Unpack[JobArgs]
    ) -> None:
        self._build(fn, kind, options, None)

    def _build(
        self, fn: Callable[..., Any], kind: JobKind, options: JobArgs, graph: Graph | None
    ) -> None:
        if not callable(fn):
            raise DefinitionError(f"@{kind} decorates functions, got {fn!r}")
        self.fn = fn
        self.kind: JobKind = kind
        self._args = options
        # A ConfigMapping as config= maps each run's config; the options hold no defaults.
        mapping = options.get("config")
        self.config_mapping = mapping if isinstance(mapping, ConfigMapping) else None
        if self.config_mapping is not None:
            options = cast(JobArgs, {**options, "config": None})
        self.options = o = job_options(fn, kind, options)
        self.name = o.name
        self.description = o.description
        self.tags = o.tags
        self.resources = o.resources
        self.default_config = o.config
        self.env_vars = o.env_vars
        self.retry = o.retry
        self.require = o.require
        self.triggers = o.triggers
        self.execute = o.execute
        self.fail_after = o.fail_after
        self.expire_after = o.expire_after
        self.catchup = o.catchup
        self.freshness = o.freshness
        self.refresh = o.refresh
        self.pool = o.pool
        self.access = o.access
        self.partitions = o.partitions
        self.partition_config = o.partition_config
        self.interval = o.interval
        self.incremental_mode = o.incremental_mode
        self.executor = o.executor
        self.on_success = o.on_success
        self.on_failure = o.on_failure
        self.on_task_success = o.on_task_success
        self.on_task_failure = o.on_task_failure
        self.metadata = o.metadata
        self.owners = o.owners
        self.run_tags = o.tags if o.run_tags is None else o.run_tags
        self.expose = o.expose
        self.display_name = o.expose.display_name or o.name
        self.params: tuple[Param, ...] = ()
        self.config_model: type[BaseModel] | None = None
        self.graph: Graph | None = None
        if kind == "workflow":
            self.graph = graph if graph is not None else compose(fn, self.name, self.resources)
            # Subgraphs bring their resources and config= defaults; the job's own win.
            self.resources = {**self.graph.resources, **o.resources}
            self.default_config = merged(self.graph.defaults, o.config)
        else:
            owner = f"@{kind} {self.name!r}"
            self.params = classify_params(fn, owner, definition_locals())
            self.config_model = self._job_config_model(owner)
        check_default_config(self)
        self.__doc__ = fn.__doc__
        self.__module__ = fn.__module__
        self.__wrapped__ = fn

    def to_job(
        self,
        *,
        resource_defs: Mapping[str, Any] | None = None,
        **options: Unpack[JobArgs],
    ) -> Job:
        """A variant of this job: the same graph (or body) with its own name and options.

        Dagster's ``graph.to_job(name=..., resource_defs=..., config=...)``: the
        seed's ``do_stuff_local`` and ``do_stuff_prod`` are two variants of one
        graph, and both live in one workspace. ``resources``, ``config`` and
        ``tags`` are laid over this job's, key by key; any other option of
        ``@workflow``/``@job`` replaces this job's. The name stays this job's
        unless given; give one if both go in a workspace.

        Raises:
            DefinitionError: a bad option, or both ``resources`` and ``resource_defs``.
        """
        mapping = options.get("config")
        if isinstance(mapping, ConfigMapping):
            options = cast(JobArgs, {k: v for k, v in options.items() if k != "config"})
        args = variant_args(self.options, self._args, options, resource_defs)
        if isinstance(mapping, ConfigMapping):
            args["config"] = mapping
        variant = Job.__new__(Job)
        same_keys = set(args.get("resources") or {}) == set(self.options.resources)
        variant._build(self.fn, self.kind, args, self.graph if same_keys else None)
        return variant

    def with_hooks(
        self,
        *,
        on_task_success: Hook | Sequence[Hook] | None = None,
        on_task_failure: Hook | Sequence[Hook] | None = None,
    ) -> Job:
        """A variant of this job whose tasks also call these hooks (Dagster's
        ``job.with_hooks({...})``), after the job's own task hooks.

        Each ``on_task_success`` hook is called with a task's context when the task
        succeeds, each ``on_task_failure`` one with its context and error when it
        fails (or with the context alone, if it takes one parameter).

        Raises:
            DefinitionError: a hook is not callable.
        """
        owner = f"{self.name}.with_hooks()"
        success = normalize_hooks(on_task_success, owner, "on_task_success")
        failure = normalize_hooks(on_task_failure, owner, "on_task_failure")
        return self.to_job(
            on_task_success=(*self.on_task_success, *success),
            on_task_failure=(*self.on_task_failure, *failure),
        )

    @property
    def timed_trigger(self) -> Trigger | None:
        """The trigger that cuts time into the job's intervals: its schedule or ``every:``."""
        return self.options.timed_trigger

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
        if self.options.spec is not None:  # dlt's spec=: the body's fields are the spec's
            return spec_config_model(self.name, self.options.spec, plain, owner)
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
        return job_version(self)

    @property
    def success(self) -> str:
        """The trigger string that fires when this job succeeds."""
        return f"job.success:{self.name}"

    @property
    def fail(self) -> str:
        """The trigger string that fires when this job fails."""
        return f"job.fail:{self.name}"

    @property
    def completed(self) -> tuple[str, str]:
        """The triggers ``(success, fail)``: together they fire when this job ends either way.

        As in dlt, ``trigger=up.completed`` and ``trigger=[*up.completed, "every:1d"]``
        both work; the single string ``"job.completed:<name>"`` means the same.
        """
        return (self.success, self.fail)

    @property
    def is_fresh(self) -> str:
        """The freshness gate: this job has completed since its latest scheduled tick."""
        return f"job.is_fresh:{self.name}"

    @property
    def is_matching_interval_fresh(self) -> str:
        """The freshness gate: this job's completed intervals cover the downstream's interval."""
        return f"job.is_matching_interval_fresh:{self.name}"

    def to_job_definition(self) -> dict[str, Any]:
        """The job's manifest as dlt builds it: a JSON-serializable dict of its entry
        point, triggers, execute, expose, require, deliver, interval, freshness and
        config keys with their JSON schema (see ``conveyor.definitions.manifest``)."""
        return job_definition(self)

    def check_manual(self, how: str) -> None:
        """Refuse a manual run (``how`` names it: ``"job.run()"``, ``"conveyor run"``...)
        of a job whose ``expose`` says ``manual=False``.

        Scheduled, chained, sensor and backfill runs are not manual and are not
        checked here.

        Raises:
            ExecutionError: the job takes no manual runs.
        """
        if self.expose.manual:
            return
        own = ", ".join(str(t) for t in self.triggers if t.type != "manual") or "none"
        raise ExecutionError(
            f"job {self.name!r} cannot be run manually ({how}): its expose says "
            f"manual=False, so it runs only from its triggers ({own}) and backfills; "
            f"to allow manual runs, remove manual=False from its expose"
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        frame = current_frame.get()
        if self.kind == "workflow" and isinstance(frame, Composer):
            # Inside another workflow's body: compose this one there as a subgraph.
            return frame.compose_sub(self, args, kwargs)
        if self.kind == "workflow" or frame is not None:
            raise DefinitionError(
                f"{self.kind} {self.name!r} is not called directly; run it with "
                f"{self.name}.run(...)"
            )
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        n = len(self.graph) if self.graph is not None else 0
        size = f", {n} task{'' if n == 1 else 's'}" if self.graph is not None else ""
        return f"<Job {self.name} ({self.kind}{size})>"

    # -- running and inspecting -------------------------------------------------------------

    def run(
        self,
        run_config: Mapping[str, Any] | RunConfig | Config | None = None,
        *,
        selection: str | Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
        instance: Instance | None = None,
        raise_on_error: bool = True,
        input_values: Mapping[str, Any] | None = None,
        executor: Any = None,
        partition: str | None = None,
        interval: Any = None,
        resources: Mapping[str, Any] | None = None,
        version: int | str | None = None,
    ) -> RunResult:
        """Run the job in this process and record the run.

        Args:
            run_config: ``{"tasks": {key: {"config": ...}}, "config": ..., "resources": ...}``,
                or a ``RunConfig``; values may be ``Config`` instances. Laid over the
                job's ``config=`` field by field. With ``config=`` a ``ConfigMapping``,
                the simplified config instead: a dict of its fields or its ``Config``.
            selection: run only these tasks (``"*t"``, ``"t+"``...; workflows only).
            tags: added to the run's tags.
            instance: where the run is recorded (default: ``Instance.default()``).
            raise_on_error: raise the failing task's own exception when the run fails.
            input_values: outputs of unselected upstream tasks, by task key.
            executor: ``"in_process"`` (default), ``"multiprocess"``, ``"dask"``, or an
                executor object; overrides the job's ``executor=``.
            partition: the key of the job's partitions to process
                (``context.partition``), e.g. ``"eu"`` or ``"2024-01-03"``.
            interval: the ``(start, end)`` the run processes (``context.interval``),
                as dates, datetimes or ISO strings; UTC unless they say otherwise.
            resources: objects laid over the job's resources for this run only, by
                key (a test's ``MagicMock`` reaches the task as the same object).
            version: run this job's code as deployed in version ``N`` (or ``"latest"``,
                the newest version), not the code loaded here; the run records it.

        Returns:
            The ``RunResult``, also when the run failed and ``raise_on_error`` is false.

        Raises:
            ExecutionError: the job's ``expose`` says ``manual=False``.
        """
        self.check_manual("job.run()")
        if resources is not None and not isinstance(resources, Mapping):
            raise DefinitionError(
                f"{self.name}.run(resources=...): expected a dict of resources by key, got "
                f"{type(resources).__name__}"
            )
        return run_facade.run(
            self.to_job(resources=resources) if resources and version is None else self,
            run_config=self._run_config(run_config),
            selection=selection,
            tags=tags,
            instance=instance,
            raise_on_error=raise_on_error,
            input_values=input_values,
            executor=executor,
            partition=partition,
            interval=interval,
            version=version,
            resources=resources if version is not None else None,
        )

    def _run_config(self, run_config: Any) -> Any:
        """A run's config as the run checks it: a dict, or the simplified config of a
        ``ConfigMapping`` as given (mapped when the run's config is checked)."""
        if run_config is None or self.config_mapping is not None:
            return run_config
        return as_config_dict(run_config, "run config")

    def rerun(
        self,
        run_id: str,
        full: bool = False,
        *,
        run_config: Mapping[str, Any] | RunConfig | Config | None = None,
        instance: Instance | None = None,
        raise_on_error: bool = True,
        executor: Any = None,
        version: int | str | None = None,
    ) -> RunResult:
        """Run again from a previous run.

        With ``full=False`` only the failed and not-run tasks and everything
        downstream of them execute; tasks that succeeded are ``reused`` from
        their stored results. ``full=True`` executes everything again.

        ``run_config`` replaces the run's config (whole, as ``run()`` takes
        it); tasks whose config or resources it changes run again too, with
        everything downstream (a ``@job`` body with changed config runs in
        full). A run that succeeded has nothing to rerun from failure: its
        rerun raises ``ExecutionError`` unless ``full`` or new config is given.

        A run of a deployed version reruns that version's code (not this job's);
        ``version`` picks another: ``"latest"`` (the version active in the run's
        environment) or a number.
        """
        return run_facade.rerun(
            self,
            run_id,
            full=full,
            run_config=self._run_config(run_config),
            instance=instance,
            raise_on_error=raise_on_error,
            executor=executor,
            version=version,
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

        For time partitions, ``start`` and ``end`` pick the keys whose period
        starts between them (every complete one when left out). The scheduler
        daemon starts the runs within the job's concurrency; what a successful
        run covers, or a run already queued, is skipped.
        See ``conveyor.scheduler.backfill.backfill``.
        """
        return run_facade.backfill(self, start, end, partitions=partitions, instance=instance)

    def runs(
        self,
        limit: int = 20,
        status: str | None = None,
        *,
        start_time: datetime | float | str | None = None,
        end_time: datetime | float | str | None = None,
        instance: Instance | None = None,
    ) -> list[RunRecord]:
        """The most recent runs of this job, newest first.

        ``start_time``/``end_time`` keep the runs that started in ``[start_time,
        end_time)``: datetimes (naive is UTC), UTC epoch seconds or ISO strings.
        """
        return run_facade.runs(
            self,
            limit=limit,
            status=status,
            instance=instance,
            start_time=start_time,
            end_time=end_time,
        )

    def run_details(self, run_id: str, *, instance: Instance | None = None) -> RunDetails:
        """A run with its tasks: states, attempts, times, dependencies and the
        ``resources`` (cpu, memory) each ran with; ``None`` for a run of another
        version of the job, whose sizes were not recorded."""
        return run_facade.run_details(self, run_id, instance=instance)

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
        return run_facade.logs(
            self, run_id, task_name, stderr=stderr, lines=lines, instance=instance
        )

    def result(self, run_id: str, task_name: str, *, instance: Instance | None = None) -> Any:
        """The stored output of a task in a run."""
        return run_facade.result(self, run_id, task_name, instance=instance)


def _decorator(kind: JobKind, fn: Callable[..., Any] | None, options: JobArgs) -> Any:
    if fn is not None:
        return Job(fn, kind=kind, **options)

    def decorate(f: Callable[..., Any]) -> Job:
        return Job(f, kind=kind, **options)

    return decorate


@overload
def workflow(fn: Callable[..., Any], /) -> Job: ...
@overload
def workflow(
    fn: None = None, /, **options: Unpack[JobArgs]
) -> Callable[[Callable[..., Any]], Job]: ...
def workflow(fn: Callable[..., Any] | None = None, /, **options: Unpack[JobArgs]) -> Any:
    """Make a job from a function whose body composes task calls into a static graph.

    Works bare (``@workflow``) or with options: ``name``, ``description``,
    ``tags``, ``resources``, ``retry`` (default for its tasks), ``trigger``,
    ``schedule``, ``execute``, ``catchup``, ``require``, ``freshness``,
    ``refresh``, ``pool``, ``partitions``, ``interval``, ``incremental_mode``
    (or dlt's ``allow_external_schedulers=True``), ``executor``, ``on_success``,
    ``on_failure``, ``access``, and dlt's ``section``, ``spec``, ``deliver``,
    ``expose`` (``tags``, ``starred``, ``manual``, ``display_name``) and
    ``display_name``; Dagster's ``metadata``, ``owners``, ``run_tags`` and the
    job-level task hooks ``on_task_success`` and ``on_task_failure``; Datatailr's
    ``fail_after`` and ``expire_after`` (durations such as ``"2h"``).
    The body runs once, now; an exception in it propagates unchanged.
    """
    return _decorator("workflow", fn, options)


# Dagster's ``@graph``: a workflow is a graph, run alone or called inside another workflow.
graph = workflow


@overload
def job(fn: Callable[..., Any], /) -> Job: ...
@overload
def job(fn: None = None, /, **options: Unpack[JobArgs]) -> Callable[[Callable[..., Any]], Job]: ...
def job(fn: Callable[..., Any] | None = None, /, **options: Unpack[JobArgs]) -> Any:
    """Make a job from a function whose body is the work and runs at run time.

    Takes the same options as ``@workflow``. The body receives ``context`` by
    name or type, resources by parameter name, and its other parameters as
    config validated from the signature. Inside it, calling a task runs it as
    a recorded step; ``task.submit()`` returns a future; ``task.map()`` fans out.
    """
    return _decorator("job", fn, options)
