"""The REST API: one module per resource, each with a ``router``."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    from conveyor.server.api import health

    return [health.router]
