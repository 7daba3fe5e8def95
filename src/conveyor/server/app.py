"""``create_app``: the FastAPI app of the API (``/api``) and the UI, on one ``ServerState``."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from markupsafe import escape
from starlette.exceptions import HTTPException
from starlette.responses import Response

from conveyor import __version__
from conveyor.server import errors
from conveyor.server.state import ServerState

STATIC = Path(__file__).parent / "static"
# The version of the vendored Swagger UI that /docs serves.
SWAGGER_UI = "5.17.14"
# Paths that answer JSON (their errors too); the others are pages for people.
JSON_PATHS = ("/api/", "/openapi.json")


def create_app(state: ServerState) -> FastAPI:
    """The app; its routes read ``state`` (``request.app.state.conveyor``)."""
    from fastapi.staticfiles import StaticFiles

    from conveyor.server.api import routers as api_routers
    from conveyor.server.security import SecurityHeaders
    from conveyor.server.ui import routers as ui_routers

    app = FastAPI(
        title="Conveyor",
        version=__version__,
        description="Jobs written as Python code: their runs, logs, results and triggers.",
        # /docs is ours: FastAPI's loads Swagger UI from a CDN, and users may be offline.
        docs_url=None,
        redoc_url=None,
    )
    app.state.conveyor = state
    errors.install(app)
    _install_page_errors(app)
    app.add_middleware(SecurityHeaders)
    for router in api_routers():
        app.include_router(router, prefix="/api")
    # The pages are HTML for people: the OpenAPI schema documents the API only.
    for router in ui_routers():
        app.include_router(router, include_in_schema=False)
    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_api_route("/docs", _api_docs, include_in_schema=False)
    app.add_api_route("/favicon.ico", _favicon, include_in_schema=False)
    return app


def _favicon() -> Response:
    """The icon browsers ask for at the root when a page names none (an app's page
    behind the proxy, a JSON answer): Conveyor's own."""
    icon = STATIC / "favicon.svg"
    if not icon.is_file():
        return Response(status_code=404)
    return FileResponse(
        icon, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"}
    )


def _install_page_errors(app: FastAPI) -> None:
    """A page (not the API) answers 401 by sending the browser to the login page, and
    403/404 with a page saying why; the API's answers stay JSON."""
    json_error: Any = app.exception_handlers[HTTPException]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        path = request.url.path
        if path.startswith(JSON_PATHS) or request.method not in ("GET", "POST", "HEAD"):
            return await json_error(request, exc)  # type: ignore[no-any-return]
        if exc.status_code == 401:
            # After signing in, back to the page; a form's POST is not repeated.
            here = path + (f"?{request.url.query}" if request.url.query else "")
            if request.method == "POST":
                here = "/"
            target = f"/login?next={quote(here, safe='')}"
            if request.headers.get("hx-request"):
                return Response(status_code=401, headers={"HX-Redirect": target})
            return RedirectResponse(target, status_code=303)
        if exc.status_code in (403, 404):
            from conveyor.server.ui.templating import render

            message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
            if exc.status_code == 404 and message == "Not Found":
                message = f"no such page: {path}"
            title = "Not allowed" if exc.status_code == 403 else "Not found"
            return render(
                request, "not_found.html", {"message": message, "title": title}, exc.status_code
            )
        return await json_error(request, exc)  # type: ignore[no-any-return]

    app.add_exception_handler(HTTPException, http_error)


def _api_docs(request: Request) -> HTMLResponse:
    """The API's schema in Swagger UI, served from the package (see static/VENDORED.md);
    started by ``static/swagger-init.js``, as the page may run no inline script."""
    from conveyor.server.security import csrf_token

    css = f"/static/swagger-ui-{SWAGGER_UI}.css"
    js = f"/static/swagger-ui-bundle-{SWAGGER_UI}.js"
    return HTMLResponse(
        f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="csrf-token" content="{escape(csrf_token(request))}">
<link rel="stylesheet" href="{css}">
<link rel="icon" href="/static/favicon.svg">
<title>Conveyor API</title>
</head>
<body>
<div id="swagger-ui" data-url="/openapi.json"></div>
<script src="{js}"></script>
<script src="/static/swagger-init.js"></script>
</body>
</html>"""
    )


def state_of(request: Request) -> ServerState:
    """The ``ServerState`` of the app serving ``request``."""
    state: ServerState = request.app.state.conveyor
    return state
