"""The run page: graph coloured by task state, timeline of attempts, logs, errors, config,
related runs, and the buttons that cancel or rerun it.

While the run has not ended, its head polls ``/runs/{id}/live`` every second; the
answer replaces the head and, out of band, the timeline, the task table and the
graph's states, which ``static/graph.js`` paints onto the boxes it drew.
"""

from __future__ import annotations

import pprint
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from conveyor.definitions.time_partitions import partition_facts
from conveyor.errors import ConveyorError, NotFoundError
from conveyor.server import actions, job_views, run_views
from conveyor.server.api.runs import readable_detail
from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow, audit, job_of, may, principal_of, run_for
from conveyor.server.state import ServerState
from conveyor.server.ui import forms
from conveyor.server.ui.deployments import run_job
from conveyor.server.ui.formdata import form_data
from conveyor.server.ui.gantt import timeline
from conveyor.server.ui.graphs import run_graph_data
from conveyor.server.ui.logs import Chunk, attempt_bytes, is_done, page_before
from conveyor.server.ui.templating import not_found, render

router = APIRouter()

ENDED = ("success", "failure", "canceled")
# Events shown on the page (the newest).
EVENTS_SHOWN = 200
# Characters of a task's result shown.
RESULT_CHARS = 4000


@dataclass(frozen=True, slots=True)
class LogView:
    """The log pane: which attempt and stream of which task, its last page, and whether
    it is followed live."""

    task: str
    attempts: list[tuple[int, str]]
    attempt: int
    stream: str
    chunk: Chunk
    follow: bool


def default_task(run: run_views.RunDetail) -> str | None:
    """The task the page opens on: the first failed one, else the first running, else the
    last to end (none before a task started)."""
    for status in ("failure", "running", "up_for_retry"):
        for t in run.tasks:
            if t.status == status:
                return t.key
    ended = [t for t in run.tasks if t.ended_at is not None]
    return (
        max(ended, key=lambda t: t.ended_at.timestamp() if t.ended_at else 0.0).key
        if ended
        else None
    )


def log_view(
    state: ServerState, run: run_views.RunDetail, key: str, attempt: int | None, stream: str
) -> LogView:
    task = next((t for t in run.tasks if t.key == key), None)
    attempts = [(a.attempt, a.status) for a in task.attempts] if task is not None else []
    number = attempt or (attempts[-1][0] if attempts else 1)
    data, final = attempt_bytes(state.instance, run.id, key, number, stream)
    chunk = page_before(data, len(data), final)
    follow = not final and not is_done(state.instance, run.id, key, number)
    if not follow and not final:
        # Ended without stored output (a killed process): show all its live file kept.
        chunk = page_before(data, len(data), True)
    return LogView(key, attempts, number, stream, chunk, follow)


def result_text(state: ServerState, run_id: str, key: str) -> str | None:
    """The stored output of task ``key``, pretty-printed and cut; None if it has none."""
    try:
        value = state.instance.result_store.get(run_id, key)
    except NotFoundError:
        return None
    except Exception as e:  # a value whose class is gone, or unreadable bytes
        return f"(the result cannot be read here: {type(e).__name__}: {e})"
    text = pprint.pformat(value, width=100, compact=True)
    if len(text) > RESULT_CHARS:
        text = text[:RESULT_CHARS] + f"\n… ({len(text) - RESULT_CHARS} more characters)"
    return text


def live_context(
    request: Request, state: ServerState, run: run_views.RunDetail, task: str | None
) -> dict[str, Any]:
    """What the polled parts of the page show (the buttons only to who may use them)."""
    job = run_job(state, run.job_name, run.deployed_version, run.environment)
    operate = may(request, Action.CANCEL, run.job_name)
    graph = job_views.job_graph(job) if job is not None and job.graph is not None else None
    ended = run.status in ENDED
    failed_tasks = any(t.status in ("failure", "canceled") for t in run.tasks)
    return {
        "run": run,
        "task": task,
        "ended": ended,
        "graph": run_graph_data(run, graph),
        "timeline": timeline(run),
        "can_cancel": operate and not ended and run.status != "canceling",
        "can_rerun_failure": operate and ended and (run.status != "success" or failed_tasks),
        "can_rerun": operate and ended,
        "can_launch": operate,
        "job_loaded": run.job_name in state.workspace.jobs,
        "live_url": f"/runs/{run.id}/live" + (f"?task={quote(task, safe='')}" if task else ""),
        "events": run_views.run_events(state.instance, run.id)[-EVENTS_SHOWN:],
        # The period a time partition's key covers, from the job's partitions.
        "partition_window": partition_facts(
            job.partitions if job is not None else None, run.partition
        )[0],
    }


