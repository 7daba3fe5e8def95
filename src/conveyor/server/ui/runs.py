"""The runs list: filters (job, status, a tag, the trigger), counts per status, and
pages read by cursor.

A page is read after the cursor of the one before (``Instance.query_runs``), never by
offset, so the hundredth page costs what the first does on a million runs. "Newer"
is the browser's back button, or the first page: a cursor only reads onwards.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from conveyor.errors import ConfigError
from conveyor.server import run_views
from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow, hidden_jobs, visible_jobs
from conveyor.server.ui.templating import render
from conveyor.storage.run_queries import RunFilter
from conveyor.storage.states import RunStatus

router = APIRouter(dependencies=[Depends(allow(Action.READ))])

PAGE_SIZE = 50
MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class Filters:
    """What the runs list is filtered by, as its URL says."""

    job: str | None = None
    status: str | None = None
    tag: str | None = None  # KEY=VALUE
    trigger: str | None = None

    def url(self, cursor: str | None = None, limit: int = PAGE_SIZE, **change: str | None) -> str:
        """The URL of the runs list with these filters (``change`` replaces some): a
        stable link to a page."""
        values = {**asdict(self), **change, "cursor": cursor}
        query = {k: v for k, v in values.items() if v}
        if limit != PAGE_SIZE:
            query["limit"] = str(limit)
        return "/runs" + (f"?{urlencode(query)}" if query else "")

    def run_filter(self, with_status: bool = True, hidden: tuple[str, ...] = ()) -> RunFilter:
        """The storage filter, leaving out the runs of ``hidden`` jobs; ``ConfigError``
        for a tag that is not KEY=VALUE."""
        tags: tuple[tuple[str, str], ...] = ()
        if self.tag:
            key, sep, value = self.tag.partition("=")
            if not sep or not key.strip():
                raise ConfigError(
                    f"the tag filter {self.tag!r} is not KEY=VALUE; write it as team=risk"
                )
            tags = ((key.strip(), value.strip()),)
        return RunFilter(
            job_names=(self.job,) if self.job else (),
            statuses=(self.status,) if self.status and with_status else (),
            tags=tags,
            trigger=self.trigger,
            hidden_jobs=hidden,
        )


@router.get("/runs")
def runs_page(
    request: Request,
    job: str | None = None,
    status: str | None = None,
    tag: str | None = None,
    trigger: str | None = None,
    cursor: str | None = None,
    limit: int = Query(PAGE_SIZE, ge=1, le=MAX_PAGE),
) -> Response:
    """Runs newest first, filtered by job, status, a tag and the trigger, ``limit`` a page."""
    state = state_of(request)
    statuses = [s.value for s in RunStatus]
    wanted_status = (status or "").strip().lower() or None
    f = Filters(
        job=(job or "").strip() or None,
        status=wanted_status if wanted_status in statuses else None,
        tag=(tag or "").strip() or None,
        trigger=(trigger or "").strip() or None,
    )
    problem = None
    if wanted_status is not None and f.status is None:
        # Said, not silently dropped: the list below is of every status.
        problem = (
            f"no status {status!r}; statuses: {', '.join(statuses)}. "
            f"The list shows runs of every status."
        )
    hidden = tuple(sorted(hidden_jobs(request)))
    try:
        wanted, base = f.run_filter(hidden=hidden), f.run_filter(False, hidden)
    except ConfigError as e:
        problem = f"{problem} {e}" if problem else str(e)
        f = replace(f, tag=None)
        wanted, base = f.run_filter(hidden=hidden), f.run_filter(False, hidden)
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
            "job": f.job,
            "status": f.status,
            "tag": f.tag,
            "trigger": f.trigger,
            "filtered": any((f.job, f.status, f.tag, f.trigger)),
            "jobs": sorted(visible_jobs(request)),
            "statuses": statuses,
            "counts": counts,
            "total": sum(counts.values()),
            "next_url": f.url(page.next_cursor, limit) if page.next_cursor else None,
            "first_url": f.url(None, limit) if cursor else None,
            "count_url": lambda s: f.url(None, limit, status=s),
            "problem": problem,
            "limit": limit,
        },
    )
