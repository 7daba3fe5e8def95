"""The app proxy: each workload (service, app, interactive job, add-in) at ``/apps/<name>/``.

Workloads listen on loopback ports that browsers cannot reach; the server forwards
to them, so that one address, one sign-in and one access list cover every app. Each
request (and each WebSocket handshake) is checked against the workload's ``access``
permission (``workload_auth.authorize_workload``); the app learns who is calling from the
header ``X-Conveyor-User``, which the proxy always sets itself, and never sees
Conveyor's own credentials (the session and CSRF cookies, the API token).

Bodies are streamed both ways, so large uploads, downloads and server-sent events
pass without being held in memory or delayed. Apps (and interactive jobs), which
are started knowing their base path, get the full path; services, which serve from
``/``, get the path below ``/apps/<name>``; both get ``X-Forwarded-Prefix``.

Conveyor's CSRF check does not apply here: the app's forms are the app's own. A
WebSocket handshake from another site's page is refused, since browsers let any
page open one with the user's cookies; the backend then gets no ``Origin`` (the
check is done), which frameworks that compare it with ``Host`` accept.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from conveyor.definitions.access import Permission
from conveyor.server.auth import (
    SESSION_COOKIE,
    Principal,
    audit,
)
from conveyor.server.security import CSRF_COOKIE
from conveyor.server.workload_auth import authorize_workload, workload_not_found
from conveyor.storage.workloads import WorkloadRecord

PREFIX = "/apps"
USER_HEADER = "x-conveyor-user"
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# Headers about one connection, not the message (RFC 9110 §7.6.1): never forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Set by the proxy alone: what a caller sends under these names is dropped.
SET_HERE = frozenset(
    {USER_HEADER, "x-forwarded-for", "x-forwarded-host", "x-forwarded-prefix", "x-forwarded-proto"}
)
# Conveyor's own cookies: the app must not see the user's session.
OUR_COOKIES = frozenset({SESSION_COOKIE, CSRF_COOKIE})
# A workload in these states has a process answering on its port.
SERVING = frozenset({"running", "unhealthy"})
# Kinds started with their base path: they get the whole path, prefix included.
KEEP_PREFIX = frozenset({"app", "interactive"})
# How long a request to an interactive job waits for it to start.
START_WAIT = 60.0
# The time of the last request is written at most this often (seconds) per workload.
TOUCH_EVERY = 5.0
# WebSocket close codes that may not be sent in a close frame (RFC 6455 §7.4.1).
UNSENDABLE = frozenset({1004, 1005, 1006, 1015})

router = APIRouter()


def base_path(name: str) -> str:
    """Where the proxy serves workload ``name``."""
    return f"{PREFIX}/{name}"


# -- who may come in, and where to --------------------------------------------------------


def _instance(conn: HTTPConnection) -> Any:
    return conn.app.state.conveyor.instance


def admit(conn: HTTPConnection, name: str) -> tuple[Principal, WorkloadRecord]:
    """The caller and the workload's record, if the caller may reach it (401/403/404)."""
    principal = authorize_workload(conn, Permission.ACCESS, name)
    record: WorkloadRecord | None = _instance(conn).workloads.get(name)
    if record is None:
        raise HTTPException(404, workload_not_found(conn, name))
    return principal, record


def not_serving(record: WorkloadRecord) -> str:
    """Why workload ``record`` cannot answer now, and what to do."""
    asked = " (it was asked to stop)" if record.desired == "stopped" else ""
    error = f"; last error: {record.last_error}" if record.last_error else ""
    if record.state in SERVING:  # running, but its port is not known yet
        return f"workload {record.name!r} is {record.state} but has no port yet; try again"
    return (
        f"workload {record.name!r} is not running: it is {record.state}{asked}{error}; "
        f"start it on the page /workloads, with POST /api/workloads/{record.name}/start or "
        f"`conveyor services start {record.name}`"
    )


def _serving(record: WorkloadRecord) -> bool:
    return record.state in SERVING and record.port is not None


