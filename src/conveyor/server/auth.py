"""The one place where a request is allowed or refused.

Every API route and UI page depends on ``allow(action)``; access control
(users, roles, per-job access lists) plugs in here and nowhere else. Today
every request is allowed: the server binds 127.0.0.1 by default.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from fastapi import Request


class Action(StrEnum):
    """What a request does, as an access rule names it."""

    READ = "read"  # see jobs, runs, logs, results, schedules
    LAUNCH = "launch"  # launch, rerun, backfill
    CANCEL = "cancel"  # cancel runs and backfills
    OPERATE = "operate"  # toggle schedules and sensors, set pools, reload code
    WEBHOOK = "webhook"  # call a webhook trigger


def authorize(request: Request, action: Action, job_name: str | None = None) -> None:
    """Refuse ``request`` (raise ``HTTPException`` 401/403) unless it may do ``action``
    (on job ``job_name`` where it names one). Allows everything until access control
    lands."""
    request.state.action = action
    request.state.job_name = job_name


def allow(action: Action) -> Callable[[Request], None]:
    """A FastAPI dependency: ``Depends(allow(Action.READ))``; routes that act on one
    job call ``authorize`` again with its name."""

    def dependency(request: Request) -> None:
        authorize(request, action, request.path_params.get("job_name"))

    return dependency
