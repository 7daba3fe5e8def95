"""The workloads page: services, apps, interactive jobs and add-ins with their state, port,
restarts, uptime, health and memory, the buttons that start, stop and restart them, a
link that opens them through the proxy, and their last log lines."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from conveyor.execution.workload_launch import workload_log
from conveyor.server.api import workloads as api
from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow
from conveyor.server.ui.templating import render

router = APIRouter()

# Log lines shown per stream.
LINES = 8
# The badge colour of each state, from the run states' palette.
STATE_STYLE = {
    "running": "success",
    "starting": "starting",
    "unhealthy": "up_for_retry",
    "backoff": "up_for_retry",
    "crash_loop": "failure",
    "stopping": "canceling",
    "stopped": "canceled",
    "idle": "pending",
}


@router.get("/workloads", dependencies=[Depends(allow(Action.READ))])
def workloads_page(request: Request) -> Response:
    """Every workload the caller may read, with its buttons and last log lines."""
    instance = state_of(request).instance
    found = api.workload_views(request)
    records = {r.name: r for r in instance.workloads.all()}
    logs = {
        w.name: {s: workload_log(instance, records[w.name], s, LINES) for s in ("stdout", "stderr")}
        for w in found
        if w.name in records
    }
    return render(
        request, "workloads.html", {"workloads": found, "logs": logs, "style": STATE_STYLE}
    )


Verb = Literal["start", "stop", "restart"]
DO = {"start": api.start_workload, "stop": api.stop_workload, "restart": api.restart_workload}


@router.post("/workloads/{name}/{verb}", dependencies=[Depends(allow(Action.LAUNCH))])
def act(request: Request, name: str, verb: Verb) -> Response:
    """Start, stop or restart a workload (OPERATE on it), then back to the page."""
    DO[verb](request, name)
    return RedirectResponse(f"/workloads#workload-{name}", status_code=303)