def _unavailable(record: WorkloadRecord) -> HTTPException:
    return HTTPException(503, not_serving(record), headers={"Retry-After": "5"})


async def ready(conn: HTTPConnection, record: WorkloadRecord) -> WorkloadRecord:
    """The record of a workload that serves now: an interactive job not running is
    asked to start (the supervisor starts it) and waited for, up to ``START_WAIT``;
    any other kind that is not running is a 503 saying why."""
    if _serving(record):
        return record
    if record.kind != "interactive":
        raise _unavailable(record)
    store = _instance(conn).workloads
    if record.desired != "running":
        # The request's time tells the supervisor that a request started it (the run's
        # trigger), and its idle timeout counts from it.
        await run_in_threadpool(
            store.update, record.name, record.token, last_request_at=time.time()
        )
        await run_in_threadpool(store.set_desired, record.name, "running")
        if isinstance(conn, Request):
            await run_in_threadpool(audit, conn, "workload start", record.name, on="request")
    deadline = time.monotonic() + START_WAIT
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        now: WorkloadRecord | None = await run_in_threadpool(store.get, record.name)
        if now is None:
            raise HTTPException(404, f"workload {record.name!r} was removed")
        if _serving(now):
            return now
        if now.state == "crash_loop" or now.desired == "stopped":
            raise _unavailable(now)  # it ended (or was stopped) before it served
        record = now
    raise _unavailable(record)


def touch(conn: HTTPConnection, record: WorkloadRecord) -> None:
    """Note that the workload was used now (an interactive job's idle timeout counts
    from it), at most every ``TOUCH_EVERY`` seconds."""
    now = time.time()
    if record.last_request_at is None or now - record.last_request_at >= TOUCH_EVERY:
        _instance(conn).workloads.update(record.name, record.token, last_request_at=now)


def target_url(conn: HTTPConnection, record: WorkloadRecord, scheme: str = "http") -> str:
    """The backend's URL for the path ``conn`` asked for (raw, as the client encoded it)."""
    prefix = base_path(record.name)
    raw = conn.scope.get("raw_path") or quote(conn.url.path).encode()
    path = raw.decode("latin-1")
    if not path.startswith(prefix + "/"):  # an encoded name: rebuild it from the decoded path
        path = prefix + "/" + quote(conn.path_params.get("path", ""))
    if record.kind not in KEEP_PREFIX:
        path = path[len(prefix) :]
    query = conn.scope.get("query_string", b"").decode("latin-1")
    return f"{scheme}://127.0.0.1:{record.port}{path}" + (f"?{query}" if query else "")


def forward_headers(
    conn: HTTPConnection, principal: Principal, *, keep_host: bool
) -> list[tuple[str, str]]:
    """The request's headers as the backend gets them: without hop-by-hop headers,
    Conveyor's credentials and anything claiming to be set by the proxy; with the
    caller's name and where the request came from."""
    named = {
        token.strip().lower()
        for value in conn.headers.getlist("connection")
        for token in value.split(",")
    }
    drop = HOP_BY_HOP | SET_HERE | named | {"cookie"}
    # In login mode an Authorization header is Conveyor's (principal_of checked it).
    ours = conn.headers.get("authorization", "").startswith("Bearer cvt_")
    if conn.app.state.conveyor.auth.login_required or ours:
        drop |= {"authorization"}
    if not keep_host:
        drop |= {"host"}
    out = [(k, v) for k, v in conn.headers.items() if k.lower() not in drop]
    cookies = _app_cookies(conn.headers.getlist("cookie"))
    if cookies:
        out.append(("cookie", cookies))
    client = conn.client.host if conn.client is not None else ""
    earlier = conn.headers.get("x-forwarded-for")
    out += [
        (USER_HEADER, principal.name),
        ("x-forwarded-for", f"{earlier}, {client}" if earlier else client),
        ("x-forwarded-proto", conn.url.scheme.replace("ws", "http")),
        ("x-forwarded-host", conn.headers.get("host", "")),
        ("x-forwarded-prefix", base_path(conn.path_params["name"])),
    ]
    return out


