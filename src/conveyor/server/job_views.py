"""Read models of jobs shared by the API and the UI: a job's summary, graph, config
schema and triggers with their next fire times, built from the loaded workspace.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from conveyor.definitions.durations import format_duration
from conveyor.definitions.job import Job
from conveyor.definitions.params import config_param
from conveyor.definitions.partitions import StaticPartitions, partition_label, shown_keys
from conveyor.definitions.resources import Resource
from conveyor.definitions.sensor import Sensor
from conveyor.definitions.triggers import CHAIN_TYPES, Trigger
from conveyor.server.run_views import RunSummary, run_summary
from conveyor.storage.instance import Instance
from conveyor.storage.records import RunRecord
from conveyor.storage.trigger_state import sensor_trigger

# How many recent runs a job's summary draws its durations (sparkline) from.
RECENT_RUNS = 20
# How many next fire times a trigger shows.
NEXT_TIMES = 3


class TaskOptions(BaseModel):
    """A task's execution options, as its graph node shows them."""

    retries: int = Field(description="tries after the first one")
    retry_delay: float | None
    retry_backoff: str | None
    timeout: float | None = Field(description="seconds")
    cpu: float | None
    memory: int | None = Field(description="bytes")
    pool: str | None
    tags: dict[str, str]


class GraphNode(BaseModel):
    key: str
    task_name: str
    description: str | None
    takes_config: bool
    options: TaskOptions


class GraphEdge(BaseModel):
    source: str
    target: str
    data: bool = Field(description="False when the edge only orders (a >> b)")


class JobGraph(BaseModel):
    """A workflow's static graph; a ``@job`` has one node, its body."""

    nodes: list[GraphNode]
    edges: list[GraphEdge]


class TriggerView(BaseModel):
    """A trigger of a job, with its next fire times when it is timed."""

    trigger: str
    type: str
    expr: str
    timezone: str | None
    description: str
    next_fire_times: list[datetime]


class JobSummary(BaseModel):
    """A job as the jobs list shows it."""

    name: str
    display_name: str | None = Field(description="the name people read (expose display_name)")
    kind: str = Field(description="workflow, job or pipeline (a job that delivers to one)")
    starred: bool = Field(description="listed first (expose starred)")
    manual: bool = Field(description="whether people may launch it (expose manual)")
    description: str | None
    tags: dict[str, str]
    triggers: list[str]
    last_run: RunSummary | None
    recent_durations: list[float | None] = Field(description="seconds, oldest first")


class JobDetail(JobSummary):
    """A job as its page shows it."""

    place: str | None = Field(description="file:attribute the job is defined at")
    metadata: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="shown on the page; http(s):// strings are links"
    )
    owners: list[str] = Field(
        default_factory=list, description="teams (team:<name>), emails and user names"
    )
    run_tags: dict[str, str] = Field(
        default_factory=dict, description="the tags each run gets (run_tags=, else tags)"
    )
    graph: JobGraph
    config_schema: dict[str, Any]
    trigger_details: list[TriggerView]
    upstream: list[str] = Field(description="jobs whose runs trigger this one (chains)")
    downstream: list[str] = Field(description="jobs this one's runs trigger (chains)")
    partitions: list[str] | None = Field(
        description="its partition keys: all of a static set, the latest 500 of a time set"
    )
    partitions_label: str | None = Field(
        default=None, description="a time or multi-dimensional set as written; null otherwise"
    )
    interval_start: datetime | None
    interval_end: datetime | None
    incremental_mode: str
    pool: str | None
    execute: dict[str, Any]


# -- runs --------------------------------------------------------------------------------------


def job_summary(
    instance: Instance,
    job: Job,
    recent: list[RunRecord] | None = None,
    sensors: Iterable[Sensor] = (),
) -> JobSummary:
    """``job`` with its last run and its recent runs' durations; ``sensors``: the
    workspace's, those that ask for runs of ``job`` are among its triggers."""
    runs = recent if recent is not None else instance.runs(job.name, limit=RECENT_RUNS)
    expose = job.options.expose
    return JobSummary(
        name=job.name,
        display_name=expose.display_name,
        kind="pipeline" if job.options.deliver is not None else job.kind,
        starred=expose.starred,
        manual=expose.manual,
        description=job.description,
        tags=job.tags,
        triggers=[str(t) for t in job.triggers]
        + [sensor_trigger(x.name) for x in sensors_of(job, sensors)],
        last_run=run_summary(runs[0]) if runs else None,
        recent_durations=[r.duration for r in reversed(runs)],
    )


