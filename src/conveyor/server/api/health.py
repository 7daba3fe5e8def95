"""``GET /api/health``: for load balancers and for ``conveyor dev`` to know it answers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow

router = APIRouter(tags=["health"])


@router.get("/health", dependencies=[Depends(allow(Action.READ))])
def health(request: Request) -> JSONResponse:
    """200 with ``{"status": "ok"}`` when the database answers, else 503 saying why."""
    state = state_of(request)
    body: dict[str, Any] = {"status": "ok", "database": state.instance.db.safe_url}
    try:
        with state.instance.db.read() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as e:
        body.update(status="unavailable", error=f"the database does not answer: {e}")
        return JSONResponse(body, status_code=503)
    if state.workspace.error is not None:
        body["workspace_error"] = state.workspace.error.message
    return JSONResponse(body)