def _app_cookies(headers: list[str]) -> str:
    """The Cookie header without Conveyor's own cookies."""
    kept = []
    for header in headers:
        for part in header.split(";"):
            name = part.split("=", 1)[0].strip()
            if name and name not in OUR_COOKIES:
                kept.append(part.strip())
    return "; ".join(kept)


# -- HTTP ----------------------------------------------------------------------------------


@router.api_route(PREFIX + "/{name}", methods=METHODS)
def to_folder(request: Request, name: str) -> RedirectResponse:
    """``/apps/<name>`` is ``/apps/<name>/``: the app's relative links resolve below it."""
    query = request.url.query
    return RedirectResponse(f"{base_path(name)}/" + (f"?{query}" if query else ""), 307)


class Relayed(StreamingResponse):
    """The backend's answer, streamed as it arrives; the upstream connection is closed
    when the answer ends, however it ends (the client may go away mid-stream)."""

    def __init__(self, upstream: httpx.Response, client: httpx.AsyncClient, backend: str) -> None:
        super().__init__(upstream.aiter_raw(), status_code=upstream.status_code)
        self.upstream, self.client = upstream, client
        headers = []
        for key, value in upstream.headers.multi_items():
            lower = key.lower()
            if lower in HOP_BY_HOP:
                continue
            if lower == "location" and value.startswith(backend):
                value = value[len(backend) :] or "/"
            headers.append((lower, value))
        present = {k for k, _ in headers}
        # Conveyor's pages forbid inline scripts and framing; an app's pages (Streamlit,
        # Dash) need inline scripts, and an app may be framed by its own origin. The
        # app's own policy, when it sends one, holds.
        if "content-security-policy" not in present:
            headers.append(("content-security-policy", "frame-ancestors 'self'"))
        if "x-frame-options" not in present:
            headers.append(("x-frame-options", "SAMEORIGIN"))
        self.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.upstream.aclose()
            await self.client.aclose()


@router.api_route(PREFIX + "/{name}/{path:path}", methods=METHODS)
async def proxy_http(request: Request, name: str, path: str) -> Response:
    """Forward the request to the workload, streaming both bodies."""
    try:
        principal, record = await run_in_threadpool(admit, request, name)
        record = await ready(request, record)
    except HTTPException as e:
        # A browser is sent to sign in (401) or shown a page (403, 404) by the app's
        # handlers; a program (it sent a token) gets JSON; a 503 keeps its Retry-After.
        if e.status_code == 503 or "authorization" in request.headers:
            return JSONResponse({"error": e.detail}, status_code=e.status_code, headers=e.headers)
        raise
    await run_in_threadpool(touch, request, record)
    url = target_url(request, record)
    guarded = mcp_guarded(record)
    if guarded and not _same_site(request):
        return JSONResponse(
            {"error": f"refused a call to MCP job {name!r} from another site's page"},
            status_code=403,
        )
    headers = forward_headers(request, principal, keep_host=not guarded)
    if guarded:  # its checks are done: the MCP server's guard sees loopback, no Origin
        headers = [(k, v) for k, v in headers if k.lower() != "origin"]
    has_body = "content-length" in request.headers or "transfer-encoding" in request.headers
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(connect=10.0, read=None, write=None, pool=10.0),
        follow_redirects=False,
        trust_env=False,
    )
    outgoing = client.build_request(
        request.method, url, headers=headers, content=request.stream() if has_body else None
    )
    try:
        upstream = await client.send(outgoing, stream=True)
    except httpx.HTTPError as e:
        await client.aclose()
        return JSONResponse(
            {
                "error": f"workload {name!r} did not answer on port {record.port} "
                f"({type(e).__name__}: {e}); it may be starting or stopping: see its logs "
                f"on the page /workloads"
            },
            status_code=502,
        )
    return Relayed(upstream, client, f"http://127.0.0.1:{record.port}")


