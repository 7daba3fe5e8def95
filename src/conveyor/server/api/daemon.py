"""``/api/daemon``: the scheduler daemons' health, as each last reported it."""

from __future__ import annotations

import time
from datetime import datetime

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow, redact_jobs
from conveyor.storage.instance import Instance

router = APIRouter(prefix="/daemon", tags=["daemon"], dependencies=[Depends(allow(Action.READ))])

# A daemon not heard from for this many seconds is reported as not running.
SILENT = 30.0
# A daemon silent for this long (killed, never signed off) is no longer listed.
FORGOTTEN = 24 * 3600.0


class Daemon(BaseModel):
    """One daemon: where it runs, its last pass and how long it took, its last error."""

    daemon_id: str
    host: str
    pid: int
    started_at: datetime
    last_pass_at: datetime
    last_pass_seconds: float
    passes: int
    last_error: str | None
    last_error_at: datetime | None
    seconds_since_last_pass: float
    alive: bool = Field(description=f"heard from within the last {SILENT:g} s")
    failing: bool = Field(description="its last pass had an error")


class DaemonHealth(BaseModel):
    """Whether a daemon is at work, and each daemon's own report."""

    healthy: bool = Field(description="a daemon passed recently, without an error")
    message: str
    daemons: list[Daemon]


def daemon_health(instance: Instance) -> DaemonHealth:
    """The daemons' reports, the most recently heard from first, and a verdict."""
    now = time.time()
    daemons = []
    for d in instance.daemon_status.all():
        since = max(0.0, now - d.last_pass_at.timestamp())
        if since > FORGOTTEN:
            continue
        failing = d.last_error is not None and d.last_error_at == d.last_pass_at
        daemons.append(
            Daemon(
                daemon_id=d.daemon_id,
                host=d.host,
                pid=d.pid,
                started_at=d.started_at,
                last_pass_at=d.last_pass_at,
                last_pass_seconds=d.last_pass_seconds,
                passes=d.passes,
                last_error=d.last_error,
                last_error_at=d.last_error_at,
                seconds_since_last_pass=since,
                alive=since <= SILENT,
                failing=failing,
            )
        )
    alive = [d for d in daemons if d.alive]
    if not alive:
        message = (
            "no daemon is running: queued runs wait and no trigger fires; start one with "
            "`conveyor daemon` (or `conveyor dev`)"
        )
    elif all(d.failing for d in alive):
        message = f"the daemon's last pass failed: {alive[0].last_error}"
    else:
        message = f"{len(alive)} daemon{'' if len(alive) == 1 else 's'} running"
    healthy = bool(alive) and not all(d.failing for d in alive)
    return DaemonHealth(healthy=healthy, message=message, daemons=daemons)


@router.get("")
def get_daemon(request: Request) -> DaemonHealth:
    """The daemons' health: when each passed last, how long that took, its errors."""
    health = daemon_health(state_of(request).instance)
    for d in health.daemons:
        d.last_error = redact_jobs(request, d.last_error)
    if not health.healthy:
        health.message = redact_jobs(request, health.message) or ""
    return health
