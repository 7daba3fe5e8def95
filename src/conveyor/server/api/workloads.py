"""``/api/workloads``: services, apps, interactive jobs and add-ins, as their supervisor
last saw them; starting, stopping and restarting them; their logs.

The server only asks (``desired``): the supervisor in the daemon (or ``conveyor dev``)
that holds a workload's lease starts and stops its process. Who may see a workload,
act on it and reach it is decided by ``workload_auth.authorize_workload``.
"""

from __future__ import annotations

import socket
import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from conveyor.definitions.access import Permission
from conveyor.execution.workload_launch import same_process, tree_rss, workload_log
from conveyor.server.app import state_of
from conveyor.server.auth import (
    Action,
    allow,
    audit,
)
from conveyor.server.proxy import SERVING, base_path
from conveyor.server.workload_auth import (
    authorize_workload,
    readable_workloads,
    workload_not_found,
    workload_permissions,
)
from conveyor.storage.instance import Instance
from conveyor.storage.workloads import WorkloadRecord

# Every route is for signed-in callers; each checks its workload's permission itself.
router = APIRouter(prefix="/workloads", tags=["workloads"])
SIGNED_IN = [Depends(allow(Action.READ))]
# Writes: a signed-in caller with the CSRF token (from a browser); the route checks OPERATE.
WRITES = [Depends(allow(Action.LAUNCH))]

Stream = Literal["stdout", "stderr"]
# How long a restart waits for the supervisor to stop the workload before starting it.
RESTART_WAIT = 30.0
MAX_LINES = 10_000


class WorkloadView(BaseModel):
    """A workload: what its code declares, what was asked of it and what it is doing."""

    name: str
    kind: str = Field(description="service, app, interactive or addin")
    description: str | None
    desired: str = Field(description="running or stopped: what a person (or the code) asked")
    state: str = Field(description="what its supervisor last saw")
    url: str = Field(description="where the proxy serves it")
    port: int | None
    host: str | None
    pid: int | None
    restarts: int
    started_at: float | None
    uptime: float | None = Field(description="seconds since it started, while it serves")
    health: str | None
    memory: int | None = Field(description="resident bytes of its process tree, if known here")
    last_exit_code: int | None
    last_error: str | None
    last_request_at: float | None
    run_id: str | None = Field(
        description="an interactive job's current or last run (each start is a run)"
    )
    idle_timeout: float | None = Field(
        description="an interactive job's: seconds without a request before it is stopped"
    )
    supervised: bool = Field(description="a live supervisor holds its lease")
    permissions: list[str] = Field(description="what the caller may do on it")


class LogLines(BaseModel):
    """The last lines of one of a workload's streams."""

    name: str
    stream: Stream
    lines: list[str]


def manual_start(record: WorkloadRecord) -> bool:
    """Whether a person may start the workload (an interactive job's ``expose`` may say
    it starts only on request)."""
    expose = record.spec.get("expose") or {}
    return record.kind != "interactive" or expose.get("manual", True) is not False


def supervised(record: WorkloadRecord) -> bool:
    """Whether a supervisor holds the workload's lease (by this server's clock)."""
    return record.owner is not None and (record.lease_expires_at or 0.0) > time.time()


def memory_of(record: WorkloadRecord) -> int | None:
    """The resident memory of the workload's processes, when they run on this host."""
    if record.pid is None or record.state not in SERVING or record.host != socket.gethostname():
        return None
    proc = same_process(record.pid, record.pid_started)
    return tree_rss(proc) if proc is not None else None


def view(record: WorkloadRecord, permissions: frozenset[Permission]) -> WorkloadView:
    serving = record.state in SERVING and record.started_at is not None
    return WorkloadView(
        name=record.name,
        kind=record.kind,
        description=record.spec.get("description"),
        desired=record.desired,
        state=record.state,
        url=base_path(record.name) + "/",
        port=record.port,
        host=record.host,
        pid=record.pid,
        restarts=record.restarts,
        started_at=record.started_at,
        uptime=max(0.0, time.time() - record.started_at) if serving and record.started_at else None,
        health=record.health,
        memory=memory_of(record),
        last_exit_code=record.last_exit_code,
        last_error=record.last_error,
        last_request_at=record.last_request_at,
        run_id=record.run_id,
        idle_timeout=record.spec.get("idle_timeout"),
        supervised=supervised(record),
        permissions=sorted(p.value for p in permissions),
    )


