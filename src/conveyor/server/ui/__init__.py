"""The web UI: server-rendered pages (Jinja2), live parts with htmx and server-sent events."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    return []
