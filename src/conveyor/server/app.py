"""``create_app``: the FastAPI app of the API (``/api``) and the UI, on one ``ServerState``."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from conveyor import __version__
from conveyor.server import errors
from conveyor.server.state import ServerState

STATIC = Path(__file__).parent / "static"
# The version of the vendored Swagger UI that /docs serves.
SWAGGER_UI = "5.17.14"


def create_app(state: ServerState) -> FastAPI:
    """The app; its routes read ``state`` (``request.app.state.conveyor``)."""
    from fastapi.staticfiles import StaticFiles

    from conveyor.server.api import routers as api_routers
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
    for router in api_routers():
        app.include_router(router, prefix="/api")
    # The pages are HTML for people: the OpenAPI schema documents the API only.
    for router in ui_routers():
        app.include_router(router, include_in_schema=False)
    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_api_route("/docs", _api_docs, include_in_schema=False)
    return app


def _api_docs() -> HTMLResponse:
    """The API's schema in Swagger UI, served from the package (see static/VENDORED.md)."""
    from fastapi.openapi.docs import get_swagger_ui_html

    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Conveyor API",
        swagger_js_url=f"/static/swagger-ui-bundle-{SWAGGER_UI}.js",
        swagger_css_url=f"/static/swagger-ui-{SWAGGER_UI}.css",
        swagger_favicon_url="/static/favicon.svg",
    )


def state_of(request: Request) -> ServerState:
    """The ``ServerState`` of the app serving ``request``."""
    state: ServerState = request.app.state.conveyor
    return state
