"""Serving the app with uvicorn, and saying where once it answers."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

# How long to wait for the first answer before saying the server is slow to start.
ANSWER_WAIT = 30.0


def make_server(app: FastAPI, host: str, port: int) -> uvicorn.Server:
    """A uvicorn server for ``app``; its access log off (the UI polls)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=3,
    )
    return uvicorn.Server(config)


def bound_url(server: uvicorn.Server, host: str) -> str | None:
    """``http://host:port`` once ``server`` listens (its real port when 0 was asked)."""
    if not server.started or not server.servers:
        return None
    sockets = server.servers[0].sockets
    if not sockets:
        return None
    port = sockets[0].getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://{shown}:{port}"


def announce_when_up(
    server: uvicorn.Server, host: str, say: Callable[[str], None], deadline: float = ANSWER_WAIT
) -> threading.Thread:
    """Call ``say(url)`` once ``/api/health`` answers (from a thread, so serving goes on)."""
    import httpx

    def wait() -> None:
        end = time.monotonic() + deadline
        while time.monotonic() < end and not server.should_exit:
            url = bound_url(server, host)
            if url is not None:
                try:
                    httpx.get(f"{url}/api/health", timeout=2.0)
                except httpx.HTTPError:
                    pass
                else:
                    say(url)
                    return
            time.sleep(0.05)
        if not server.should_exit:
            say("")

    thread = threading.Thread(target=wait, name="conveyor-announce", daemon=True)
    thread.start()
    return thread


def serve(app: FastAPI, host: str, port: int, *, announce: str) -> None:
    """Serve until SIGINT or SIGTERM, printing ``<announce>: <url>`` once it answers."""

    server = make_server(app, host, port)

    def say(url: str) -> None:
        if url:
            print(f"{announce}: {url} (Ctrl-C stops it)", file=sys.stderr, flush=True)
        else:
            print(f"{announce}: no answer after {ANSWER_WAIT:.0f} s", file=sys.stderr, flush=True)

    announce_when_up(server, host, say)
    server.run()
