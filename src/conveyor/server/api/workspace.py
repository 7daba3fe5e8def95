"""``/api/workspace``: the code the server serves, whether it loaded, and loading it again."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow, audit, redact_jobs, visible_jobs, visible_sensors
from conveyor.server.reload import reloader_of
from conveyor.server.state import ServerState

router = APIRouter(prefix="/workspace", tags=["workspace"])


class WorkspaceLoadError(BaseModel):
    """Why the last load of the code failed; the jobs of the last good load stay."""

    message: str
    traceback: str
    at: datetime


class WorkspaceState(BaseModel):
    """The workspace as the server last loaded it."""

    description: str = Field(description="the file, folder or module the code is loaded from")
    loaded_at: datetime | None = Field(description="when the jobs shown were loaded")
    generation: int = Field(description="how many times the code loaded well")
    error: WorkspaceLoadError | None = Field(
        description="why the last load failed, if it did (the jobs are those of the load before)"
    )
    jobs: list[str]
    sensors: list[str]
    processes: dict[str, str] = Field(
        description="what runs beside the server (conveyor dev's daemon), and how it is"
    )


def _time(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def describe(state: ServerState) -> WorkspaceState:
    holder = state.workspace
    ws = holder.workspace
    error = holder.error
    return WorkspaceState(
        description=holder.description,
        loaded_at=_time(holder.loaded_at) if holder.loaded_at is not None else None,
        generation=holder.generation,
        error=(
            WorkspaceLoadError(message=error.message, traceback=error.traceback, at=_time(error.at))
            if error is not None
            else None
        ),
        jobs=sorted(holder.jobs),
        sensors=sorted(ws.sensors) if ws is not None else [],
        processes=dict(state.processes),
    )


@router.get("", dependencies=[Depends(allow(Action.READ))])
def get_workspace(request: Request) -> WorkspaceState:
    """The workspace: where its code is, when it loaded, its jobs, and the load error if
    the last load failed."""
    return readable(request, describe(state_of(request)))


def readable(request: Request, ws: WorkspaceState) -> WorkspaceState:
    """``ws`` with only the jobs and sensors the caller may read, and a load error only
    if it names none of the others."""
    if ws.error is not None and redact_jobs(request, ws.error.message) != ws.error.message:
        ws.error = WorkspaceLoadError(
            message=redact_jobs(request, ws.error.message) or "",
            traceback="",
            at=ws.error.at,
        )
    ws.jobs = sorted(visible_jobs(request))
    ws.sensors = sorted(visible_sensors(request))
    return ws


@router.post("/reload", dependencies=[Depends(allow(Action.OPERATE))])
def reload_workspace(request: Request) -> WorkspaceState:
    """Load the code again (and, under ``conveyor dev``, restart the daemon on it). A load
    that fails answers 200 too, with the error; the jobs of the last good load stay."""
    state = state_of(request)
    reloader = reloader_of(request.app)
    if reloader is not None:
        reloader.reload()
    else:
        state.workspace.reload()
    audit(request, "code reload", state.workspace.description)
    return readable(request, describe(state))
