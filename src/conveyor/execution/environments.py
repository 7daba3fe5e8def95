"""A deployed version's jobs, as a workspace: unscoped (the version's own names) or
scoped to an environment (``prod.etl``).

Scoping gives each environment its own jobs by name, so every scheduler key (ticks,
cursors, leases, chains, sensors) is per environment with no change to the scheduler.
References between the workspace's jobs (chain triggers, freshness gates, sensors'
targets) are renamed the same way, so that ``prod.report`` follows ``prod.etl``.

Each version's files are imported as modules of their own package
(``conveyor_workspace_v<hash>``), so two versions of ``pipelines.py`` load side by side
in one process. Other modules a workspace imports by plain name (``import helpers``)
are one per process: loading a version puts its folder first on ``sys.path`` and
forgets those modules of other versions, so that the version loaded gets its own;
functions already loaded keep theirs, but an ``import`` run later, inside a task of
another version, finds the newest one.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.definitions.freshness import FreshnessGate
from conveyor.definitions.job import Job
from conveyor.definitions.sensor import Sensor
from conveyor.definitions.triggers import CHAIN_TYPES
from conveyor.errors import NotFoundError, WorkspaceError
from conveyor.execution.code_cache import cache_root, materialize
from conveyor.storage.deployments import VersionRecord
from conveyor.workspace import WORKSPACE_PREFIX, Workspace, load_file, load_folder

if TYPE_CHECKING:
    from conveyor.storage.instance import Instance

MAX_JOB_NAME = 255

_loaded: dict[tuple[str, str | None], Workspace] = {}
_lock = threading.RLock()


def version_package(digest: str) -> str:
    """The package a version's workspace modules are imported under."""
    return f"{WORKSPACE_PREFIX}v{digest[:16]}"


def version_workspace(instance: Instance, number: int) -> Workspace:
    """Version ``number``'s jobs under their own names; its origin is ``{"version": n}``.

    Raises:
        NotFoundError: no version ``number``, or its archive is missing.
        WorkspaceError: its archive was altered, or its code fails to load.
    """
    return load_version(instance, instance.deployments.version(number))


def environment_workspace(
    instance: Instance, environment: str, number: int | None = None
) -> Workspace:
    """The jobs of the version active in ``environment`` (or of version ``number``),
    each named ``<environment>.<name>``; its origin is ``{"environment", "version"}``.

    Raises:
        NotFoundError: no version is active in ``environment``, or no version ``number``.
        WorkspaceError: as for ``version_workspace``, or a scoped name is too long.
    """
    if number is None:
        active = instance.deployments.environment(environment).active_version
        if active is None:
            raise NotFoundError(
                f"no version is active in {environment!r}: deploy one with "
                f"`conveyor deploy --env {environment}`"
            )
        number = active
    return load_version(instance, instance.deployments.version(number), environment)


def load_version(
    instance: Instance, version: VersionRecord, environment: str | None = None
) -> Workspace:
    """``version``'s workspace, scoped to ``environment`` if given; loaded once per
    process for each (version, environment)."""
    key = (version.hash, environment)
    with _lock:
        found = _loaded.get(key)
        if found is not None:
            return found
        base = _loaded.get((version.hash, None))
        if base is None:
            folder = materialize(instance, version)
            base = load_entry(folder, version.entry, version.hash, cache_root(instance))
            base.origin = {"version": version.number}
            _loaded[(version.hash, None)] = base
        if environment is None:
            return base
        scoped = scope(base, environment)
        scoped.origin = {"environment": environment, "version": version.number}
        _loaded[key] = scoped
        return scoped


def load_entry(folder: Path, entry: str, digest: str, cache: Path) -> Workspace:
    """Import the workspace ``entry`` of the unpacked version ``digest`` in ``folder``.

    Raises:
        WorkspaceError: the entry is missing, or its code fails to load.
    """
    path = folder / entry
    package = version_package(digest)
    with _lock:  # sys.path and sys.modules are the process's
        _isolate(folder, cache)
        try:
            if path.is_dir():
                return load_folder(path, package=package)
            return load_file(path, package=package)
        except WorkspaceError:
            raise
        except Exception as e:
            raise WorkspaceError(f"loading {entry} failed: {type(e).__name__}: {e}") from e


def remember(version: VersionRecord, ws: Workspace) -> None:
    """Keep ``ws``, just loaded from ``version``'s files, as its workspace in this process."""
    with _lock:
        if (version.hash, None) not in _loaded:
            ws.origin = {"version": version.number}
            _loaded[(version.hash, None)] = ws


def scope(ws: Workspace, environment: str) -> Workspace:
    """``ws`` with each job and sensor named ``<environment>.<name>``, and references
    between its jobs renamed the same way."""
    names = set(ws.jobs)

    def rename(name: str) -> str:
        return f"{environment}.{name}" if name in names else name

    jobs: dict[str, Job] = {}
    for name, job in ws.jobs.items():
        scoped_name = f"{environment}.{name}"
        if len(scoped_name) > MAX_JOB_NAME:
            raise WorkspaceError(
                f"job {name!r} cannot be deployed to {environment!r}: its name there, "
                f"{environment}.<name>, would pass {MAX_JOB_NAME} characters; shorten it "
                f"(@workflow(name=...))"
            )
        jobs[scoped_name] = _scoped_job(job, scoped_name, rename)
    sensors: dict[str, Sensor] = {}
    for name, sensor in ws.sensors.items():
        copied = copy.copy(sensor)
        copied.name = f"{environment}.{name}"
        copied.job_name = rename(sensor.job_name)
        sensors[copied.name] = copied
    places = {rename(k): v for k, v in ws.places.items()}
    return Workspace(
        jobs=jobs,
        origin=dict(ws.origin),
        places=places,
        sensors=sensors,
        workloads={},  # workloads stay with the files on disk
    )


def _scoped_job(job: Job, name: str, rename: Callable[[str], str]) -> Job:
    variant = job.to_job(name=name, display_name=job.display_name)
    variant.environment = name.removesuffix(f".{job.name}")
    triggers = tuple(
        dataclasses.replace(t, expr=rename(t.expr)) if t.type in CHAIN_TYPES else t
        for t in variant.triggers
    )
    freshness = tuple(FreshnessGate(g.kind, rename(g.upstream)) for g in variant.freshness)
    variant.options = dataclasses.replace(variant.options, triggers=triggers, freshness=freshness)
    variant.triggers = triggers
    variant.freshness = freshness
    return variant


def _isolate(folder: Path, cache: Path) -> None:
    """Put ``folder`` first on ``sys.path``, and forget other versions' plain modules."""
    mine, others = str(folder), str(cache.resolve())
    folder = folder.resolve()
    sys.path[:] = [mine] + [p for p in sys.path if p != mine and not _under(p, others)]
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if (
            file
            and not name.startswith(WORKSPACE_PREFIX)
            and _under(file, others)
            and not _under(file, str(folder))
        ):
            del sys.modules[name]


def _under(path: str, folder: str) -> bool:
    try:
        return Path(path).resolve().is_relative_to(folder)
    except (OSError, ValueError):
        return False
