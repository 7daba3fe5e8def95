"""What the supervisor checks of a workload without holding up a daemon pass: its
health (in a thread), how its process ended, and whether its code changed."""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import signal
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.workspace import folder_files

HEALTH_TIMEOUT = 1.0


@dataclass(slots=True)
class HealthCheck:
    """One health check under way in a thread: its answer when done."""

    thread: threading.Thread
    ok: bool | None = None
    detail: str = ""


def code_digest(origin: dict[str, Any]) -> str | None:
    """A digest of the workspace's source files (None if they cannot be read)."""
    paths: list[Path] = []
    if origin.get("file"):
        paths = [Path(origin["file"])]
    elif origin.get("folder"):
        paths = folder_files(Path(origin["folder"]))
    elif origin.get("module"):
        spec = importlib.util.find_spec(origin["module"])
        if spec is None or spec.origin is None:
            return None
        paths = [Path(spec.origin)]
    digest = hashlib.sha256()
    try:
        for path in paths:
            digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    except OSError:
        return None
    return digest.hexdigest()[:16]


def ended(code: int | None) -> str:
    """How a process that ended with ``code`` (``Popen.returncode``) ended, in words."""
    if code is None:
        return "its process ended"  # adopted: its exit code went to the daemon before
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def start_check(port: int, path: str | None) -> HealthCheck:
    """Check in a thread (a slow service does not hold up the pass): GET ``path`` answers
    2xx or 3xx, or without a path, the port accepts a connection."""
    check = HealthCheck(thread=threading.Thread())  # replaced below, once run exists

    def run() -> None:
        try:
            if path is None:
                with socket.create_connection(("127.0.0.1", port), timeout=HEALTH_TIMEOUT):
                    check.ok = True
                return
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HEALTH_TIMEOUT)
            try:
                conn.request("GET", path)
                status = conn.getresponse().status
            finally:
                conn.close()
            check.ok = 200 <= status < 400
            check.detail = f"HTTP {status}"
        except (OSError, http.client.HTTPException) as e:
            check.ok, check.detail = False, f"{type(e).__name__}: {e}"

    check.thread = threading.Thread(target=run, name=f"health:{port}", daemon=True)
    check.thread.start()
    return check