def job_summaries(
    instance: Instance,
    jobs: dict[str, Job],
    q: str | None = None,
    tags: list[str] | None = None,
    sensors: Iterable[Sensor] = (),
) -> list[JobSummary]:
    """The jobs, starred first then by name, that match ``q`` (in the name, display name
    or description, any case) and carry every tag of ``tags`` (``key`` or ``key=value``)."""
    wanted = [t.partition("=") for t in tags or []]
    out = []
    for name in sorted(jobs, key=lambda n: (not jobs[n].options.expose.starred, n)):
        job = jobs[name]
        shown = job.options.expose.display_name or ""
        text = f"{job.name}\n{shown}\n{job.description or ''}".lower()
        if q and q.strip().lower() not in text:
            continue
        if any(k not in job.tags or (eq and job.tags[k] != v) for k, eq, v in wanted):
            continue
        out.append(job_summary(instance, job, sensors=sensors))
    return out


def task_options(job: Job, task: Any) -> TaskOptions:
    retry = task.retry if task.retry is not None else job.retry
    return TaskOptions(
        retries=retry.max_retries if retry is not None else 0,
        retry_delay=retry.delay if retry is not None else None,
        retry_backoff=retry.backoff if retry is not None else None,
        timeout=task.timeout,
        cpu=task.cpu,
        memory=task.memory,
        pool=task.pool,
        tags=task.tags,
    )


def job_graph(job: Job) -> JobGraph:
    """The job's graph: its task nodes with their options, and the edges between them."""
    if job.graph is None:
        node = GraphNode(
            key=job.name,
            task_name=job.name,
            description=job.description,
            takes_config=job.config_model is not None,
            options=TaskOptions(
                retries=job.retry.max_retries if job.retry is not None else 0,
                retry_delay=job.retry.delay if job.retry is not None else None,
                retry_backoff=job.retry.backoff if job.retry is not None else None,
                timeout=job.execute.timeout,
                cpu=None,
                memory=None,
                pool=job.pool,
                tags=job.tags,
            ),
        )
        return JobGraph(nodes=[node], edges=[])
    nodes, edges = [], []
    for key, n in job.graph.nodes.items():
        nodes.append(
            GraphNode(
                key=key,
                task_name=n.task.name,
                description=n.task.description,
                takes_config=config_param(n.task.params) is not None,
                options=task_options(job, n.task),
            )
        )
        edges += [GraphEdge(source=d, target=key, data=d in n.upstream) for d in n.deps]
    return JobGraph(nodes=nodes, edges=edges)


def _model_schema(model: Any, defs: dict[str, Any], default: Any = None) -> dict[str, Any]:
    """``model``'s JSON schema, its ``$defs`` moved into ``defs`` (refs stay valid at the root)."""
    try:
        schema: dict[str, Any] = model.model_json_schema()
    except Exception as e:
        return {"description": f"{model.__name__} cannot be described as JSON schema: {e}"}
    defs.update(schema.pop("$defs", {}))
    if default is not None:
        schema["default"] = default
    return schema


def config_schema(job: Job) -> dict[str, Any]:
    """The JSON schema of a run config of ``job``: ``tasks.<key>.config`` for a workflow's
    tasks, ``config`` for a ``@job`` body, ``resources.<name>`` for its resources; for a
    job with a ``ConfigMapping``, the mapping's simplified schema."""
    if job.config_mapping is not None:
        mapped = job.config_mapping.schema.model_json_schema()
        mapped["title"] = f"run config of {job.name} ({job.config_mapping.schema.__name__})"
        return mapped
    defs: dict[str, Any] = {}
    props: dict[str, Any] = {}
    if job.graph is not None:
        tasks = {}
        for key, node in job.graph.nodes.items():
            p = config_param(node.task.params)
            if p is not None:
                tasks[key] = {
                    "type": "object",
                    "properties": {"config": _model_schema(p.annotation, defs)},
                    "additionalProperties": False,
                }
        if tasks:
            props["tasks"] = {"type": "object", "properties": tasks, "additionalProperties": False}
    elif job.config_model is not None:
        props["config"] = _model_schema(job.config_model, defs)
    resources = {}
    for name, value in job.resources.items():
        if isinstance(value, Resource):
            try:
                current = value.model_dump(mode="json")
            except Exception:
                current = None
            resources[name] = _model_schema(type(value), defs, current)
    if resources:
        props["resources"] = {
            "type": "object",
            "properties": resources,
            "additionalProperties": False,
        }
    schema: dict[str, Any] = {
        "title": f"run config of {job.name}",
        "type": "object",
        "properties": props,
        "additionalProperties": False,
    }
    if defs:
        schema["$defs"] = defs
    return schema


