"""A workspace of one service for the supervisor's tests: it answers ``/health`` and
``/pid`` (its process id) on the port it is given."""

from __future__ import annotations

import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from conveyor import Service


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = str(os.getpid()).encode() if self.path == "/pid" else b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(port: int) -> None:
    print(f"echo serving on {port}", flush=True)
    print("echo stderr line", file=sys.stderr, flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), _Handler).serve_forever()


echo = Service("echo", serve, health="/health", env_vars={"GREETING": "hi"})
