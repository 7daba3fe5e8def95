"""Errors as JSON: ``{"error": message}`` with a status that fits, never a bare 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from conveyor.errors import (
    ConfigError,
    ConveyorError,
    DefinitionError,
    ExecutionError,
    InvalidTransitionError,
    NotFoundError,
)

log = logging.getLogger("conveyor.server")


def status_of(error: ConveyorError) -> int:
    """The HTTP status of one of Conveyor's errors."""
    if isinstance(error, NotFoundError):
        return 404
    if isinstance(error, ConfigError | DefinitionError):
        return 422
    if isinstance(error, InvalidTransitionError | ExecutionError):
        return 409
    return 400


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into ``{"error": ...}``."""

    @app.exception_handler(ConveyorError)
    async def conveyor_error(request: Request, exc: ConveyorError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=status_of(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such page: {request.url.path}; the API's routes are listed at /docs"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return JSONResponse({"error": message}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        if any(p["type"] == "json_invalid" for p in problems):
            at = next(p["loc"][-1] for p in problems if p["type"] == "json_invalid")
            message = (
                f"the request's body is not valid JSON (at character {at}); send a JSON "
                f"object with Content-Type: application/json"
            )
        else:
            where = "; ".join(f"{'.'.join(p['loc'])}: {p['msg']}" for p in problems)
            message = f"the request is not valid: {where}"
        return JSONResponse({"error": message, "problems": problems}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse(
            {
                "error": f"the server failed on {request.method} {request.url.path}: "
                f"{type(exc).__name__}: {exc}; its log has the traceback"
            },
            status_code=500,
        )