def next_fire_times(job: Job, trigger: Trigger, now: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times of a timed trigger after ``now`` (none after the end
    of the job's ``interval=``); empty for a trigger that is not timed."""
    from conveyor.scheduler.timing import next_after

    out: list[datetime] = []
    if not trigger.is_timed:
        return out
    moment = now.timestamp()
    end = job.interval.end if job.interval is not None else None
    while len(out) < count:
        upcoming = next_after(trigger, moment)
        if upcoming is None:
            break
        at = datetime.fromtimestamp(upcoming, UTC)
        if end is not None and at > end:
            break
        out.append(at)
        moment = upcoming
    return out


def describe_trigger(trigger: Trigger) -> str:
    """A trigger in words: ``at 08:00 on Monday`` for a cron, else the trigger itself."""
    if trigger.type == "schedule":
        from conveyor.definitions.cron_text import describe

        try:
            return describe(trigger.expr)
        except Exception:
            return trigger.expr
    if trigger.type == "every":
        return f"every {trigger.expr}"
    if trigger.type in CHAIN_TYPES:
        outcome = trigger.type.split(".", 1)[1]
        return f"when a run of {trigger.expr} ends in {outcome}"
    return str(trigger)


def sensors_of(job: Job, sensors: Iterable[Sensor]) -> list[Sensor]:
    """The sensors of ``sensors`` that ask for runs of ``job``."""
    return [s for s in sensors if s.job_name == job.name]


def trigger_views(
    job: Job,
    now: datetime | None = None,
    count: int = NEXT_TIMES,
    sensors: Iterable[Sensor] = (),
) -> list[TriggerView]:
    """The job's triggers, with the next ``count`` fire times of the timed one, then the
    sensors of ``sensors`` that ask for its runs."""
    at = now or datetime.now(UTC)
    watching = [
        TriggerView(
            trigger=sensor_trigger(x.name),
            type="sensor",
            expr=x.name,
            timezone=None,
            description=f"sensor {x.name}, evaluated every {format_duration(x.interval)}",
            next_fire_times=[],
        )
        for x in sensors_of(job, sensors)
    ]
    return [
        TriggerView(
            trigger=str(t),
            type=t.type,
            expr=t.expr,
            timezone=t.timezone if t.type == "schedule" else ("UTC" if t.is_timed else None),
            description=describe_trigger(t),
            next_fire_times=next_fire_times(job, t, at, count),
        )
        for t in job.triggers
    ] + watching


def chains(jobs: dict[str, Job], job: Job) -> tuple[list[str], list[str]]:
    """The jobs upstream of ``job`` (its chain triggers name them) and downstream of it
    (their chain triggers name it)."""
    up = sorted({t.expr for t in job.triggers if t.type in CHAIN_TYPES})
    down = sorted(
        other.name
        for other in jobs.values()
        if any(t.type in CHAIN_TYPES and t.expr == job.name for t in other.triggers)
    )
    return up, down


def job_detail(
    instance: Instance,
    jobs: dict[str, Job],
    job: Job,
    place: str | None = None,
    sensors: Iterable[Sensor] = (),
) -> JobDetail:
    """Everything a job's page shows of it, but its runs (list those with ``RunFilter``)."""
    up, down = chains(jobs, job)
    span = job.interval
    return JobDetail(
        **job_summary(instance, job, sensors=sensors).model_dump(),
        place=place,
        metadata=dict(job.metadata),
        owners=list(job.owners),
        run_tags=dict(job.run_tags),
        graph=job_graph(job),
        config_schema=config_schema(job),
        trigger_details=trigger_views(job, sensors=sensors),
        upstream=up,
        downstream=down,
        partitions=shown_keys(job.partitions),
        partitions_label=None
        if job.partitions is None or isinstance(job.partitions, StaticPartitions)
        else partition_label(job.partitions),
        interval_start=span.start if span is not None else None,
        interval_end=span.end if span is not None else None,
        incremental_mode=job.incremental_mode,
        pool=job.pool,
        execute={
            "timeout": job.execute.timeout,
            "concurrency": job.execute.concurrency,
            "retries": job.execute.retries,
            "fail after": job.fail_after,
            "expire after": job.expire_after,
        },
    )
