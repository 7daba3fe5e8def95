"""The app proxy at ``/apps/<name>/``: a real backend process (``backend_app.py``) behind a
real Conveyor server (uvicorn, login mode), reached with API tokens and a session
cookie: HTTP with streamed bodies both ways, server-sent events as they are sent,
WebSockets both ways with their close codes, the headers the app gets and does not
get, and who is let through (acceptance 5 of issue 13).

The workspace declares ``guarded`` with an access list (alice: read and access; bob:
read only; the group traders: access only); carl, a viewer, is not on it. ``plain``
(a service, so its path is stripped) has no list: the instance roles hold.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conveyor.server.app import create_app
from conveyor.server.auth import SESSION_COOKIE
from conveyor.server.auth_settings import AuthSettings
from conveyor.server.state import ServerState, WorkspaceHolder
from conveyor.storage.instance import Instance
from conveyor.workspace import load_file
from tests.waiting import wait_until

WORKSPACE = """
from conveyor import App, Service

def serve(port):
    raise SystemExit("the test starts the backend itself")

guarded = App(
    "guarded",
    "backend:app",
    framework="asgi",
    access={"alice": ["read", "access"], "bob": ["read"], "group:traders": ["access"]},
)
plain = Service("plain", serve)
"""
USERS = {
    "ada": ("admin", ()),
    "alice": ("viewer", ()),
    "bob": ("viewer", ()),
    "carl": ("viewer", ()),
    "tess": ("viewer", ("traders",)),
}
BACKEND = Path(__file__).with_name("backend_app.py")


@dataclass
class World:
    url: str
    backend_port: int
    instance: Instance
    tokens: dict[str, str]
    cookie: str  # alice's session

    def headers(self, user: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}

    def client(self, user: str | None = None, **more: Any) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers=self.headers(user), timeout=20.0, trust_env=False, **more
        )


def _start_backend(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    port_file = folder / "backend.port"
    with open(folder / "backend.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(BACKEND), str(port_file)], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_until(port_file.exists, 30, "the backend to bind its port")
        port = int(port_file.read_text())

        def answers() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/last-close", timeout=5).is_success
            except httpx.HTTPError:
                return False

        wait_until(answers, 30, "the backend to answer")
    except BaseException:
        _stop(proc)
        raise
    return proc, port


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("proxy")
    (folder / "apps.py").write_text(textwrap.dedent(WORKSPACE))
    holder = WorkspaceHolder(lambda: load_file(folder / "apps.py"), "apps.py")
    assert holder.reload() is None, holder.error
    instance = Instance.at(folder / "home")
    identity = instance.identity
    identity.add_group("traders")
    tokens = {}
    for name, (role, groups) in USERS.items():
        identity.add_user(name, role)  # tokens and sessions: no password to hash
        for group in groups:
            identity.add_member(group, name)
        tokens[name] = identity.create_token(name, "proxy test")[1]
    cookie, _ = identity.create_session("alice", address="127.0.0.1")
    backend, port = _start_backend(folder)
    store = instance.workloads
    for name, kind in (("guarded", "app"), ("plain", "service")):
        store.register(name, kind, {"description": f"the {kind}"})
        assert store.update(name, 0, state="running", port=port, host="test")
    store.register("sleeper", "service", {})
    assert store.update("sleeper", 0, state="crash_loop", last_error="exited with code 3")

    app = create_app(ServerState(instance, holder, auth=AuthSettings(mode="login")))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="off", log_level="warning", ws="websockets-sansio")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 30, "the Conveyor server to start")
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        yield World(url, port, instance, tokens, cookie)
    finally:
        server.should_exit = True
        thread.join(15)
        _stop(backend)
        sock.close()
        instance.close()


def _sent(answer: httpx.Response) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """What the backend got, and its headers by lower-cased name."""
    assert answer.status_code == 200, answer.text
    got = answer.json()
    headers: dict[str, list[str]] = {}
    for key, value in got["headers"]:
        headers.setdefault(key.lower(), []).append(value)
    return got, headers


# -- HTTP ------------------------------------------------------------------------------------


def test_a_user_with_access_gets_through_and_the_app_knows_who(world: World) -> None:
    with world.client("alice") as client:
        answer = client.get(
            "/apps/guarded/echo/a%2Fb?x=1&y=two",
            headers={
                "X-Conveyor-User": "ada",  # forged: replaced
                "X-Forwarded-Prefix": "/elsewhere",  # forged: replaced
                "Cookie": f"{SESSION_COOKIE}=stolen; theirs=kept; conveyor_csrf=x",
                # Hop-by-hop: the header Connection names is about this hop only.
                "Connection": "keep-alive, x-hop",
                "X-Hop": "1",
                "Proxy-Authorization": "Basic eA==",
            },
        )
    got, headers = _sent(answer)
    assert got["method"] == "GET"
    assert got["path"] == "/apps/guarded/echo/a/b"  # an app gets the whole path
    assert got["query"] == "x=1&y=two"
    assert headers["x-conveyor-user"] == ["alice"]
    assert headers["x-forwarded-prefix"] == ["/apps/guarded"]
    assert headers["x-forwarded-proto"] == ["http"]
    assert headers["x-forwarded-for"] == ["127.0.0.1"]
    assert headers["x-forwarded-host"] == [world.url.removeprefix("http://")]
    assert headers["host"] == [world.url.removeprefix("http://")]
    assert "authorization" not in headers
    assert not {"x-hop", "proxy-authorization"} & set(headers)
    assert headers["cookie"] == ["theirs=kept"]
    # The app's answer comes back whole: both its cookies, and no Conveyor page policy
    # forbidding its inline scripts.
    assert answer.headers.get_list("set-cookie") == ["first=1; Path=/", "second=2; Path=/"]
    assert answer.headers["content-security-policy"] == "frame-ancestors 'self'"
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_a_session_cookie_gets_through_and_is_not_passed_on(world: World) -> None:
    with world.client(cookies={SESSION_COOKIE: world.cookie}) as client:
        got, headers = _sent(client.post("/apps/guarded/form", data={"field": "value"}))
    # No Conveyor CSRF token was sent: the app's forms are the app's.
    assert got["method"] == "POST"
    assert got["length"] == len("field=value")
    assert headers["x-conveyor-user"] == ["alice"]
    assert "cookie" not in headers


@pytest.mark.parametrize(
    ("user", "status"),
    [("bob", 403), ("carl", 404), ("ada", 200), ("tess", 200), (None, 303)],
    ids=["read-only", "not-listed", "admin", "group-with-access", "anonymous"],
)
def test_only_users_with_access_get_through(world: World, user: str | None, status: int) -> None:
    with world.client(user) as client:
        answer = client.get("/apps/guarded/echo")
    assert answer.status_code == status, answer.text
    if status == 403:
        assert "bob" in answer.text
        assert "access" in answer.text
    if status == 404:
        # A page (the caller may be a browser), naming only the workloads carl may read.
        readable = html.unescape(answer.text).split("the workloads you may read: ")[1]
        assert "plain" in readable.split("<")[0]
        assert "guarded" not in readable
    if status == 303:  # a browser is sent to sign in, and comes back
        assert answer.headers["location"] == "/login?next=%2Fapps%2Fguarded%2Fecho"
    if status == 200:
        assert _sent(answer)[1]["x-conveyor-user"] == [user]


def test_a_bad_token_is_refused_not_ignored(world: World) -> None:
    with httpx.Client(base_url=world.url, timeout=20, trust_env=False) as client:
        answer = client.get("/apps/guarded/echo", headers={"Authorization": "Bearer cvt_nope"})
        assert answer.status_code == 401
        assert (
            client.get("/apps/guarded/echo", headers={"Authorization": "Basic x"}).status_code
            == 401
        )


def test_head_and_options_pass_too(world: World) -> None:
    with world.client("alice") as client:
        head = client.head("/apps/guarded/echo")
        assert head.status_code == 200
        assert head.content == b""
        got, _ = _sent(client.options("/apps/guarded/echo"))
    assert got["method"] == "OPTIONS"


def test_a_service_gets_the_path_below_its_prefix(world: World) -> None:
    with world.client("carl") as client:  # no list on it: a viewer may reach it
        got, headers = _sent(client.delete("/apps/plain/items/7?force=1"))
    assert (got["method"], got["path"], got["query"]) == ("DELETE", "/items/7", "force=1")
    assert headers["x-forwarded-prefix"] == ["/apps/plain"]


def test_the_bare_name_redirects_to_its_folder(world: World) -> None:
    with world.client("alice") as client:
        answer = client.get("/apps/guarded?q=1")
    assert answer.status_code == 307
    assert answer.headers["location"] == "/apps/guarded/?q=1"


def test_request_and_response_bodies_stream(world: World) -> None:
    block = bytes(range(256)) * 4096  # 1 MiB
    digest = hashlib.sha256(block * 8).hexdigest()

    def body() -> Iterator[bytes]:
        for _ in range(8):
            yield block

    with world.client("alice") as client:
        got, _ = _sent(client.put("/apps/guarded/upload", content=body()))
    assert (got["method"], got["length"], got["sha256"]) == ("PUT", 8 * len(block), digest)


def test_server_sent_events_arrive_as_they_are_sent(world: World) -> None:
    with world.client("alice") as client, client.stream("GET", "/apps/guarded/sse") as events:
        assert events.status_code == 200
        assert events.headers["content-type"] == "text/event-stream"
        lines = events.iter_lines()
        # The second event waits for the release: the first arrives on its own.
        assert next(lines) == "data: one"
        assert client.post("/apps/guarded/release").status_code == 200
        assert [line for line in lines if line] == ["data: two"]


def test_an_absolute_redirect_of_the_app_stays_behind_the_proxy(world: World) -> None:
    with world.client("alice") as client:
        answer = client.get("/apps/guarded/go/redirect")
    assert answer.status_code == 302
    assert answer.headers["location"] == "/apps/guarded/go/landed"


def test_a_workload_that_is_not_running_says_why(world: World) -> None:
    with world.client("alice") as client:
        answer = client.get("/apps/sleeper/")
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "5"
        error = answer.json()["error"]
        assert "crash_loop" in error
        assert "exited with code 3" in error
        assert "conveyor services start sleeper" in error
        missing = client.get("/apps/nothing/")
        assert missing.status_code == 404
        assert "no workload 'nothing'" in missing.text
        assert "guarded" in missing.text
        assert "plain" in missing.text


def test_a_backend_that_does_not_answer_is_a_502(world: World) -> None:
    store = world.instance.workloads
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    store.register("gone", "service", {})
    assert store.update("gone", 0, state="running", port=port)
    with world.client("ada") as client:
        answer = client.get("/apps/gone/")
    assert answer.status_code == 502
    assert "did not answer on port" in answer.json()["error"]


# -- WebSockets ------------------------------------------------------------------------------


def _ws_url(world: World, path: str) -> str:
    return world.url.replace("http://", "ws://") + path


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_a_websocket_goes_both_ways_with_its_close_codes(world: World) -> None:
    async def talk() -> tuple[dict[str, Any], int | None]:
        async with connect(
            _ws_url(world, "/apps/guarded/ws?room=1"),
            additional_headers={**world.headers("alice"), "X-Conveyor-User": "ada"},
            subprotocols=["chat"],  # type: ignore[list-item]
        ) as ws:
            assert ws.subprotocol == "chat"
            first = json.loads(await ws.recv())
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\x01binary")
            assert await ws.recv() == b"\x00\x01binary"
            await ws.send("close:4001")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return first, ws.close_code

    first, code = _run(talk())
    assert code == 4001  # the app's close code reaches the client
    headers = {k.lower(): v for k, v in first["headers"]}
    assert first["path"] == "/apps/guarded/ws"
    assert headers["x-conveyor-user"] == "alice"
    assert headers["x-forwarded-prefix"] == "/apps/guarded"
    assert "authorization" not in headers
    assert "origin" not in headers

    async def client_closes() -> None:
        async with connect(
            _ws_url(world, "/apps/guarded/ws"), additional_headers=world.headers("alice")
        ) as ws:
            await ws.recv()
            await ws.close(4002, "bye")

    _run(client_closes())

    def backend_saw_it() -> bool:
        seen = httpx.get(f"http://127.0.0.1:{world.backend_port}/last-close", timeout=5).json()
        return bool(seen["last_close"] == 4002)

    wait_until(backend_saw_it, 10, "the app to see the client's close code")


@pytest.mark.parametrize(
    ("user", "origin", "status"),
    [
        ("bob", None, 403),
        ("carl", None, 404),
        (None, None, 401),
        ("alice", "http://evil.example", 403),
    ],
    ids=["read-only", "not-listed", "anonymous", "another-site"],
)
def test_a_websocket_handshake_is_checked(
    world: World, user: str | None, origin: str | None, status: int
) -> None:
    async def attempt() -> None:
        async with connect(
            _ws_url(world, "/apps/guarded/ws"),
            additional_headers=world.headers(user),
            origin=origin,  # type: ignore[arg-type]
        ):
            pass

    with pytest.raises(InvalidStatus) as refused:
        _run(attempt())
    assert refused.value.response.status_code == status


def test_a_websocket_from_the_same_site_with_a_session_gets_through(world: World) -> None:
    host = world.url.removeprefix("http://")

    async def talk() -> dict[str, Any]:
        async with connect(
            _ws_url(world, "/apps/guarded/ws"),
            additional_headers={"Cookie": f"{SESSION_COOKIE}={world.cookie}"},
            origin=f"http://{host}",  # type: ignore[arg-type]
        ) as ws:
            first: dict[str, Any] = json.loads(await ws.recv())
            return first

    headers = {k.lower(): v for k, v in _run(talk())["headers"]}
    assert headers["x-conveyor-user"] == "alice"
    assert "cookie" not in headers


def test_an_interactive_job_is_started_by_its_first_request(world: World) -> None:
    store = world.instance.workloads
    store.register("lazy", "interactive", {}, desired="stopped")
    answers: list[httpx.Response] = []

    def first_request() -> None:
        with world.client("alice") as client:
            answers.append(client.get("/apps/lazy/echo"))

    asker = threading.Thread(target=first_request, daemon=True)
    asker.start()
    # The test plays the supervisor: it sees the request's ask, and starts the job.
    wait_until(lambda: store.require("lazy").desired == "running", 20, "the proxy to ask")
    assert store.update("lazy", 0, state="running", port=world.backend_port)
    asker.join(30)
    assert not asker.is_alive()
    got, headers = _sent(answers[0])
    assert got["path"] == "/apps/lazy/echo"  # started with its base path: the whole path
    assert headers["x-conveyor-user"] == ["alice"]
    assert store.require("lazy").last_request_at is not None  # its idle timeout counts from it
    [entry] = world.instance.audit.entries(action="workload start", target="lazy")
    assert entry.actor.startswith("alice (token ")


def test_a_browser_without_access_is_shown_why(world: World) -> None:
    bob, _ = world.instance.identity.create_session("bob")
    with world.client(cookies={SESSION_COOKIE: bob}) as client:
        answer = client.get("/apps/guarded/", headers={"accept": "text/html"})
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("text/html")
    assert "may not reach workload" in html.unescape(answer.text)
