"""The runs list: filters (job, status), counts per status, and pages read by cursor.

A page is read after the cursor of the one before (``Instance.query_runs``), never by
offset, so the hundredth page costs what the first does on a million runs. "Newer"
is the browser's back button, or the first page: a cursor only reads onwards.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from conveyor.errors import ConfigError
from conveyor.server import run_views
from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow
from conveyor.server.ui.templating import render
from conveyor.storage.run_queries import RunFilter
from conveyor.storage.states import RunStatus

router = APIRouter(dependencies=[Depends(allow(Action.READ))])

PAGE_SIZE = 50
MAX_PAGE = 500


def runs_url(
    job: str | None, status: str | None, cursor: str | None = None, limit: int = PAGE_SIZE
) -> str:
    """The URL of the runs list with these filters (a stable link to a page)."""
    pairs = (("job", job), ("status", status), ("cursor", cursor))
    query = {k: v for k, v in pairs if v}
    if limit != PAGE_SIZE:
        query["limit"] = str(limit)
    return "/runs" + (f"?{urlencode(query)}" if query else "")


@router.get("/runs")
def runs_page(
    request: Request,
    job: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = Query(PAGE_SIZE, ge=1, le=MAX_PAGE),
) -> Response:
    """Runs newest first, filtered by job and status, ``limit`` a page."""
    state = state_of(request)
    job = (job or "").strip() or None
    status = status if status in {s.value for s in RunStatus} else None
    base = RunFilter(job_names=(job,) if job else ())
    wanted = RunFilter(job_names=base.job_names, statuses=(status,) if status else ())
    problem = None
    try:
        page = state.instance.query_runs(wanted, limit=limit, cursor=cursor or None)
    except ConfigError as e:
        problem = str(e)
        page = state.instance.query_runs(wanted, limit=limit)
    counts = state.instance.run_status_counts(base)
    return render(
        request,
        "runs.html",
        {
            "runs": [run_views.run_summary(r) for r in page.runs],
            "job": job,
            "status": status,
            "jobs": sorted(state.workspace.jobs),
            "statuses": [s.value for s in RunStatus],
            "counts": counts,
            "total": sum(counts.values()),
            "next_url": runs_url(job, status, page.next_cursor, limit)
            if page.next_cursor
            else None,
            "first_url": runs_url(job, status, None, limit) if cursor else None,
            "count_url": lambda s: runs_url(job, s, None, limit),
            "problem": problem,
            "limit": limit,
        },
    )
