"""The web UI: server-rendered pages (Jinja2), live parts with htmx and server-sent events.

One module per page family; every route depends on ``auth.allow`` like the API's.
Templates are in ``server/templates``, scripts and styles in ``server/static``.
"""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    from conveyor.server import proxy
    from conveyor.server.ui import (
        account,
        admin,
        backfills,
        deployments,
        jobs,
        launchpad,
        login,
        logs,
        oidc,
        overview,
        pools,
        run,
        runs,
        schedules,
        workloads,
    )

    return [
        overview.router,
        jobs.router,
        launchpad.router,
        runs.router,
        run.router,
        logs.router,
        schedules.router,
        backfills.router,
        pools.router,
        login.router,
        oidc.router,
        account.router,
        admin.router,
        workloads.router,
        deployments.router,
        # The app proxy at /apps/<name>/: not a page, but no part of the API either.
        proxy.router,
    ]
