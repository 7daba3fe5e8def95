"""Serving the app with uvicorn, and saying where once it answers."""

from __future__ import annotations

import errno
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from conveyor.errors import ConfigError

# How long to wait for the first answer before saying the server is slow to start.
ANSWER_WAIT = 30.0


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, or an error naming ``--port``/``--host``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} of {host} is in use (another Conveyor server?): stop what uses it, "
                f"or choose another port with --port (--port 0 takes any free one)"
            ) from None
        raise ConfigError(
            f"cannot serve on {host}:{port}: {e.strerror or e}; choose another address with "
            f"--host or another port with --port"
        ) from None
    return sock


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

    def wait() -> None:
        end = time.monotonic() + deadline
        while time.monotonic() < end and not server.should_exit:
            url = bound_url(server, host)
            if url is not None and _answers(url):
                say(url)
                return
            time.sleep(0.05)
        if not server.should_exit:
            say("")

    thread = threading.Thread(target=wait, name="conveyor-announce", daemon=True)
    thread.start()
    return thread


def _answers(url: str) -> bool:
    """``url`` answers ``GET /api/health`` with any status. With the standard library's
    client: importing httpx would cost the start a few tenths of a second."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=2.0)
    except ValueError:  # not a URL this client can ask
        return False
    try:
        conn.request("GET", "/api/health")
        conn.getresponse().read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
    return True


def stop_on_signals(server: uvicorn.Server) -> list[int]:
    """Make SIGINT and SIGTERM stop ``server``; the list they are noted in, first first.

    uvicorn installs its own handlers while it serves, then puts these back and
    raises the signal that stopped it: it lands here instead of ending the process,
    so the caller says what stopped it and exits as it should (130, or 0).
    """
    stopped_by: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        stopped_by.append(signum)
        server.should_exit = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return stopped_by


def serve(app: FastAPI, host: str, port: int, *, announce: str) -> int | None:
    """Serve until SIGINT or SIGTERM, printing ``<announce>: <url>`` once it answers.

    Returns the signal that stopped it (None if it stopped by itself, such as when
    the port is taken).
    """
    sock = bind(host, port)
    server = make_server(app, host, port)
    stopped_by = stop_on_signals(server)

    def say(url: str) -> None:
        if url:
            print(f"{announce}: {url} (Ctrl-C stops it)", file=sys.stderr, flush=True)
        else:
            print(f"{announce}: no answer after {ANSWER_WAIT:.0f} s", file=sys.stderr, flush=True)

    announce_when_up(server, host, say)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return stopped_by[0] if stopped_by else None
