"""Stable version hashes of definitions: the same definition always hashes the same.

A job's version is what a deployment compares to decide whether the
definitions changed, and what each run records; ``job_version`` is the one
place that says what goes into it.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from conveyor.definitions.task import Task

if TYPE_CHECKING:
    from conveyor.definitions.job import Job


def function_fingerprint(fn: Callable[..., Any]) -> str:
    """The source of ``fn``, or its code object's bytes where no source exists (a REPL)."""
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        if code is None:
            return repr(fn)
        return f"{code.co_code.hex()}|{code.co_consts!r}|{code.co_names!r}"


def stable_repr(value: Any) -> str:
    """A repr that does not change between processes for common values.

    Objects whose repr holds a memory address fall back to their type's name.
    """
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{stable_repr(k)}: {stable_repr(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list | tuple):
        return f"{type(value).__name__}(" + ", ".join(stable_repr(v) for v in value) + ")"
    if isinstance(value, set | frozenset):
        return "{" + ", ".join(sorted(stable_repr(v) for v in value)) + "}"
    text = repr(value)
    if " at 0x" in text:
        return f"<{type(value).__module__}.{type(value).__qualname__}>"
    return text


def digest(parts: Iterable[str]) -> str:
    """A short hex digest of the parts, in order."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:16]


def job_version(job: Job) -> str:
    """A hash of a job: its tasks, edges, options and the source of their functions."""
    parts = [
        job.kind,
        job.name,
        stable_repr(job.tags),
        repr(job.retry),
        repr(job.execute),
        stable_repr([(str(t), t.timezone) for t in job.triggers]),
        stable_repr(job.executor),
        stable_repr({k: _resource_fingerprint(v) for k, v in job.resources.items()}),
    ]
    # Options added later count only when set, so that older versions stay as they were.
    extra = {
        "pool": job.pool,
        "partitions": job.partitions,
        "interval": job.interval,
        "mode": None if job.incremental_mode == "latest" else job.incremental_mode,
        "config": stable_repr(job.default_config) if job.default_config else None,
        "env": stable_repr(job.env_vars) if job.env_vars else None,
        "fail_after": job.fail_after,
        "expire_after": job.expire_after,
        "run_tags": stable_repr(job.run_tags) if job.run_tags != job.tags else None,
        "metadata": stable_repr(job.metadata) if job.metadata else None,
        "owners": stable_repr(job.owners) if job.owners else None,
        "task_hooks": stable_repr(
            [
                getattr(h, "__qualname__", repr(h))
                for h in (*job.on_task_success, *job.on_task_failure)
            ]
        )
        if job.on_task_success or job.on_task_failure
        else None,
    }
    parts += [f"{k}={v}" for k, v in extra.items() if v is not None]
    parts.append(function_fingerprint(job.fn))
    if job.partition_config is not None:
        parts.append("partition_config " + function_fingerprint(job.partition_config.fn))
    if job.config_mapping is not None:
        parts.append("config_mapping " + function_fingerprint(job.config_mapping.config_fn))
    for t in job_tasks(job):
        parts.append(
            f"task {t.name} cpu={t.cpu} memory={t.memory} timeout={t.timeout} "
            f"retry={t.retry!r} tags={stable_repr(t.tags)}"
            + (f" pool={t.pool}" if t.pool is not None else "")
            + (f" env={stable_repr(t.env_vars)}" if t.env_vars else "")
        )
        parts.append(function_fingerprint(t.fn))
    if job.graph is not None:
        for n in job.graph.nodes.values():
            parts.append(
                f"node {n.key} {n.task.name} deps={n.deps} "
                f"args={stable_repr(n.args)} kwargs={stable_repr(n.kwargs)}"
            )
    return digest(parts)


def job_tasks(job: Job) -> list[Task[Any]]:
    """The tasks of a job: its graph's, or for a ``@job`` the tasks its body names."""
    if job.graph is not None:
        unique = {id(n.task): n.task for n in job.graph.nodes.values()}
        return list(unique.values())
    code = getattr(job.fn, "__code__", None)
    names = code.co_names if code is not None else ()
    globs = getattr(job.fn, "__globals__", {})
    return [globs[n] for n in sorted(set(names)) if isinstance(globs.get(n), Task)]


def _resource_fingerprint(value: Any) -> str:
    if isinstance(value, BaseModel):
        return f"{type(value).__qualname__}{stable_repr(value.model_dump())}"
    return type(value).__qualname__
