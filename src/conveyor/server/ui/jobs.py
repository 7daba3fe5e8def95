"""The jobs list (searchable, with last status and a sparkline of durations) and a job's
page: its graph with each task's options, its triggers and chains, and its recent runs."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from conveyor.errors import ConveyorError
from conveyor.server import job_views, run_views
from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow, job_of, visible_jobs, visible_sensors
from conveyor.server.ui.graphs import job_graph_data
from conveyor.server.ui.templating import not_found, render
from conveyor.storage.run_queries import RunFilter

router = APIRouter(dependencies=[Depends(allow(Action.READ))])

RECENT_RUNS = 15


@router.get("/jobs")
def jobs_page(request: Request, q: str | None = None) -> Response:
    """Every job of the workspace, those matching ``q`` (name or description)."""
    state = state_of(request)
    wanted = (q or "").strip().lower()
    jobs, statuses = [], {}
    readable = visible_jobs(request)
    sensors = visible_sensors(request).values()
    for name in sorted(readable):
        job = readable[name]
        if wanted and wanted not in f"{job.name}\n{job.description or ''}".lower():
            continue
        recent = state.instance.runs(job.name, limit=job_views.RECENT_RUNS)
        jobs.append(job_views.job_summary(state.instance, job, recent, sensors))
        statuses[job.name] = [str(r.status) for r in reversed(recent)]
    return render(request, "jobs.html", {"jobs": jobs, "q": q or "", "statuses": statuses})


@router.get("/jobs/{job_name}")
def job_page(request: Request, job_name: str) -> Response:
    """A job: graph, triggers with next fire times, chains, and recent runs."""
    state = state_of(request)
    try:
        job = job_of(request, job_name)
    except ConveyorError as e:
        return not_found(request, str(e))
    ws = state.workspace.workspace
    place = ws.places.get(job.name) if ws is not None else None
    detail = job_views.job_detail(
        state.instance,
        visible_jobs(request),
        job,
        place=place,
        sensors=state.workspace.sensors.values(),
    )
    page = state.instance.query_runs(RunFilter(job_names=(job.name,)), limit=RECENT_RUNS)
    disabled = state.instance.trigger_states.disabled()
    return render(
        request,
        "job.html",
        {
            "job": detail,
            "graph": job_graph_data(detail.graph),
            "runs": [run_views.run_summary(r) for r in page.runs],
            "more_runs": page.next_cursor is not None,
            "disabled": {t for owner, t in disabled if owner == job.name},
        },
    )
