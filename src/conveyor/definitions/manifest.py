"""A job's manifest: dlt's ``to_job_definition()``, a JSON-serializable dict of a job.

``job_definition(job)`` (``job.to_job_definition()``) says what a deployment
needs to know of a job without importing its code: where it is (the entry
point), when it runs (triggers, interval, freshness), how (execute, require)
and how it is shown (expose), what it delivers to, and the config it reads:
each key with the JSON schema of the config model it comes from. Every value
is plain JSON (strings, numbers, booleans, lists, dicts, ``None``), so
``json.loads(json.dumps(m)) == m``.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from conveyor.definitions.params import config_param
from conveyor.definitions.partitions import StaticPartitions

if TYPE_CHECKING:
    from conveyor.definitions.job import Job

MANIFEST_VERSION = 1


def job_definition(job: Job) -> dict[str, Any]:
    """The manifest of ``job`` (see the module docstring); every value is plain JSON."""
    o = job.options
    return {
        "manifest_version": MANIFEST_VERSION,
        "job_ref": f"jobs.{o.section}.{job.name}",
        "name": job.name,
        "display_name": job.display_name,
        "description": job.description,
        "section": o.section,
        "entry_point": _entry_point(job),
        "triggers": [str(t) for t in job.triggers],
        "schedule_timezones": {str(t): t.timezone for t in job.triggers if t.timezone},
        "execute": {
            "timeout": o.execute.timeout,
            "concurrency": o.execute.concurrency,
            "retries": o.execute.retries,
        },
        "fail_after": o.fail_after,
        "expire_after": o.expire_after,
        "expose": o.expose.as_dict(),
        "require": _plain(o.require),
        "deliver": _deliver(o.deliver),
        "interval": None
        if o.interval is None
        else {
            "start": o.interval.start.isoformat(),
            "end": None if o.interval.end is None else o.interval.end.isoformat(),
        },
        "incremental_mode": o.incremental_mode,
        "allow_external_schedulers": o.incremental_mode == "interval",
        "freshness": [str(g) for g in o.freshness],
        "refresh": o.refresh,
        "tags": dict(o.tags),
        "run_tags": dict(job.run_tags),
        "metadata": dict(o.metadata),
        "owners": list(o.owners),
        "pool": o.pool,
        "partitions": _partitions(o.partitions),
        "config": _config(job),
    }


def _partitions(partitions: object) -> Any:
    """A static set as its keys; a time or multi-dimensional set (whose keys grow with
    time) as it is written, e.g. ``DailyPartitions(start='2024-01-01', timezone='UTC')``."""
    if partitions is None:
        return None
    if isinstance(partitions, StaticPartitions):
        return list(partitions.keys)
    return repr(partitions)


def _entry_point(job: Job) -> dict[str, Any]:
    fn = job.fn
    try:
        file: str | None = inspect.getfile(fn)
    except (TypeError, OSError):
        file = None
    return {
        "module": getattr(fn, "__module__", None),
        "function": getattr(fn, "__qualname__", job.name),
        "file": file,
        "job_type": "batch",
        "kind": job.kind,
        "category": "pipeline" if job.options.deliver is not None else "job",
    }


def _deliver(target: Any) -> dict[str, Any] | None:
    """What the job delivers to, named: a dlt pipeline by its ``pipeline_name``."""
    if target is None:
        return None
    kind = type(target)
    out: dict[str, Any] = {"type": f"{kind.__module__}.{kind.__qualname__}"}
    for attr in ("pipeline_name", "name", "section"):
        value = getattr(target, attr, None)
        if isinstance(value, str):
            out[attr] = value
    return out


def _config(job: Job) -> dict[str, Any]:
    """The config the job reads: its keys, each model's JSON schema, and where they live.

    ``keys`` are the fields of the job's own config (a ``@job`` body's
    parameters or ``Config`` class, and ``spec=``); ``lookup`` is the order
    dlt looks a key up in (``<key>`` stands for each of them); ``tasks`` has
    the schema of each task's ``Config`` in a workflow, by task key.
    """
    o = job.options
    models: dict[str, type[BaseModel]] = {}
    if job.config_model is not None:
        models["config"] = job.config_model
    if o.spec is not None and issubclass(o.spec, BaseModel):
        models["spec"] = o.spec
    keys: list[str] = []
    for model in models.values():
        keys.extend(k for k in model.model_fields if k not in keys)
    tasks: dict[str, Any] = {}
    if job.graph is not None:
        for node in job.graph.nodes.values():
            cfg = config_param(node.task.params)
            annotation = None if cfg is None else cfg.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                tasks[node.key] = _schema(annotation)
    section, name = o.section, job.name
    return {
        "keys": keys,
        "schema": _schema(models["config"]) if "config" in models else None,
        "spec": _schema(models["spec"]) if "spec" in models else None,
        "tasks": tasks,
        "lookup": [
            f"jobs.{section}.{name}.<key>",
            f"jobs.{section}.<key>",
            f"jobs.{name}.<key>",
            "jobs.<key>",
            "<key>",
        ],
    }


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema; a field pydantic cannot describe is left open (``{}``)."""
    try:
        schema = model.model_json_schema()
    except Exception:  # PydanticInvalidForJsonSchema and kin: arbitrary types
        schema = {
            "title": model.__name__,
            "type": "object",
            "properties": {k: {} for k in model.model_fields},
        }
    return _plain(schema)  # type: ignore[no-any-return]


def _plain(value: Any) -> Any:
    """``value`` as plain JSON: tuples become lists, other objects their ``str``."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return str(value)
