"""``/api/workloads`` and the page ``/workloads``: who sees which workload, who may start,
stop and restart it (each change audited), its memory and uptime, and its last log lines
from ``<CONVEYOR_HOME>/workloads/<name>/``; bad parameters are refused with 422.
(Going through the proxy: ``test_proxy.py``; every route for every caller: ``test_matrix.py``.)
"""

from __future__ import annotations

import os
import re
import socket
import textwrap
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from conveyor.server.app import create_app
from conveyor.server.auth import SESSION_COOKIE
from conveyor.server.auth_settings import AuthSettings
from conveyor.server.state import ServerState, WorkspaceHolder
from conveyor.storage.instance import Instance
from conveyor.workspace import load_file
from tests.waiting import wait_until

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient

WORKSPACE = """
from conveyor import Service

def serve(port):
    raise SystemExit("not started in these tests")

guarded = Service(
    "guarded",
    serve,
    description="prices things",
    access={"olive": ["read", "operate"], "bob": ["read"], "group:traders": ["access"]},
)
plain = Service("plain", serve)
"""
USERS = {
    "ada": "admin",
    "olive": "viewer",
    "bob": "viewer",
    "carl": "viewer",
    "tess": "viewer",
    "otto": "operator",
}


class World:
    def __init__(self, client: TestClient, instance: Instance, tokens: dict[str, str]) -> None:
        self.client, self.instance, self.tokens = client, instance, tokens

    def as_(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    (tmp_path / "ws.py").write_text(textwrap.dedent(WORKSPACE))
    holder = WorkspaceHolder(lambda: load_file(tmp_path / "ws.py"), "ws.py")
    assert holder.reload() is None, holder.error
    instance = Instance.at(tmp_path / "home")
    identity = instance.identity
    identity.add_group("traders")
    tokens = {}
    for name, role in USERS.items():
        identity.add_user(name, role)  # tokens and sessions: no password to hash
        tokens[name] = identity.create_token(name, "test")[1]
    identity.add_member("traders", "tess")
    store = instance.workloads
    me = psutil.Process()
    for name in ("guarded", "plain"):
        store.register(name, "service", {"description": f"{name} service"})
    assert store.update(
        "guarded",
        0,
        state="running",
        port=1,
        pid=os.getpid(),
        pid_started=me.create_time(),
        host=socket.gethostname(),
        started_at=me.create_time(),
        restarts=2,
        health="ok",
    )
    app = create_app(ServerState(instance, holder, auth=AuthSettings(mode="login")))
    with TestClient(app, base_url="http://testserver") as client:
        yield World(client, instance, tokens)
    instance.close()


def _names(world: World, user: str) -> list[str]:
    answer = world.client.get("/api/workloads", headers=world.as_(user))
    assert answer.status_code == 200, answer.text
    return [w["name"] for w in answer.json()]


def test_each_caller_sees_the_workloads_it_may_read(world: World) -> None:
    assert _names(world, "ada") == ["guarded", "plain"]
    assert _names(world, "olive") == ["guarded", "plain"]
    assert _names(world, "carl") == ["plain"]  # not on guarded's list
    assert _names(world, "tess") == ["plain"]  # may reach guarded, but not see it here
    assert world.client.get("/api/workloads").status_code == 401


def test_one_workload_with_its_state_memory_and_permissions(world: World) -> None:
    answer = world.client.get("/api/workloads/guarded", headers=world.as_("bob"))
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert (got["kind"], got["state"], got["desired"], got["port"]) == (
        "service",
        "running",
        "running",
        1,
    )
    assert got["url"] == "/apps/guarded/"
    assert got["restarts"] == 2
    assert got["health"] == "ok"
    assert got["memory"] > 1_000_000  # this test's own process: it is on this host
    assert got["uptime"] > 0
    assert got["permissions"] == ["read"]
    assert got["supervised"] is False
    plain = world.client.get("/api/workloads/plain", headers=world.as_("otto")).json()
    assert (plain["memory"], plain["uptime"]) == (None, None)
    assert plain["permissions"] == ["access", "operate", "read"]  # otto's role


@pytest.mark.parametrize("user", ["carl", "tess"])
def test_a_workload_the_caller_may_not_read_is_not_found(world: World, user: str) -> None:
    answer = world.client.get("/api/workloads/guarded", headers=world.as_(user))
    assert answer.status_code == 404
    assert answer.json()["error"] == "no workload 'guarded'; the workloads you may read: plain"
    missing = world.client.get("/api/workloads/nope", headers=world.as_("ada"))
    assert missing.status_code == 404


@pytest.mark.parametrize("verb", ["start", "stop", "restart"])
def test_operate_is_needed_to_start_stop_and_restart(world: World, verb: str) -> None:
    for user, status in (("bob", 403), ("tess", 404), ("carl", 404), ("otto", 404)):
        answer = world.client.post(f"/api/workloads/guarded/{verb}", headers=world.as_(user))
        assert answer.status_code == status, (user, answer.text)
    refused = world.client.post(f"/api/workloads/guarded/{verb}", headers=world.as_("bob"))
    assert "operate" in refused.json()["error"]
    done = world.client.post(f"/api/workloads/guarded/{verb}", headers=world.as_("olive"))
    assert done.status_code == 200, done.text
    assert done.json()["desired"] == ("stopped" if verb == "stop" else "running")
    assert world.instance.workloads.require("guarded").desired == done.json()["desired"]
    [entry] = world.instance.audit.entries(action=f"workload {verb}", target="guarded")
    assert entry.actor.startswith("olive (token ")


def test_a_restart_waits_for_the_supervisor_to_stop_it_first(world: World) -> None:
    store = world.instance.workloads
    token = store.claim("guarded", "test-supervisor", 60)
    assert token is not None
    asked: list[str] = []

    def supervisor() -> None:  # the test plays the supervisor that holds the lease
        wait_until(lambda: store.require("guarded").desired == "stopped", 20, "a stop")
        asked.append("stopped")
        assert store.update("guarded", token, state="stopped", pid=None)

    helper = threading.Thread(target=supervisor, daemon=True)
    helper.start()
    answer = world.client.post("/api/workloads/guarded/restart", headers=world.as_("ada"))
    helper.join(30)
    assert answer.status_code == 200, answer.text
    assert asked == ["stopped"]
    assert answer.json()["desired"] == "running"
    assert answer.json()["supervised"] is True


def test_the_last_log_lines_of_each_stream(world: World) -> None:
    assert world.instance.home is not None
    folder = world.instance.home / "workloads" / "guarded"
    folder.mkdir(parents=True)
    (folder / "stdout.log.1").write_text("".join(f"old {i}\n" for i in range(5)))
    (folder / "stdout.log").write_text("new 0\nnew 1\n")
    (folder / "stderr.log").write_text("Traceback: boom\n")
    url = "/api/workloads/guarded/logs"
    got = world.client.get(f"{url}?lines=3", headers=world.as_("bob")).json()
    assert got == {"name": "guarded", "stream": "stdout", "lines": ["old 4", "new 0", "new 1"]}
    got = world.client.get(f"{url}?stream=stderr", headers=world.as_("bob")).json()
    assert got["lines"] == ["Traceback: boom"]
    empty = world.client.get("/api/workloads/plain/logs", headers=world.as_("bob")).json()
    assert empty["lines"] == []
    assert world.client.get(url, headers=world.as_("carl")).status_code == 404


@pytest.mark.parametrize(
    "query", ["stream=stdin", "stream=../x", "lines=0", "lines=-1", "lines=100001", "lines=abc"]
)
def test_bad_log_parameters_are_refused(world: World, query: str) -> None:
    answer = world.client.get(f"/api/workloads/guarded/logs?{query}", headers=world.as_("ada"))
    assert answer.status_code == 422
    assert answer.json()["error"].startswith("the request is not valid")


# -- the page ------------------------------------------------------------------------------


def _session(world: World, user: str) -> str:
    secret, _ = world.instance.identity.create_session(user)
    world.client.cookies.set(SESSION_COOKIE, secret)
    return secret


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found
    return found.group(1)


def test_the_page_shows_buttons_only_to_those_who_may_operate(world: World) -> None:
    _session(world, "bob")
    page = world.client.get("/workloads")
    assert page.status_code == 200
    assert 'id="workload-guarded"' in page.text
    assert 'id="workload-plain"' in page.text
    assert "prices things" not in page.text  # the description comes from the record
    assert "guarded service" in page.text
    assert 'action="/workloads/guarded/stop"' not in page.text  # bob may only read it
    assert 'action="/workloads/plain/stop"' not in page.text  # a viewer on plain
    assert 'href="/apps/plain/"' in page.text  # a viewer may reach plain
    assert 'href="/apps/guarded/"' not in page.text  # bob may not reach guarded
    assert 'href="/workloads" aria-current="page">Workloads' in page.text
    assert "<script>" not in page.text
    _session(world, "olive")
    page = world.client.get("/workloads")
    assert 'action="/workloads/guarded/stop"' in page.text


def test_the_page_stops_and_starts_with_its_forms(world: World) -> None:
    _session(world, "olive")
    token = _csrf(world.client.get("/workloads").text)
    browser = {"origin": "http://testserver", "sec-fetch-site": "same-origin"}
    refused = world.client.post("/workloads/guarded/stop", headers=browser, follow_redirects=False)
    assert refused.status_code == 403  # no CSRF token
    done = world.client.post(
        "/workloads/guarded/stop",
        data={"csrf_token": token},
        headers=browser,
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/workloads#workload-guarded"
    assert world.instance.workloads.require("guarded").desired == "stopped"
    bad = world.client.post(
        "/workloads/guarded/explode",
        data={"csrf_token": token},
        headers=browser,
        follow_redirects=False,
    )
    assert bad.status_code == 422
    other = world.client.post(
        "/workloads/plain/stop", data={"csrf_token": token}, headers=browser, follow_redirects=False
    )
    assert other.status_code == 403  # olive is a viewer: no operate on plain