def _load(request: Request, run_id: str) -> run_views.RunDetail | Response:
    state = state_of(request)
    try:
        run = readable_detail(
            request, run_views.run_detail(state.instance, run_for(request, run_id).id)
        )
    except NotFoundError as e:
        return not_found(request, str(e))
    except HTTPException as e:
        if e.status_code != 404:
            raise
        return not_found(request, str(e.detail))
    job = run_job(state, run.job_name, run.deployed_version, run.environment)
    if job is not None:
        # The graph's order among the tasks free to go, as the graph draws them.
        order = list(job.graph.nodes) if job.graph is not None else [job.name]
        run.tasks = run_views.ordered_tasks(run.tasks, order)
    return run


@router.get("/runs/{run_id}", dependencies=[Depends(allow(Action.READ))])
def run_page(
    request: Request,
    run_id: str,
    task: str | None = None,
    attempt: int | None = Query(None, ge=1),
    stream: str = "stdout",
    problem: str | None = None,
) -> Response:
    """A run: its graph, timeline, logs, errors, config and related runs."""
    state = state_of(request)
    loaded = _load(request, run_id)
    if isinstance(loaded, Response):
        return loaded
    run = loaded
    if run.id != run_id:
        return RedirectResponse(f"/runs/{run.id}?{request.url.query}".rstrip("?"), 307)
    key = task if task is not None and any(t.key == task for t in run.tasks) else None
    key = key or (task if task is not None else default_task(run))
    stream = "stderr" if stream == "stderr" else "stdout"
    logs = log_view(state, run, key, attempt, stream) if key is not None else None
    result = result_text(state, run.id, key) if key is not None else None
    context = live_context(request, state, run, key)
    context.update(
        logs=logs,
        result=result,
        problem=problem,
        config_text=forms.to_text(run.run_config),
    )
    return render(request, "run.html", context)


@router.get(
    "/runs/{run_id}/live", include_in_schema=False, dependencies=[Depends(allow(Action.READ))]
)
def run_live(request: Request, run_id: str, task: str | None = None) -> Response:
    """The parts of the run page that change while it runs (polled by the page)."""
    state = state_of(request)
    loaded = _load(request, run_id)
    if isinstance(loaded, Response):
        return loaded
    return render(request, "run_live.html", live_context(request, state, loaded, task))


def _back(run_id: str, problem: str | None = None) -> RedirectResponse:
    query = f"?{urlencode({'problem': problem})}" if problem else ""
    return RedirectResponse(f"/runs/{run_id}{query}", status_code=303)


@router.post("/runs/{run_id}/cancel", dependencies=[Depends(allow(Action.CANCEL))])
def cancel(request: Request, run_id: str) -> Response:
    """Ask the run to stop, then show it."""
    state = state_of(request)
    try:
        run = run_for(request, run_id, Action.CANCEL)
    except NotFoundError as e:
        return not_found(request, str(e))
    try:
        actions.cancel(state, run.id)
    except ConveyorError as e:
        return _back(run.id, str(e))
    audit(request, "cancel", run.id, job=run.job_name)
    return _back(run.id)


@router.post("/runs/{run_id}/rerun", dependencies=[Depends(allow(Action.LAUNCH))])
async def rerun(request: Request, run_id: str) -> Response:
    """Queue the run again (from its failure, or all of it) and show the new run."""
    state = state_of(request)
    mode = (await form_data(request)).get("mode", "failure")
    try:
        run = await run_in_threadpool(run_for, request, run_id, Action.LAUNCH)
    except NotFoundError as e:
        return not_found(request, str(e))
    try:
        job_of(request, run.job_name)
    except NotFoundError as e:
        return _back(run.id, str(e))
    label = principal_of(request).label
    try:
        new = await run_in_threadpool(
            lambda: actions.rerun(state, run.id, full=mode == "all", launched_by=label)
        )
    except ConveyorError as e:
        return _back(run.id, str(e))
    audit(request, "rerun", new.id, job=new.job_name, of=run.id, full=mode == "all")
    return RedirectResponse(f"/runs/{new.id}", status_code=303)
