"""The REST API: one module per resource, each with a ``router``."""

from __future__ import annotations

import importlib
import importlib.util

from fastapi import APIRouter

# Written by `conveyor dev`'s helper; included when it is there.
OPTIONAL = ("conveyor.server.api.workspace",)


def routers() -> list[APIRouter]:
    from conveyor.server.api import (
        access,
        audit,
        backfills,
        daemon,
        deployments,
        groups,
        health,
        jobs,
        logs,
        me,
        pools,
        results,
        runs,
        schedules,
        sensors,
        tokens,
        users,
        webhooks,
        workloads,
    )

    out = [
        health.router,
        jobs.router,
        runs.router,
        logs.router,
        results.router,
        schedules.router,
        sensors.router,
        backfills.router,
        pools.router,
        daemon.router,
        webhooks.router,
        me.router,
        users.router,
        groups.router,
        tokens.router,
        access.router,
        audit.router,
        workloads.router,
        deployments.router,
    ]
    for name in OPTIONAL:
        if importlib.util.find_spec(name) is not None:
            out.append(importlib.import_module(name).router)
    return out
