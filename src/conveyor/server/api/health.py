"""``GET /api/health``: for load balancers and for ``conveyor dev`` to know it answers.

Open to anyone (a load balancer signs in to nothing); a caller that has not
signed in learns only whether the server and its database answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow, principal_of, redact_jobs

router = APIRouter(tags=["health"])


@router.get("/health", dependencies=[Depends(allow(Action.OPEN))])
def health(request: Request) -> JSONResponse:
    """200 with ``{"status": "ok"}`` when the database answers, else 503 saying why
    (which database, and the workspace's load error, to a signed-in caller only)."""
    state = state_of(request)
    try:
        signed_in = principal_of(request).signed_in
    except HTTPException:
        signed_in = False
    body: dict[str, Any] = {"status": "ok"}
    if signed_in:
        body["database"] = state.instance.db.safe_url
    try:
        with state.instance.db.read() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as e:
        body["status"] = "unavailable"
        if signed_in:
            body["error"] = f"the database does not answer: {e}"
        return JSONResponse(body, status_code=503)
    if signed_in and state.workspace.error is not None:
        body["workspace_error"] = redact_jobs(request, state.workspace.error.message)
    return JSONResponse(body)
