"""Deploying: the workspace's code packaged, stored, recorded as a version and made
active in an environment.

The workspace is loaded from the packaged files (unpacked into the code cache, where
runs of the version will find them), so that the version's manifest describes what
was packaged, and code that fails to load is refused before anything is stored.
"""

from __future__ import annotations

import getpass
import os
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConfigError, WorkspaceError
from conveyor.execution.code_cache import cache_root, evict, unpack
from conveyor.execution.environments import load_entry, remember, scope
from conveyor.execution.packaging import package
from conveyor.storage.deployments import (
    DeploymentRecord,
    NewVersion,
    VersionRecord,
    environment_names,
)
from conveyor.workspace import Workspace

if TYPE_CHECKING:
    from conveyor.storage.instance import Instance


@dataclass(frozen=True, slots=True)
class Deployed:
    """What a deploy did.

    Attributes:
        version: the version of the deployed code (an existing one for identical code).
        created: whether the version is new.
        activated: whether it became active in the environment (False: it was already).
        environment: the environment deployed to.
        deployment: the activation recorded, if it became active.
    """

    version: VersionRecord
    created: bool
    activated: bool
    environment: str
    deployment: DeploymentRecord | None = None

    def summary(self) -> str:
        """One line: ``version 3 (new) active in dev: 2 jobs added, 1 changed``."""
        v, env = self.version, self.environment
        if not self.activated:
            return f"no change: version {v.number} is active in {env} already"
        if not self.created:
            return f"version {v.number} (deployed before) active in {env}"
        counts = [(len(v.diff.get(k) or []), k) for k in ("added", "changed", "removed")]
        said = [f"{n} {k}" for n, k in counts if n]
        if said:  # "2 jobs added, 1 changed": the first part names the jobs
            first = said[0].split(" ", 1)
            said[0] = f"{first[0]} {'job' if first[0] == '1' else 'jobs'} {first[1]}"
        what = ", ".join(said) or "no job changed"
        return f"version {v.number} (new) active in {env}: {what}"

    def __repr__(self) -> str:
        return f"<Deployed version {self.version.number} in {self.environment}>"


def check_environment(environment: str) -> str:
    """``environment`` if it is one of ``environment_names()``.

    Raises:
        ConfigError: it is not, naming those there are.
    """
    names = environment_names()
    if environment not in names:
        raise ConfigError(
            f"no environment {environment!r}: the environments are {', '.join(names)} "
            f"(set them with CONVEYOR_ENVIRONMENTS=dev,pre,prod)"
        )
    return environment


def deploy(
    instance: Instance,
    target: str | os.PathLike[str],
    environment: str,
    *,
    by: str | None = None,
    message: str | None = None,
    requirements: str | os.PathLike[str] | None = None,
) -> Deployed:
    """Package ``target``, store it as a version (or find the version of the same
    files) and make that version active in ``environment``.

    Raises:
        ConfigError: ``environment`` is not a configured environment.
        WorkspaceError: ``target`` cannot be packaged, or its code fails to load (the
            message holds the traceback); nothing is stored then.
    """
    check_environment(environment)
    pkg = package(target, requirements=requirements)
    what = f"{pkg.entry} ({pkg.hash[:12]})"
    folder = unpack(pkg.data, pkg.hash, pkg.requirements, cache_root(instance), what)
    evict(cache_root(instance), keep=pkg.hash)
    try:
        ws = load_entry(folder, pkg.entry, pkg.hash, cache_root(instance))
    except Exception as e:
        cause = e.__cause__ or e
        trace = "".join(traceback.format_exception(cause)).rstrip()
        raise WorkspaceError(
            f"cannot deploy {str(target)!r}: its code fails to load, so nothing was "
            f"stored; fix it and deploy again:\n{trace}"
        ) from e
    scope(ws, environment)  # its names fit there (a long job name may not)
    uri = f"code/{pkg.hash}.tar.gz"
    if instance.deployments.by_hash(pkg.hash) is None:
        uri = instance.blobs.put(uri, pkg.data)
    record, created = instance.deployments.add_version(
        NewVersion(
            hash=pkg.hash,
            archive_uri=uri,
            size=pkg.size,
            entry=pkg.entry,
            manifest=manifest(ws),
            requirements=pkg.requirements,
            requirements_hash=pkg.requirements_hash,
            git=pkg.git,
            created_by=by if by is not None else _user(),
            message=message,
        )
    )
    remember(record, ws)
    done = instance.deployments.activate(
        environment,
        record.number,
        action="deploy",
        by=by if by is not None else _user(),
        message=message,
    )
    return Deployed(record, created, done is not None, environment, done)


def manifest(ws: Workspace) -> dict[str, Any]:
    """What a version defines: its jobs (version, kind, names, triggers, graph) and the
    names of its workloads."""
    jobs: dict[str, Any] = {}
    for name, job in sorted(ws.jobs.items()):
        nodes = job.graph.nodes.values() if job.graph is not None else ()
        jobs[name] = {
            "version": job.version,
            "kind": job.kind,
            "display_name": job.display_name,
            "description": job.description,
            "triggers": [str(t) for t in job.triggers],
            "tasks": [n.key for n in nodes],
            "edges": [[d, n.key] for n in nodes for d in n.deps],
            # Who may do what to it (promotion checks ``promote`` against this).
            "access": job.access.as_dict() if job.access is not None else None,
        }
    return {"jobs": jobs, "workloads": sorted(ws.workloads)}


def deploy_code(
    target: str | os.PathLike[str] = ".",
    environment: str = "dev",
    *,
    message: str | None = None,
    requirements: str | os.PathLike[str] | None = None,
    by: str | None = None,
    instance: Instance | None = None,
) -> Deployed:
    """Deploy the workspace ``target`` (a file or folder) to ``environment``:
    ``conveyor.deploy("pipelines.py", "dev", message="...")``.

    The instance is ``CONVEYOR_HOME``'s unless given. See ``deploy``.
    """
    return deploy(
        instance or _instance(),
        target,
        environment,
        by=by,
        message=message,
        requirements=requirements,
    )


def versions(
    environment: str | None = None, *, instance: Instance | None = None
) -> list[VersionRecord]:
    """The deployed versions, newest first; with ``environment``, those that have
    been active there (Datatailr's ``versions(environment)``).

    Raises:
        ConfigError: ``environment`` is not a configured environment.
    """
    if environment is not None:
        check_environment(environment)
    return (instance or _instance()).deployments.versions(environment)


def _instance() -> Instance:
    from conveyor.storage.instance import Instance

    return Instance.from_env()


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None
