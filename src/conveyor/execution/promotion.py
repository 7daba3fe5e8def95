"""Promotion and rollback: moving an environment's pointer to a version that exists.

A promotion copies the version active in one environment (or an earlier version that
was active there) into the next: the pointer moves, nothing is rebuilt, so ``pre`` and
``prod`` run the very archive ``dev`` ran. A rollback points an environment back at a
version it ran before. Both are checked here, once, for every caller (the CLI on the
instance, the API, the UI):

- order: a version moves forward along ``environment_names()`` (``dev`` → ``pre`` →
  ``prod``; skipping one is allowed), never back: going back is a rollback;
- permission: the caller needs ``promote`` on every job of the version made active and
  of the version it replaces (``allowed(job_name)`` says, by the job's unscoped name);
- policy: ``CONVEYOR_PROMOTE_REQUIRE_SUCCESS=pre,prod`` makes promoting into ``pre`` or
  ``prod`` require a successful run of the version in the source environment.

Every attempt, allowed or refused, is written to the audit log.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from conveyor.errors import ConfigError, ConveyorError, NotFoundError
from conveyor.storage.deployments import DeploymentRecord, VersionRecord, environment_names
from conveyor.storage.instance import Instance
from conveyor.storage.run_queries import RunFilter

REQUIRE_SUCCESS_VAR = "CONVEYOR_PROMOTE_REQUIRE_SUCCESS"
# How far back a rollback looks for the version to return to.
HISTORY_LIMIT = 1000
# Runs read at once when looking for a successful one.
PAGE = 500

Allowed = Callable[[str], bool]


class PromotionError(ConveyorError, ValueError):
    """Raised when a promotion or rollback cannot be made as asked: an unknown
    environment, a backward promotion, a version that was never active in the source,
    a job that is not in the version, or an unmet policy."""


class PromotionDeniedError(ConveyorError, PermissionError):
    """Raised when the caller lacks the ``promote`` permission on jobs of the versions a
    promotion or rollback would change; ``jobs`` names them."""

    def __init__(self, who: str, doing: str, env: str, version: int, jobs: Iterable[str]) -> None:
        self.who, self.doing, self.env, self.version = who, doing, env, version
        self.jobs = sorted(jobs)
        super().__init__(self.said())

    def said(self, shown: Callable[[str], bool] = lambda _: True) -> str:
        """The message, naming only the jobs ``shown`` (those the caller may read) and
        counting the others."""
        named = [j for j in self.jobs if shown(j)]
        hidden = len(self.jobs) - len(named)
        parts = [", ".join(named)] if named else []
        if hidden:
            parts.append(f"{hidden} job{'s' if hidden > 1 else ''} you may not read")
        return (
            f"{self.who} may not {self.doing} {self.env} to version {self.version}: it needs "
            f"the promote permission on job{'s' if len(self.jobs) > 1 else ''} "
            f"{' and '.join(parts)} (of the version made active or the one it replaces); "
            f"ask an admin (`conveyor access grant JOB USER promote`)"
        )


def require_success(value: str | None = None) -> frozenset[str]:
    """The environments promoting into which requires a successful run in the source:
    ``CONVEYOR_PROMOTE_REQUIRE_SUCCESS`` (none by default), or ``value``.

    Raises:
        ConfigError: a name that is not one of ``environment_names()``.
    """
    text = os.environ.get(REQUIRE_SUCCESS_VAR, "") if value is None else value
    names = [n.strip() for n in text.split(",") if n.strip()]
    known = environment_names()
    for n in names:
        if n not in known:
            raise ConfigError(
                f"{REQUIRE_SUCCESS_VAR}={text!r}: {n!r} is not an environment; the "
                f"environments are {', '.join(known)} (write e.g. {REQUIRE_SUCCESS_VAR}=pre,prod)"
            )
    return frozenset(names)


def succeeded_in(instance: Instance, version: VersionRecord, environment: str) -> bool:
    """Whether a run of ``version`` succeeded in ``environment`` (a run of one of its
    jobs there, scoped as ``environment.job``, that ran this version)."""
    names = tuple(f"{environment}.{job}" for job in version.jobs)
    if not names:
        return False
    wanted = RunFilter(job_names=names, statuses=("success",))
    cursor: str | None = None
    while True:
        page = instance.query_runs(wanted, limit=PAGE, cursor=cursor)
        if any(
            r.deployed_version == version.number and r.environment == environment for r in page.runs
        ):
            return True
        if page.next_cursor is None:
            return False
        cursor = page.next_cursor


def promote(
    instance: Instance,
    to_env: str,
    *,
    from_env: str,
    version: int | None = None,
    by: str | None = None,
    allowed: Allowed | None = None,
    job: str | None = None,
    message: str | None = None,
    address: str | None = None,
) -> DeploymentRecord | None:
    """Make the version active in ``from_env`` (or ``version``, which must have been
    active there) the active version of ``to_env``; ``None`` when it is active there
    already (nothing is recorded but the audit entry).

    Args:
        by: who promotes (the audit log's actor and the history's "by").
        allowed: whether the caller holds ``promote`` on a job, by its unscoped name
            (``None``: everyone may, as the local admin on the instance).
        job: a job the caller means; it must be in the version, and the whole version
            is promoted all the same (versions are whole workspaces).
        message: why, kept in the history.
        address: where the request came from, for the audit log.

    Raises:
        PromotionError: the order, the version, ``job`` or the policy does not allow it.
        PromotionDeniedError: the caller lacks ``promote`` on jobs of the versions.
    """
    detail: dict[str, Any] = {"from": from_env, "version": version, "job": job}
    try:
        order = environment_names()
        _known(to_env, order)
        _known(from_env, order)
        if order.index(to_env) <= order.index(from_env):
            raise PromotionError(
                f"cannot promote from {from_env} to {to_env}: versions move forward "
                f"({' -> '.join(order)}); to bring {to_env} back to an earlier version, use "
                f"`conveyor rollback --env {to_env} --to N`"
            )
        chosen = _version_from(instance, from_env, version)
        detail["version"] = chosen.number
        if job is not None and job not in chosen.jobs:
            raise PromotionError(
                f"job {job!r} is not in version {chosen.number} (its jobs: "
                f"{', '.join(chosen.jobs) or 'none'}); a promotion moves the whole version, "
                f"so name one of its jobs or none"
            )
        replaced = instance.deployments.active(to_env)
        _check_allowed(allowed, by, "promote", to_env, chosen, replaced)
        if to_env in require_success() and not succeeded_in(instance, chosen, from_env):
            raise PromotionError(
                f"cannot promote version {chosen.number} to {to_env}: {to_env} requires a "
                f"successful run of it in {from_env} ({REQUIRE_SUCCESS_VAR}), and it has none "
                f"there yet; run its jobs in {from_env} first"
            )
        record = instance.deployments.activate(
            to_env,
            chosen.number,
            action="promote",
            by=by,
            from_environment=from_env,
            message=message,
        )
    except (ConveyorError, PermissionError) as e:
        _audit(instance, by, "promote", to_env, address, detail, e)
        raise
    detail["previous"] = None if replaced is None else replaced.number
    _audit(instance, by, "promote", to_env, address, detail, None, record is None)
    return record


def rollback(
    instance: Instance,
    env: str,
    *,
    to: int | None = None,
    by: str | None = None,
    allowed: Allowed | None = None,
    message: str | None = None,
    address: str | None = None,
) -> DeploymentRecord | None:
    """Make the version active in ``env`` before the current one (or ``to``, which must
    have been active in ``env``) active again; ``None`` when it is active already.

    The version before is the last one active in ``env`` that is neither the current one
    nor one it was rolled back from since, so rolling back twice goes two versions back.

    Raises:
        PromotionError: an unknown environment, no version active, or none to go back to.
        PromotionDeniedError: the caller lacks ``promote`` on jobs of the versions.
    """
    detail: dict[str, Any] = {"to": to}
    try:
        _known(env, environment_names())
        current = instance.deployments.active(env)
        if current is None:
            raise PromotionError(
                f"nothing to roll back in {env}: no version has been active there; deploy "
                f"one with `conveyor deploy --env {env}`"
            )
        detail["previous"] = current.number
        target = _rollback_target(instance, env, current.number) if to is None else to
        detail["to"] = target
        if target not in {v.number for v in instance.deployments.versions(environment=env)}:
            ran = ", ".join(str(v.number) for v in instance.deployments.versions(environment=env))
            raise PromotionError(
                f"cannot roll {env} back to version {target}: it was never active in {env} "
                f"(the versions it ran: {ran}); promote it there instead"
            )
        chosen = instance.deployments.version(target)
        _check_allowed(allowed, by, "roll back", env, chosen, current)
        record = instance.deployments.activate(
            env, target, action="rollback", by=by, message=message
        )
    except (ConveyorError, PermissionError) as e:
        _audit(instance, by, "rollback", env, address, detail, e)
        raise
    _audit(instance, by, "rollback", env, address, detail, None, record is None)
    return record


def _known(env: str, order: tuple[str, ...]) -> None:
    if env not in order:
        raise PromotionError(
            f"unknown environment {env!r}: the environments are {', '.join(order)} "
            f"(CONVEYOR_ENVIRONMENTS)"
        )


def _version_from(instance: Instance, from_env: str, number: int | None) -> VersionRecord:
    if number is None:
        active = instance.deployments.active(from_env)
        if active is None:
            raise PromotionError(
                f"nothing to promote from {from_env}: no version is active there; deploy "
                f"one with `conveyor deploy --env {from_env}`"
            )
        return active
    try:
        chosen = instance.deployments.version(number)
    except NotFoundError as e:
        raise PromotionError(str(e)) from None
    ran = [v.number for v in instance.deployments.versions(environment=from_env)]
    if chosen.number not in ran:
        raise PromotionError(
            f"version {number} was never active in {from_env} (the versions it ran: "
            f"{', '.join(map(str, ran)) or 'none'}); only what ran in {from_env} is "
            f"promoted from it"
        )
    return chosen


def _rollback_target(instance: Instance, env: str, current: int) -> int:
    rolled_back_from: set[int] = set()
    for r in instance.deployments.history(env, limit=HISTORY_LIMIT):
        if r.action == "rollback" and r.previous_version is not None:
            rolled_back_from.add(r.previous_version)
        if r.version != current and r.version not in rolled_back_from:
            return r.version
    raise PromotionError(
        f"nothing to roll back to in {env}: version {current} is the only version that ran "
        f"there (and not one it was rolled back from); name one with --to N"
    )


def _check_allowed(
    allowed: Allowed | None,
    by: str | None,
    doing: str,
    env: str,
    chosen: VersionRecord,
    replaced: VersionRecord | None,
) -> None:
    if allowed is None:
        return
    jobs = set(chosen.jobs) | set(replaced.jobs if replaced is not None else ())
    denied = sorted(j for j in jobs if not allowed(j))
    if denied:
        raise PromotionDeniedError(by or "the caller", doing, env, chosen.number, denied)


def _audit(
    instance: Instance,
    by: str | None,
    action: str,
    env: str,
    address: str | None,
    detail: dict[str, Any],
    error: BaseException | None,
    unchanged: bool = False,
) -> None:
    if error is not None:
        outcome = "denied" if isinstance(error, PermissionError) else "refused"
        detail = {**detail, "outcome": outcome, "reason": str(error)}
    else:
        detail = {**detail, "outcome": "unchanged" if unchanged else "done"}
    clean = {k: v for k, v in detail.items() if v is not None}
    instance.audit.append(by or "local", action, env, detail=clean, address=address)
