"""Pools: each pool's limit, the runs holding its slots now, and the jobs that use it."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from conveyor.server import run_views
from conveyor.server.api.pools import pools
from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow, hidden_jobs, visible_jobs
from conveyor.server.ui.templating import render

router = APIRouter(dependencies=[Depends(allow(Action.READ))])


@router.get("/pools")
def pools_page(request: Request) -> Response:
    """Every pool with a limit or named by a job, with its holders."""
    state = state_of(request)
    found = pools(state.instance, visible_jobs(request), hidden_jobs(request))
    held = {h for p in found for h in p.holders}
    runs = state.instance.run_store.get_many(held) if held else {}
    return render(
        request,
        "pools.html",
        {"pools": found, "runs": {k: run_views.run_summary(r) for k, r in runs.items()}},
    )