# -- WebSockets ----------------------------------------------------------------------------


def _same_site(conn: HTTPConnection) -> bool:
    """Whether the request comes from one of this server's pages (or from a program,
    which sends no ``Origin``)."""
    origin = conn.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == conn.headers.get("host", "")


def mcp_guarded(record: WorkloadRecord) -> bool:
    """Whether the workload is an interactive job of interface ``mcp``: the proxy sends
    it the loopback ``Host`` its MCP server's DNS-rebinding guard allows, and no
    ``Origin`` (the proxy refused other sites' pages itself)."""
    return record.kind == "interactive" and record.spec.get("interface") == "mcp"


async def _refuse(ws: WebSocket, status: int, message: str) -> None:
    """Refuse a handshake with an HTTP answer where the server can send one (uvicorn
    can), else by closing it with 1008 (policy violation)."""
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(JSONResponse({"error": message}, status_code=status))
    else:
        await ws.close(code=1008, reason=message[:120])


def _close_code(code: int | None) -> int:
    if code is None or code in UNSENDABLE:
        return 1000 if code in (None, 1005) else 1011
    return code


@router.websocket(PREFIX + "/{name}/{path:path}")
async def proxy_websocket(ws: WebSocket, name: str, path: str) -> None:
    """Forward a WebSocket both ways, with its subprotocol, messages and close codes."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

    if not _same_site(ws):
        await _refuse(
            ws, 403, f"refused a WebSocket from another site's page ({ws.headers.get('origin')})"
        )
        return
    try:
        principal, record = await run_in_threadpool(admit, ws, name)
        record = await ready(ws, record)
        await run_in_threadpool(touch, ws, record)
    except HTTPException as e:
        await _refuse(ws, e.status_code, str(e.detail))
        return
    headers = [
        (k, v)
        for k, v in forward_headers(ws, principal, keep_host=False)
        if not k.lower().startswith("sec-websocket-") and k.lower() != "origin"
    ]
    offered = [
        p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",") if p.strip()
    ]
    try:
        backend = await connect(
            target_url(ws, record, "ws"),
            additional_headers=headers,
            subprotocols=offered or None,  # type: ignore[arg-type]
            user_agent_header=None,
            compression=None,
            max_size=None,
            open_timeout=10,
            ping_interval=None,
        )
    except InvalidStatus as e:
        await _refuse(ws, e.response.status_code, f"workload {name!r} refused the WebSocket")
        return
    except (OSError, InvalidHandshake, TimeoutError) as e:
        await _refuse(ws, 502, f"workload {name!r} did not take the WebSocket: {e}")
        return
    await ws.accept(subprotocol=backend.subprotocol)
    last_touch = time.monotonic()

    async def used() -> None:
        nonlocal last_touch
        if time.monotonic() - last_touch >= TOUCH_EVERY:
            last_touch = time.monotonic()
            fresh = await run_in_threadpool(_instance(ws).workloads.get, name)
            if fresh is not None:
                await run_in_threadpool(touch, ws, fresh)

    async def from_client() -> None:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                await backend.close(_close_code(message.get("code")), message.get("reason") or "")
                return
            data = message.get("bytes")
            await backend.send(data if data is not None else message.get("text") or "")
            await used()

    async def from_backend() -> None:
        try:
            async for data in backend:
                if isinstance(data, bytes):
                    await ws.send_bytes(data)
                else:
                    await ws.send_text(data)
                await used()
        except ConnectionClosed:
            pass
        if ws.application_state == WebSocketState.CONNECTED:
            await ws.close(_close_code(backend.close_code), backend.close_reason or "")

    tasks = [asyncio.create_task(from_client()), asyncio.create_task(from_backend())]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            error = task.exception()
            if error is not None and not isinstance(
                error, WebSocketDisconnect | ConnectionClosed | RuntimeError
            ):
                raise error
    finally:
        await backend.close()
