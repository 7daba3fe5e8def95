"""A tiny app behind the proxy in the tests: run as ``python backend_app.py PORT_FILE``.

It binds a free loopback port, writes it to ``PORT_FILE`` and serves (uvicorn) an ASGI
app that answers on any path prefix (the proxy keeps ``/apps/<name>`` for apps and
strips it for services), by the path's end:

- ``.../sse``: one server-sent event, then a second one only after ``.../release``;
- ``.../upload``: the length and SHA-256 of the body it read in chunks;
- ``.../redirect``: a 302 to an absolute URL on its own address;
- ``.../last-close``: the close code of the last WebSocket its client closed;
- a WebSocket: a first message saying what it saw, then an echo; ``close:NNNN``
  makes it close with code NNNN;
- anything else: what it got (method, path, query, headers, body length), with
  two cookies set.

It exits by itself after ``LIFETIME`` seconds, so a test that dies leaves nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import sys
import threading
from typing import Any

import uvicorn

LIFETIME = 300.0
seen: dict[str, Any] = {"last_close": None}
released: list[asyncio.Event] = []


def _event() -> asyncio.Event:
    if not released:
        released.append(asyncio.Event())
    return released[0]


async def _json(send: Any, value: Any, status: int = 200, extra: list[Any] | None = None) -> None:
    body = json.dumps(value).encode()
    headers = [(b"content-type", b"application/json"), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path: str = scope["path"]
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        offered = scope.get("subprotocols") or []
        await send({"type": "websocket.accept", "subprotocol": offered[0] if offered else None})
        await send(
            {
                "type": "websocket.send",
                "text": json.dumps({"path": path, "headers": headers, "subprotocol": offered}),
            }
        )
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                seen["last_close"] = message.get("code")
                return
            text = message.get("text")
            if text is not None and text.startswith("close:"):
                await send({"type": "websocket.close", "code": int(text[6:]), "reason": "asked"})
                return
            if text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
    if scope["type"] != "http":
        return
    if path.endswith("/sse"):
        start = {"type": "http.response.start", "status": 200}
        await send({**start, "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": b"data: one\n\n", "more_body": True})
        await _event().wait()
        await send({"type": "http.response.body", "body": b"data: two\n\n", "more_body": False})
        return
    if path.endswith("/release"):
        _event().set()
        await _json(send, {"released": True})
        return
    if path.endswith("/last-close"):
        await _json(send, seen)
        return
    if path.endswith("/redirect"):
        host, port = scope["server"]
        where = f"http://{host}:{port}{path[: -len('redirect')]}landed".encode()
        await send(
            {"type": "http.response.start", "status": 302, "headers": [(b"location", where)]}
        )
        await send({"type": "http.response.body", "body": b""})
        return
    digest, length, chunks = hashlib.sha256(), 0, 0
    while True:
        message = await receive()
        body = message.get("body", b"")
        digest.update(body)
        length += len(body)
        chunks += 1 if body else 0
        if not message.get("more_body"):
            break
    await _json(
        send,
        {
            "method": scope["method"],
            "path": path,
            "query": scope["query_string"].decode(),
            "headers": headers,
            "length": length,
            "sha256": digest.hexdigest(),
        },
        extra=[(b"set-cookie", b"first=1; Path=/"), (b"set-cookie", b"second=2; Path=/")],
    )


def main() -> None:
    port_file = sys.argv[1]
    timer = threading.Timer(LIFETIME, os._exit, args=(0,))
    timer.daemon = True
    timer.start()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(sock.getsockname()[1]))
    os.replace(port_file + ".tmp", port_file)
    config = uvicorn.Config(app, lifespan="off", log_level="warning", ws="websockets-sansio")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
