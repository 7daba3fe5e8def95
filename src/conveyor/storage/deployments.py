"""The deployment store: versions of the workspace's code, and the version active in each
environment.

A version is recorded once per archive hash (``add_version`` finds the row when the
same files are deployed again) and numbered in the order versions were first deployed.
An environment points at one active version; ``activate`` moves the pointer (a deploy,
a promotion from another environment, a rollback) and records it in the environment's
history in the same transaction, counting activations so that a ``deployment:`` trigger
fires once per activation.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from conveyor.errors import ConfigError, NotFoundError, StorageError
from conveyor.storage.db import Database
from conveyor.storage.records import record_from_row, to_datetime
from conveyor.storage.schema import deployments, environments, versions

DEFAULT_ENVIRONMENTS = ("dev", "pre", "prod")
ENVIRONMENTS_VAR = "CONVEYOR_ENVIRONMENTS"
ACTIONS = ("deploy", "promote", "rollback")
_ENV_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


def environment_names(value: str | None = None) -> tuple[str, ...]:
    """The environments, in promotion order: ``CONVEYOR_ENVIRONMENTS`` (``"dev,pre,prod"``
    by default), or ``value``.

    Raises:
        ConfigError: a name that is not lower-case letters, digits, ``-`` and ``_``, a
            name given twice, or ``local`` (the name of the files on disk).
    """
    text = os.environ.get(ENVIRONMENTS_VAR, "") if value is None else value
    if not text.strip():
        return DEFAULT_ENVIRONMENTS
    names = tuple(n.strip() for n in text.split(","))
    for n in names:
        if not _ENV_NAME.fullmatch(n):
            raise ConfigError(
                f"{ENVIRONMENTS_VAR}={text!r}: {n!r} is not an environment name (1-32 lower-case "
                f"letters, digits, '-' and '_', starting with a letter); write e.g. "
                f"{ENVIRONMENTS_VAR}=dev,pre,prod"
            )
        if n == "local":
            raise ConfigError(
                f"{ENVIRONMENTS_VAR}={text!r}: 'local' is the workspace's files as `conveyor dev` "
                f"serves them, not an environment to deploy to; choose another name"
            )
    if len(set(names)) != len(names):
        raise ConfigError(f"{ENVIRONMENTS_VAR}={text!r}: an environment is named twice")
    return names


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """One deployed version of the workspace's code.

    Attributes:
        number: 1, 2, ... in the order versions were first deployed.
        hash: the SHA-256 of the archive's files (its content address).
        archive_uri: where the archive lives in the blob store.
        size: the archive's size in bytes.
        entry: the workspace inside the archive (a file or folder, relative).
        manifest: what the version defines (``{"jobs": {...}, "workloads": [...]}``).
        diff: against the version deployed before it (``{"added": [...], "changed":
            [...], "removed": [...]}``, job names).
        requirements: the requirements it runs with (a requirements file's text).
        requirements_hash: their hash, or ``None`` without requirements.
        git: ``{"commit", "dirty", "branch"}`` when deployed from a git checkout.
        created_at: when it was first deployed.
        created_by: who deployed it first.
        message: what the deployer said of it.
    """

    number: int
    hash: str
    archive_uri: str
    size: int
    entry: str
    manifest: dict[str, Any]
    diff: dict[str, Any]
    requirements: str | None
    requirements_hash: str | None
    git: dict[str, Any] | None
    created_at: Any
    created_by: str | None
    message: str | None

    _CONVERT: ClassVar[Mapping[str, Callable[[Any], Any]]] = {
        "manifest": lambda v: dict(v or {}),
        "diff": lambda v: dict(v or {}),
        "created_at": to_datetime,
    }

    @classmethod
    def from_row(cls, row: Any) -> VersionRecord:
        return record_from_row(cls, row, cls._CONVERT)

    @property
    def jobs(self) -> list[str]:
        """The names of the jobs it defines."""
        return sorted(self.manifest.get("jobs", {}))

    def __repr__(self) -> str:
        return f"<Version {self.number} {self.hash[:12]} ({len(self.jobs)} jobs)>"


@dataclass(frozen=True, slots=True)
class EnvironmentRecord:
    """An environment and its active version (``None`` before the first deploy)."""

    name: str
    active_version: int | None
    activations: int
    updated_at: Any
    updated_by: str | None


@dataclass(frozen=True, slots=True)
class DeploymentRecord:
    """One activation: version ``version`` became active in ``environment``."""

    id: int
    environment: str
    version: int
    action: str
    from_environment: str | None
    previous_version: int | None
    activation: int
    at: Any
    by: str | None
    message: str | None

    @classmethod
    def from_row(cls, row: Any) -> DeploymentRecord:
        return record_from_row(cls, row, {"at": to_datetime})


@dataclass(slots=True)
class NewVersion:
    """What ``add_version`` records of an archive (its number is given by the store)."""

    hash: str
    archive_uri: str
    size: int
    entry: str
    manifest: dict[str, Any]
    requirements: str | None = None
    requirements_hash: str | None = None
    git: dict[str, Any] | None = None
    created_by: str | None = None
    message: str | None = None
    diff: dict[str, Any] = field(default_factory=dict)


def manifest_diff(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> dict[str, Any]:
    """The jobs ``after`` adds, changes (another job version) and removes against
    ``before`` (``None``: the first version, where every job is added)."""
    old = dict((before or {}).get("jobs", {}))
    new = dict(after.get("jobs", {}))
    return {
        "added": sorted(set(new) - set(old)),
        "changed": sorted(
            n for n in set(new) & set(old) if new[n].get("version") != old[n].get("version")
        ),
        "removed": sorted(set(old) - set(new)),
    }


class DeploymentStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- versions ----------------------------------------------------------------------------

    def add_version(self, new: NewVersion) -> tuple[VersionRecord, bool]:
        """Record a version of ``new.hash``; ``(record, created)``, where ``created`` is
        False when a version of the same files exists (that one is returned, unchanged).

        The number is the next one; two deploys racing for it are told apart by the
        database (the loser retries with the next number, or finds the same hash).
        """
        for _ in range(5):
            found = self.by_hash(new.hash)
            if found is not None:
                return found, False
            try:
                with self.db.write() as conn:
                    last = conn.execute(
                        select(versions.c.number, versions.c.manifest).order_by(
                            versions.c.number.desc()
                        )
                    ).first()
                    number = 1 if last is None else last.number + 1
                    diff = new.diff or manifest_diff(
                        None if last is None else last.manifest, new.manifest
                    )
                    conn.execute(
                        versions.insert(),
                        {
                            "number": number,
                            "hash": new.hash,
                            "archive_uri": new.archive_uri,
                            "size": new.size,
                            "entry": new.entry,
                            "manifest": new.manifest,
                            "diff": diff,
                            "requirements": new.requirements,
                            "requirements_hash": new.requirements_hash,
                            "git": new.git,
                            "created_at": time.time(),
                            "created_by": new.created_by,
                            "message": new.message,
                        },
                    )
            except IntegrityError:
                continue  # another deploy took the number (or the hash) first: look again
            return self.version(number), True
        raise StorageError(
            f"could not record a version of {new.hash[:12]}: other deploys kept taking the "
            f"next number; try again"
        )

    def version(self, number: int) -> VersionRecord:
        """Version ``number``; ``NotFoundError`` naming the versions there are."""
        with self.db.read() as conn:
            row = conn.execute(select(versions).where(versions.c.number == number)).first()
            if row is None:
                last = conn.execute(select(func.max(versions.c.number))).scalar()
        if row is None:
            there = "no version has been deployed yet" if not last else f"they are 1 to {last}"
            raise NotFoundError(f"no version {number}: {there}")
        return VersionRecord.from_row(row)

    def by_hash(self, digest: str) -> VersionRecord | None:
        with self.db.read() as conn:
            row = conn.execute(select(versions).where(versions.c.hash == digest)).first()
        return None if row is None else VersionRecord.from_row(row)

    def latest(self) -> VersionRecord | None:
        """The version deployed last (the highest number), if any."""
        with self.db.read() as conn:
            row = conn.execute(select(versions).order_by(versions.c.number.desc())).first()
        return None if row is None else VersionRecord.from_row(row)

    def versions(self, environment: str | None = None) -> list[VersionRecord]:
        """Every version, newest first; of ``environment``, those that were active in it."""
        q = select(versions).order_by(versions.c.number.desc())
        if environment is not None:
            q = q.where(
                versions.c.number.in_(
                    select(deployments.c.version).where(deployments.c.environment == environment)
                )
            )
        with self.db.read() as conn:
            return [VersionRecord.from_row(r) for r in conn.execute(q)]

    # -- environments ------------------------------------------------------------------------

    def environment(self, name: str) -> EnvironmentRecord:
        """Environment ``name`` (one that has had no version yet has none active)."""
        with self.db.read() as conn:
            row = conn.execute(select(environments).where(environments.c.name == name)).first()
        if row is None:
            return EnvironmentRecord(name, None, 0, None, None)
        m = row._mapping
        return EnvironmentRecord(
            name=m["name"],
            active_version=m["active_version"],
            activations=m["activations"],
            updated_at=to_datetime(m["updated_at"]),
            updated_by=m["updated_by"],
        )

    def active(self, name: str) -> VersionRecord | None:
        """The version active in environment ``name``, if any."""
        number = self.environment(name).active_version
        return None if number is None else self.version(number)

    def activate(
        self,
        environment: str,
        number: int,
        *,
        action: str,
        by: str | None = None,
        from_environment: str | None = None,
        message: str | None = None,
    ) -> DeploymentRecord | None:
        """Make version ``number`` the active one of ``environment`` and record it; ``None``
        (and nothing recorded) when it is active there already.

        Raises:
            NotFoundError: no version ``number``.
        """
        if action not in ACTIONS:
            raise ValueError(f"action {action!r} is not one of {', '.join(ACTIONS)}")
        self.version(number)
        now = time.time()
        for _ in range(5):
            try:
                with self.db.write() as conn:
                    row = conn.execute(
                        select(environments)
                        .where(environments.c.name == environment)
                        .with_for_update()
                    ).first()
                    if row is None:
                        conn.execute(
                            environments.insert(),
                            {
                                "name": environment,
                                "active_version": number,
                                "activations": 1,
                                "updated_at": now,
                                "updated_by": by,
                            },
                        )
                        previous, activation = None, 1
                    else:
                        if row.active_version == number:
                            return None
                        previous, activation = row.active_version, row.activations + 1
                        conn.execute(
                            update(environments)
                            .where(environments.c.name == environment)
                            .values(
                                active_version=number,
                                activations=activation,
                                updated_at=now,
                                updated_by=by,
                            )
                        )
                    rid = conn.execute(
                        deployments.insert().returning(deployments.c.id),
                        {
                            "environment": environment,
                            "version": number,
                            "action": action,
                            "from_environment": from_environment,
                            "previous_version": previous,
                            "activation": activation,
                            "at": now,
                            "by": by,
                            "message": message,
                        },
                    ).scalar_one()
            except IntegrityError:
                continue  # two first activations of a new environment: the loser looks again
            return DeploymentRecord(
                id=rid,
                environment=environment,
                version=number,
                action=action,
                from_environment=from_environment,
                previous_version=previous,
                activation=activation,
                at=to_datetime(now),
                by=by,
                message=message,
            )
        raise StorageError(f"could not activate version {number} in {environment}; try again")

    def history(
        self, environment: str | None = None, *, limit: int = 100
    ) -> list[DeploymentRecord]:
        """The activations, newest first (of ``environment`` only, if given)."""
        q = select(deployments).order_by(deployments.c.id.desc()).limit(limit)
        if environment is not None:
            q = q.where(deployments.c.environment == environment)
        with self.db.read() as conn:
            return [DeploymentRecord.from_row(r) for r in conn.execute(q)]

    def environments(self, names: Sequence[str] | None = None) -> list[EnvironmentRecord]:
        """The configured environments in promotion order (``environment_names()``), each
        with its active version."""
        return [self.environment(n) for n in (names or environment_names())]
