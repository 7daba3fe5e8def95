"""The server of an Excel add-in: its functions over HTTP and a WebSocket, and the
files Excel loads it by (manifest, metadata, script, page).

``create_app(addin, base_path)`` is an ASGI app serving, under ``base_path`` (the
proxy forwards ``/apps/<name>/...`` whole):

- ``POST functions/<name>`` with ``{"args": [...]}`` (or ``{"args": {...}}``):
  ``{"result": ...}``; bad arguments get 422 ``{"error": ...}`` naming each one,
  the type wanted and the type got;
- ``ws``: calls of any function as ``{"id", "function", "args"}``, answered with
  ``{"id", "type": "value" | "progress" | "result" | "error" | "end", ...}``;
  ``{"id", "cancel": true}`` stops a stream;
- ``manifest.xml``, ``functions.json``, ``functions.js``, ``taskpane.html``,
  the icons, and ``health``.

User functions run in threads (a streaming one in its own, as it may never
return); a stream ends when its function returns, or when its caller cancels or
goes away (``queue.push`` then raises ``StreamClosed`` in the function).

An ``ExcelAddin``'s process runs ``serve_addin(workload, port)``; ``python -m
conveyor.execution.addin_server module:attr --port N --base-path /apps/<name>``
serves one by name (``addin_command`` makes that command).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import os
import struct
import sys
import threading
import zlib
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from conveyor.definitions.addin import Addin, ExcelAddin, ExposedFunction, Queue, StreamClosed
from conveyor.errors import ConfigError
from conveyor.execution import addin_manifest
from conveyor.execution.app_launch import Launch

# Values a stream may have in flight to a slow client before ``push`` waits.
WINDOW = 64


def create_app(addin: Addin, base_path: str = "") -> Starlette:
    """The ASGI app serving ``addin`` under ``base_path`` (``/apps/<name>``, or ``""``)."""
    server = _AddinServer(addin, base_path.rstrip("/"))
    routes: list[BaseRoute] = [
        Route("/functions/{name}", server.call, methods=["POST"]),
        WebSocketRoute("/ws", server.websocket),
        Route("/manifest.xml", server.manifest),
        Route("/functions.json", server.metadata),
        Route("/functions.js", server.script),
        Route("/taskpane.html", server.taskpane),
        Route("/icon-32.png", server.icon),
        Route("/icon-80.png", server.icon),
        Route("/health", server.health),
    ]
    if server.base_path:
        # Under its base path when the proxy forwards the whole path, and at the root
        # when it forwards the path below it (as for services) or someone calls it direct.
        routes = [Mount(server.base_path, routes=routes), *routes]
    return Starlette(routes=routes)


def addin_command(entrypoint: str, port: int, base_path: str, python: str) -> Launch:
    """The command that serves the add-in ``entrypoint`` (``"module:attr"``) on
    127.0.0.1:``port`` under ``base_path``."""
    argv = [python, "-m", "conveyor.execution.addin_server", entrypoint, "--port", str(port)]
    return Launch(argv=[*argv, "--base-path", base_path], env={})


class _AddinServer:
    def __init__(self, addin: Addin, base_path: str) -> None:
        self.addin = addin
        self.base_path = base_path

    def base_url(self, request: Request) -> str:
        """The add-in's public URL, as the client reached it (through the proxy or not)."""
        headers = request.headers
        scheme = headers.get("x-forwarded-proto", request.url.scheme).split(",")[0].strip()
        host = headers.get("x-forwarded-host", headers.get("host", request.url.netloc))
        prefix = headers.get("x-forwarded-prefix", request.scope.get("root_path", ""))
        return f"{scheme}://{host.split(',')[0].strip()}{prefix.rstrip('/')}/"

    async def manifest(self, request: Request) -> Response:
        body = addin_manifest.manifest_xml(self.addin, self.base_url(request))
        return Response(body, media_type="application/xml")

    async def metadata(self, request: Request) -> Response:
        return JSONResponse(addin_manifest.functions_metadata(self.addin))

    async def script(self, request: Request) -> Response:
        body = addin_manifest.functions_script(self.addin, self.base_url(request))
        return Response(body, media_type="text/javascript")

    async def taskpane(self, request: Request) -> Response:
        body = addin_manifest.taskpane_html(self.addin, self.base_url(request))
        return Response(body, media_type="text/html")

    async def icon(self, request: Request) -> Response:
        size = 80 if request.url.path.endswith("80.png") else 32
        return Response(_png(size), media_type="image/png")

    async def health(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def call(self, request: Request) -> Response:
        name = request.path_params["name"]
        fn = self.addin.functions.get(name)
        if fn is None:
            known = ", ".join(self.addin.functions) or "none"
            return _error(404, f"no function {name!r} in add-in {self.addin.name!r} ({known})")
        if fn.streaming:
            return _error(400, f"{name} streams values: call it over the WebSocket at ws")
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError as e:
            return _error(400, f"the body is not JSON: {e}")
        args = body.get("args") if isinstance(body, dict) else body
        try:
            values = fn.bind(args)
        except ConfigError as e:
            return _error(422, str(e))
        try:
            result = await _run(fn, values)
            return JSONResponse({"result": fn.check_result(result)})
        except ConfigError as e:
            return _error(500, str(e))
        except Exception as e:
            return _error(500, f"{name} raised {type(e).__name__}: {e}")

    async def websocket(self, websocket: WebSocket) -> None:
        await websocket.accept()
        session = _Session(websocket, self.addin)
        try:
            while True:
                text = await websocket.receive_text()
                await session.handle(text)
        except WebSocketDisconnect:
            pass
        finally:
            session.close()


async def _run(fn: ExposedFunction, values: list[Any]) -> Any:
    """One plain call (no stream): a coroutine awaited, anything else in a thread."""
    if inspect.iscoroutinefunction(fn.function):
        return await fn.function(*values)
    if fn.takes_queue:  # a progress bar with nobody watching it
        values = [_SilentQueue(), *values]
    return await asyncio.to_thread(fn.function, *values)


class _SilentQueue(Queue):
    def push(self, value: Any) -> None:
        pass

    def progress(self, done: float, message: str = "") -> None:
        pass


class _Session:
    """One WebSocket: the calls it started, each pumping its messages out."""

    def __init__(self, websocket: WebSocket, addin: Addin) -> None:
        self.websocket = websocket
        self.addin = addin
        self.calls: dict[str, _Stream] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        async with self.lock:
            await self.websocket.send_json(message)

    async def handle(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError as e:
            await self.send({"id": None, "type": "error", "error": f"not JSON: {e}"})
            return
        if not isinstance(message, dict) or not isinstance(message.get("id"), str | int):
            error = 'a message is {"id": ..., "function": ..., "args": [...]}'
            await self.send({"id": None, "type": "error", "error": error})
            return
        call_id = message["id"]
        if message.get("cancel"):
            stream = self.calls.pop(str(call_id), None)
            if stream is not None:
                stream.closed.set()
                stream.out.put_nowait(("canceled", {}))  # wakes its pump, which ends
            return
        fn = self.addin.functions.get(str(message.get("function")))
        if fn is None:
            error = f"no function {message.get('function')!r} in add-in {self.addin.name!r}"
            await self.send({"id": call_id, "type": "error", "error": error})
            return
        if str(call_id) in self.calls:
            await self.send({"id": call_id, "type": "error", "error": "that id is in use"})
            return
        try:
            values = fn.bind(message.get("args"))
        except ConfigError as e:
            await self.send({"id": call_id, "type": "error", "error": str(e)})
            return
        stream = _Stream(fn, values, asyncio.get_running_loop())
        self.calls[str(call_id)] = stream
        task = asyncio.create_task(self.pump(call_id, stream))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def pump(self, call_id: str | int, stream: _Stream) -> None:
        if inspect.iscoroutinefunction(stream.fn.function):
            await self._await(call_id, stream)
            return
        stream.start()
        try:
            while True:
                kind, payload = await stream.out.get()
                stream.window.release()
                if stream.closed.is_set():
                    return
                await self.send({"id": call_id, "type": kind, **payload})
                if kind in ("result", "error", "end"):
                    return
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # the client went away mid-send: its calls end with the session
        finally:
            stream.closed.set()
            self.calls.pop(str(call_id), None)

    async def _await(self, call_id: str | int, stream: _Stream) -> None:
        try:
            value = stream.fn.check_result(await stream.fn.function(*stream.values))
            await self.send({"id": call_id, "type": "result", "value": value})
        except Exception as e:
            await self.send({"id": call_id, "type": "error", "error": _raised(stream.fn, e)})
        finally:
            self.calls.pop(str(call_id), None)

    def close(self) -> None:
        for stream in self.calls.values():
            stream.closed.set()
        for task in self.tasks:
            task.cancel()


class _Stream(Queue):
    """One call over the WebSocket, run in its own thread; also the queue it pushes to."""

    def __init__(self, fn: ExposedFunction, values: list[Any], loop: asyncio.AbstractEventLoop):
        self.fn = fn
        self.values = values
        self.loop = loop
        self.out: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.closed = threading.Event()
        self.window = threading.Semaphore(WINDOW)

    def start(self) -> None:
        name = f"addin-{self.fn.name}"
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def push(self, value: Any) -> None:
        self._emit("value", {"value": self.fn.check_result(value)})

    def progress(self, done: float, message: str = "") -> None:
        self._emit("progress", {"done": min(max(float(done), 0.0), 1.0), "message": str(message)})

    def _emit(self, kind: str, payload: dict[str, Any], *, last: bool = False) -> None:
        while not self.window.acquire(timeout=0.1):
            if self.closed.is_set():
                raise StreamClosed
        if self.closed.is_set() and not last:
            self.window.release()
            raise StreamClosed
        try:
            self.loop.call_soon_threadsafe(self.out.put_nowait, (kind, payload))
        except RuntimeError:  # the loop is closed: the server is stopping
            raise StreamClosed from None

    def _run(self) -> None:
        fn = self.fn
        try:
            if fn.generator:
                generator = fn.function(*self.values)
                try:
                    for value in generator:
                        self.push(value)
                finally:
                    generator.close()
                self._emit("end", {}, last=True)
                return
            args = [self, *self.values] if fn.takes_queue else self.values
            result = fn.function(*args)
            if fn.streaming:
                self._emit("end", {}, last=True)
            else:
                self._emit("result", {"value": fn.check_result(result)}, last=True)
        except StreamClosed:
            return
        except Exception as e:
            try:
                self._emit("error", {"error": _raised(fn, e)}, last=True)
            except StreamClosed:
                return


def _raised(fn: ExposedFunction, error: Exception) -> str:
    if isinstance(error, ConfigError):
        return str(error)
    return f"{fn.name} raised {type(error).__name__}: {error}"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _png(size: int) -> bytes:
    """A plain square icon (the manifest must name one)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes((0x21, 0x73, 0x46)) * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * size))
        + chunk(b"IEND", b"")
    )


def load(reference: str) -> Any:
    """The object ``"module:attr"`` names, importing the module from the working folder too."""
    module_name, _, attr = reference.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    value: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        value = getattr(value, part)
    return value


def serve_addin(workload: ExcelAddin, port: int) -> None:
    """Serve ``workload`` on 127.0.0.1:``port`` under its base path until stopped: what
    its process runs (an entrypoint that is not an ``Addin`` is called with the port)."""
    target: Any = workload.addin or workload.entrypoint
    if isinstance(target, str):
        try:
            target = load(str(workload.entrypoint))
        except (ImportError, AttributeError) as e:
            raise ConfigError(
                f"ExcelAddin({workload.name!r}): entrypoint {workload.entrypoint!r} cannot be "
                f"loaded: {e}"
            ) from e
    if isinstance(target, Addin):
        _serve(target, port, workload.base_path)
    elif callable(target):
        target(port)
    else:
        raise ConfigError(
            f"ExcelAddin({workload.name!r}): entrypoint {workload.entrypoint!r} is neither an "
            f"Addin nor a function of the port"
        )


def _serve(addin: Addin, port: int, base_path: str) -> None:
    import uvicorn

    uvicorn.run(create_app(addin, base_path), host="127.0.0.1", port=port, log_level="info")


def main(argv: list[str] | None = None) -> None:
    """Serve the add-in (or call the Datatailr-style ``entrypoint(port)``) until stopped."""
    parser = argparse.ArgumentParser(prog="python -m conveyor.execution.addin_server")
    parser.add_argument("entrypoint", help="module:attr naming an Addin or a serve(port) function")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--base-path", default=os.environ.get("CONVEYOR_BASE_PATH", ""))
    options = parser.parse_args(argv)
    target = load(options.entrypoint)
    if isinstance(target, Addin):
        _serve(target, options.port, options.base_path)
        return
    serve: Callable[[int], Any] = target
    serve(options.port)


if __name__ == "__main__":
    main()
