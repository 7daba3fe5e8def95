"""``@pipeline_run(pipeline)``: a ``@job`` bound to a dlt pipeline (dlt's decorator of that name).

The decorated function is the job's body and runs the pipeline (``pipeline.run(source())``);
it may declare a ``pipeline`` parameter to receive it. What it adds to ``@job`` happens when
a run executes, in ``conveyor.execution.dlt_runs``: the run's interval reaches every
``dlt.sources.incremental`` that allows external schedulers (as dlt's own launcher passes
it), and the pipeline's load info becomes the run's result and is written to its log.

Definitions do no I/O, so nothing here imports dlt: a pipeline is recognised by its
``pipeline_name`` (dlt's ``SupportsPipeline``), and a name is resolved at run time. The
body reaches ``dlt_runs`` through ``run_facade``, the definitions' one door upward.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from conveyor.definitions import run_facade
from conveyor.definitions.context import RunContext
from conveyor.definitions.job import Job
from conveyor.definitions.job_options import JobArgs
from conveyor.definitions.schedule import Schedule
from conveyor.errors import DefinitionError

__all__ = ["PipelineBody", "pipeline_name", "pipeline_run"]

PIPELINE_PARAM = "pipeline"
_CONTEXT_PARAM = "context"


def pipeline_name(pipeline: object) -> str:
    """The name of ``pipeline``: a dlt pipeline's ``pipeline_name``, or the name given."""
    if isinstance(pipeline, str):
        return pipeline
    return str(pipeline.pipeline_name)  # type: ignore[attr-defined]


class PipelineBody:
    """The body of a ``@pipeline_run`` job: the user's function, called by ``dlt_runs``.

    It stands in for the function towards ``@job``: the same name, module, source and
    globals, and a signature without ``pipeline`` (Conveyor fills that one) and with a
    ``context`` (to read the run's interval) when the function has none.
    """

    def __init__(
        self, fn: Callable[..., Any], pipeline: object, allow_external_schedulers: bool
    ) -> None:
        self.fn = fn
        self.pipeline = pipeline
        self.allow_external_schedulers = allow_external_schedulers
        signature = inspect.signature(fn)
        params = list(signature.parameters.values())
        self.wants_pipeline = PIPELINE_PARAM in signature.parameters
        self.context_param = next(
            (p.name for p in params if _is_context_param(p)),
            None,
        )
        kept = [p for p in params if p.name != PIPELINE_PARAM]
        if self.context_param is None:
            if _CONTEXT_PARAM in signature.parameters:
                raise DefinitionError(
                    f"@pipeline_run {fn.__name__!r}: its parameter 'context' is annotated as "
                    f"something other than RunContext; rename it or annotate it RunContext"
                )
            position = next(
                (i for i, p in enumerate(kept) if p.kind is inspect.Parameter.VAR_KEYWORD),
                len(kept),
            )
            kept.insert(
                position,
                inspect.Parameter(
                    _CONTEXT_PARAM, inspect.Parameter.KEYWORD_ONLY, annotation=RunContext
                ),
            )
        self.__signature__ = signature.replace(parameters=_ordered(kept))
        self.__name__ = fn.__name__
        self.__qualname__ = getattr(fn, "__qualname__", fn.__name__)
        self.__module__ = fn.__module__
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        # Read by the parameter classifier (string annotations) and the version hash.
        self.__globals__ = getattr(fn, "__globals__", {})
        self.__code__ = getattr(fn, "__code__", None)

    @property
    def pipeline_name(self) -> str:
        return pipeline_name(self.pipeline)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Run by conveyor.execution.dlt_runs, reached as every call from a definition into
        # the running layers is: through the run facade.
        return run_facade.run_pipeline_body(self, args, kwargs)

    def call_user_function(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], pipeline: object
    ) -> Any:
        """Call the decorated function with what it declared of ``kwargs`` and the pipeline."""
        given = dict(kwargs)
        if self.context_param is None:
            given.pop(_CONTEXT_PARAM, None)
        if self.wants_pipeline:
            given[PIPELINE_PARAM] = pipeline
        return self.fn(*args, **given)

    def context_of(self, kwargs: Mapping[str, Any]) -> RunContext | None:
        """The run's context among the body's arguments, if the engine passed one."""
        name = self.context_param or _CONTEXT_PARAM
        value = kwargs.get(name)
        return value if isinstance(value, RunContext) else None

    def __repr__(self) -> str:
        return f"<pipeline_run {self.__name__} of pipeline {self.pipeline_name!r}>"


def _is_context_param(p: inspect.Parameter) -> bool:
    annotation = p.annotation
    if isinstance(annotation, type) and issubclass(annotation, RunContext):
        return True
    if isinstance(annotation, str) and annotation.rsplit(".", 1)[-1] in (
        "RunContext",
        "TaskContext",
    ):
        return True
    return p.name == _CONTEXT_PARAM and annotation is inspect.Parameter.empty


def _ordered(params: list[inspect.Parameter]) -> list[inspect.Parameter]:
    """Parameters in an order ``inspect.Signature`` accepts (stable within each kind)."""
    return sorted(params, key=lambda p: int(p.kind))