def workload_for(
    request: Request, name: str, needed: Permission = Permission.READ
) -> WorkloadRecord:
    """Workload ``name``, if the caller has ``needed`` on it (404 as if missing without READ)."""
    authorize_workload(request, needed, name)
    record: WorkloadRecord | None = state_of(request).instance.workloads.get(name)
    if record is None:
        raise HTTPException(404, workload_not_found(request, name))
    return record


def workload_views(request: Request) -> list[WorkloadView]:
    """The workloads the caller may read, by name."""
    instance = state_of(request).instance
    readable = set(readable_workloads(request))
    return [
        view(r, workload_permissions(request, r.name))
        for r in instance.workloads.all()
        if r.name in readable
    ]


@router.get("", dependencies=SIGNED_IN)
def list_workloads(request: Request) -> list[WorkloadView]:
    """The workloads the caller may read, with their state, port, restarts and uptime."""
    return workload_views(request)


@router.get("/{name}", dependencies=SIGNED_IN)
def get_workload(request: Request, name: str) -> WorkloadView:
    """One workload."""
    record = workload_for(request, name)
    return view(record, workload_permissions(request, name))


def _ask(request: Request, name: str, desired: Literal["running", "stopped"]) -> WorkloadRecord:
    record = workload_for(request, name, Permission.OPERATE)
    if desired == "running" and not manual_start(record):
        raise HTTPException(
            409,
            f"workload {name!r} starts only when its URL {base_path(name)}/ is requested "
            f"(its expose says manual=False)",
        )
    asked: WorkloadRecord = state_of(request).instance.workloads.set_desired(name, desired)
    return asked


@router.post("/{name}/start", dependencies=WRITES)
def start_workload(request: Request, name: str) -> WorkloadView:
    """Ask for the workload to run: its supervisor starts it (and keeps it up)."""
    record = _ask(request, name, "running")
    audit(request, "workload start", name)
    return view(record, workload_permissions(request, name))


@router.post("/{name}/stop", dependencies=WRITES)
def stop_workload(request: Request, name: str) -> WorkloadView:
    """Ask for the workload to stop: its supervisor stops it (SIGTERM, then SIGKILL)."""
    record = _ask(request, name, "stopped")
    audit(request, "workload stop", name)
    return view(record, workload_permissions(request, name))


@router.post("/{name}/restart", dependencies=WRITES)
def restart_workload(request: Request, name: str) -> WorkloadView:
    """Stop the workload and start it again. With a live supervisor, this waits (up to
    30 s) for it to stop first; without one, it is only asked to run."""
    instance: Instance = state_of(request).instance
    record = workload_for(request, name, Permission.OPERATE)
    if not manual_start(record):
        raise HTTPException(
            409, f"workload {name!r} starts only when its URL is requested (manual=False)"
        )
    if supervised(record) and record.state not in ("stopped", "idle", "crash_loop"):
        instance.workloads.set_desired(name, "stopped")
        deadline = time.monotonic() + RESTART_WAIT
        while time.monotonic() < deadline:
            now = instance.workloads.get(name)
            stopped = ("stopped", "idle", "crash_loop")
            if now is None or now.state in stopped or not supervised(now):
                break
            time.sleep(0.2)
    record = instance.workloads.set_desired(name, "running")
    audit(request, "workload restart", name)
    return view(record, workload_permissions(request, name))


@router.get("/{name}/logs", dependencies=SIGNED_IN)
def workload_logs(
    request: Request,
    name: str,
    stream: Annotated[Stream, Query(description="stdout or stderr")] = "stdout",
    lines: Annotated[int, Query(ge=1, le=MAX_LINES, description="how many last lines")] = 100,
) -> LogLines:
    """The last lines the workload wrote to ``stream`` (with the rotated file before it)."""
    record = workload_for(request, name)
    instance = state_of(request).instance
    return LogLines(name=name, stream=stream, lines=workload_log(instance, record, stream, lines))