def _check_pipeline(pipeline: object) -> None:
    if isinstance(pipeline, str):
        if not pipeline.strip():
            raise DefinitionError(
                "@pipeline_run(''): give the dlt pipeline, or its name, e.g. "
                "@pipeline_run(dlt.pipeline('events', destination='duckdb'))"
            )
        return
    if not isinstance(getattr(pipeline, "pipeline_name", None), str) or not callable(
        getattr(pipeline, "run", None)
    ):
        raise DefinitionError(
            f"@pipeline_run({pipeline!r}): the first argument must be a dlt pipeline "
            f"(dlt.pipeline(...)) or a pipeline's name, e.g. "
            f"@pipeline_run(dlt.pipeline('events', destination='duckdb'))"
        )


def pipeline_run(
    pipeline: Any,
    /,
    name: str | None = None,
    section: str | None = None,
    trigger: str | Schedule | Sequence[str | Schedule] | None = None,
    execute: Mapping[str, Any] | None = None,
    expose: Mapping[str, Any] | None = None,
    require: Mapping[str, Any] | None = None,
    interval: Mapping[str, Any] | None = None,
    freshness: str | Sequence[str] | None = None,
    allow_external_schedulers: bool = False,
    refresh: str = "auto",
    spec: type | None = None,
    **options: Any,
) -> Callable[[Callable[..., Any]], Job]:
    """Make a job that runs a dlt pipeline: dlt's ``@pipeline_run``.

    The function is the job's body; it runs the pipeline, e.g. ``return
    pipeline.run(events())``, and may take a ``pipeline`` parameter to receive it (and
    ``context``, config and resources as any ``@job`` body). When the run has an
    interval (a timed trigger, ``interval=``, a backfill), each
    ``dlt.sources.incremental(..., allow_external_schedulers=True)`` in the pipeline's
    sources loads exactly ``[start, end)``; ``allow_external_schedulers=True`` here
    makes every incremental of the run join it. The pipeline's load info (load ids, rows
    per table, new tables and columns) is the run's result and is written to its log.

    Args:
        pipeline: a dlt pipeline (``dlt.pipeline(...)``) or a pipeline's name (the body
            then receives ``dlt.pipeline(name)``, configured from dlt's config).
        name: the job's name; the function's name unless given.
        section: the job's config section.
        trigger: when the job runs (``"every:1h"``, a cron string, ``job.success:...``).
        execute: run-level limits (``timeout``, ``concurrency``).
        expose: how the UI shows it (``tags``, ``starred``, ``manual``, ``display_name``).
        require: what the job needs of where it runs.
        interval: the span of time the job covers, ``{"start": ..., "end": ...}``; the
            scheduler then walks it one period per run (``incremental_mode="interval"``).
        freshness: gates on upstream jobs.
        allow_external_schedulers: join every incremental of the run to its interval,
            also those that did not ask to; the scheduler walks the job's interval.
        refresh: how a refresh travels through the job.
        spec: a config spec class.
        **options: any other ``@job`` option (``tags``, ``catchup``, ``resources``...).

    Returns:
        A decorator that makes the function a ``Job`` whose ``options.deliver`` is the
        pipeline (``{"pipeline_name": name}`` for a name, as dlt's manifest has it).
    """
    _check_pipeline(pipeline)
    if not isinstance(allow_external_schedulers, bool):
        raise DefinitionError(
            f"@pipeline_run({pipeline_name(pipeline)!r}): allow_external_schedulers="
            f"{allow_external_schedulers!r} must be True or False"
        )
    if "deliver" in options:
        raise DefinitionError(
            f"@pipeline_run({pipeline_name(pipeline)!r}): deliver= is set by @pipeline_run "
            f"itself (the pipeline); remove it"
        )
    given: dict[str, Any] = {
        "name": name,
        "section": section,
        "trigger": trigger,
        "execute": execute,
        "expose": expose,
        "require": require,
        "interval": interval,
        "freshness": freshness,
        "refresh": refresh,
        "spec": spec,
        **options,
    }
    if allow_external_schedulers:  # @job reads it as incremental_mode="interval"
        given["allow_external_schedulers"] = True
    elif interval is not None and "incremental_mode" not in given:
        given["incremental_mode"] = "interval"
    given = {k: v for k, v in given.items() if v is not None}
    known = set(JobArgs.__annotations__) - {"deliver"}
    unknown = sorted(set(given) - known)
    if unknown:
        raise DefinitionError(
            f"@pipeline_run({pipeline_name(pipeline)!r}): unknown option(s) "
            f"{', '.join(unknown)}; it takes @job's options: {', '.join(sorted(known))}"
        )

    def decorate(fn: Callable[..., Any]) -> Job:
        if not callable(fn):
            raise DefinitionError(f"@pipeline_run decorates functions, got {fn!r}")
        body = PipelineBody(fn, pipeline, allow_external_schedulers)
        # A name goes in as dlt's deliver spec, {"pipeline_name": ...}; a pipeline as itself.
        deliver = {"pipeline_name": pipeline} if isinstance(pipeline, str) else pipeline
        return Job(body, kind="job", deliver=deliver, **given)

    return decorate
