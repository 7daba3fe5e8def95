"""Promotion and rollback through the API and the deployments page: who may, what a
refusal says, and that every attempt is in the audit log; the read routes."""

from __future__ import annotations

import re
import textwrap
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conveyor.server.app import create_app
from conveyor.server.auth_settings import AuthSettings
from conveyor.server.state import ServerState, WorkspaceHolder
from conveyor.storage.deployments import NewVersion
from conveyor.storage.instance import Instance
from conveyor.storage.records import RunStatus
from conveyor.workspace import load_file

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient

WORKSPACE = """
from conveyor import job

@job
def etl(context) -> int:
    return 1
"""
PASSWORD = "a long password"
BROWSER = {"sec-fetch-site": "same-origin", "origin": "http://testserver"}


@dataclass
class World:
    client: TestClient
    instance: Instance
    tokens: dict[str, dict[str, str]]


def _version(instance: Instance, tag: str, jobs: dict[str, dict[str, object]]) -> int:
    record, _ = instance.deployments.add_version(
        NewVersion(
            hash=tag * 8,
            archive_uri=f"code/{tag}.tar.gz",
            size=2048,
            entry="jobs.py",
            manifest={"jobs": jobs},
            git={"commit": tag * 10, "dirty": False, "branch": "main"},
            created_by="dana",
            message=f"change {tag}",
        )
    )
    instance.deployments.activate("dev", record.number, action="deploy", by="dana")
    return record.number


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """Login mode; olga is an operator (operate, no promote), vera a viewer whom the
    version's access list gives promote on its only job, ada an admin. Versions 1 and 2
    were deployed to dev."""
    monkeypatch.delenv("CONVEYOR_ENVIRONMENTS", raising=False)
    monkeypatch.delenv("CONVEYOR_PROMOTE_REQUIRE_SUCCESS", raising=False)
    path = tmp_path / "jobs.py"
    path.write_text(textwrap.dedent(WORKSPACE))
    holder = WorkspaceHolder(lambda: load_file(path), str(path))
    assert holder.reload() is None
    instance = Instance.at(tmp_path / "home")
    tokens: dict[str, dict[str, str]] = {"anonymous": {}}
    for name, role in (("olga", "operator"), ("vera", "viewer"), ("ada", "admin")):
        instance.identity.add_user(name, role, password=PASSWORD)
        _, secret = instance.identity.create_token(name, "test")
        tokens[name] = {"Authorization": f"Bearer {secret}"}
    etl = {"version": "1", "access": {"vera": ["read", "promote"], "olga": ["read", "operate"]}}
    _version(instance, "a", {"etl": etl})
    _version(instance, "b", {"etl": {**etl, "version": "2"}, "secret_job": {"version": "1"}})
    state = ServerState(instance, holder, auth=AuthSettings(mode="login"))
    with TestClient(create_app(state)) as client:
        yield World(client, instance, tokens)
    instance.close()


def _active(world: World, env: str) -> int | None:
    return world.instance.deployments.environment(env).active_version


def test_reading_needs_a_signed_in_caller(world: World) -> None:
    c, vera = world.client, world.tokens["vera"]
    assert c.get("/api/environments").status_code == 401
    envs = c.get("/api/environments", headers=vera).json()
    assert [(e["name"], e["position"], e["active_version"]) for e in envs] == [
        ("dev", 0, 2),
        ("pre", 1, None),
        ("prod", 2, None),
    ]
    versions = c.get("/api/versions", headers=world.tokens["ada"]).json()
    assert [(v["number"], v["active_in"]) for v in versions] == [(2, ["dev"]), (1, [])]
    one = c.get("/api/versions/2", headers=world.tokens["ada"]).json()
    assert one["manifest"]["jobs"]["secret_job"] == {"version": "1"}
    assert one["diff"] == {"added": ["secret_job"], "changed": ["etl"], "removed": []}
    diff = c.get("/api/versions/2/diff/1", headers=vera).json()
    assert diff == {"from": 2, "to": 1, "added": [], "changed": ["etl"], "removed": ["secret_job"]}
    history = c.get("/api/environments/dev/history", headers=vera).json()
    assert [(h["version"], h["action"], h["by"]) for h in history] == [
        (2, "deploy", "dana"),
        (1, "deploy", "dana"),
    ]
    assert c.get("/api/versions?environment=pre", headers=vera).json() == []


def test_bad_reads_name_the_problem(world: World) -> None:
    c, vera = world.client, world.tokens["vera"]
    gone = c.get("/api/versions/9", headers=vera)
    assert gone.status_code == 404
    assert "they are 1 to 2" in gone.json()["error"]
    unknown = c.get("/api/environments/live/history", headers=vera)
    assert unknown.status_code == 404
    assert "the environments are dev, pre, prod" in unknown.json()["error"]
    assert c.get("/api/versions?environment=live", headers=vera).status_code == 404
    assert c.get("/api/versions/x", headers=vera).status_code == 422


def test_a_version_shows_only_the_jobs_the_caller_may_read(world: World) -> None:
    """secret_job has no access list in the version nor in the workspace: a viewer's role
    reads it; etl's list names olga and vera, so another viewer would not see it."""
    world.instance.identity.add_user("zoe", "viewer", password=PASSWORD)
    _, secret = world.instance.identity.create_token("zoe", "test")
    zoe = {"Authorization": f"Bearer {secret}"}
    one = world.client.get("/api/versions/2", headers=zoe).json()
    assert one["jobs"] == ["secret_job"]
    assert list(one["manifest"]["jobs"]) == ["secret_job"]
    assert one["diff"]["changed"] == []
    assert world.client.get("/api/versions/1/diff/2", headers=zoe).json()["changed"] == []


def test_an_operator_without_promote_is_refused_and_audited(world: World) -> None:
    c, olga = world.client, world.tokens["olga"]
    refused = c.post("/api/environments/pre/promote", json={"from": "dev"}, headers=olga)
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert "may not promote pre to version 2" in error
    assert "promote permission" in error
    assert _active(world, "pre") is None
    entry = world.instance.audit.entries(action="promote")[0]
    assert entry.actor.startswith("olga (token ")
    assert entry.target == "pre"
    assert entry.detail is not None
    assert entry.detail["outcome"] == "denied"
    assert entry.address is not None
    back = c.post("/api/environments/dev/rollback", json={}, headers=olga)
    assert back.status_code == 403
    assert _active(world, "dev") == 2
    entry = world.instance.audit.entries(action="rollback")[0]
    assert entry.actor.startswith("olga")
    assert entry.detail is not None
    assert entry.detail["outcome"] == "denied"


def test_promote_granted_by_the_versions_access_list(world: World) -> None:
    c, vera = world.client, world.tokens["vera"]
    # Version 2 has secret_job, without a list: vera's role (viewer) has no promote on it.
    denied = c.post("/api/environments/pre/promote", json={"from": "dev"}, headers=vera)
    assert denied.status_code == 403
    assert "secret_job" in denied.json()["error"]
    done = c.post(
        "/api/environments/pre/promote",
        json={"from": "dev", "version": 1, "message": "ok"},
        headers=vera,
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["version"], body["action"], body["from_environment"]) == (1, "promote", "dev")
    assert body["by"].startswith("vera (token ")
    assert _active(world, "pre") == 1
    again = c.post(
        "/api/environments/pre/promote", json={"from": "dev", "version": 1}, headers=vera
    )
    assert again.status_code == 200
    assert again.json() is None
    outcomes = [e.detail["outcome"] for e in world.instance.audit.entries(action="promote")]
    assert outcomes == ["unchanged", "done", "denied"]


def test_admin_promotes_and_rolls_back(world: World) -> None:
    c, ada = world.client, world.tokens["ada"]
    assert (
        c.post("/api/environments/prod/promote", json={"from": "dev"}, headers=ada).json()[
            "version"
        ]
        == 2
    )
    back = c.post("/api/environments/dev/rollback", json={}, headers=ada)
    assert back.status_code == 200
    assert back.json()["version"] == 1
    assert _active(world, "dev") == 1
    history = c.get("/api/environments/dev/history", headers=ada).json()
    assert history[0]["action"] == "rollback"
    assert history[0]["previous_version"] == 2


@pytest.mark.parametrize(
    ("url", "body", "status", "said"),
    [
        ("/api/environments/dev/promote", {"from": "pre"}, 409, "versions move forward"),
        ("/api/environments/live/promote", {"from": "dev"}, 409, "unknown environment 'live'"),
        ("/api/environments/pre/promote", {"from": "dev", "version": 7}, 409, "no version 7"),
        ("/api/environments/pre/promote", {"from": "dev", "job": "nope"}, 409, "not in version"),
        ("/api/environments/pre/promote", {}, 422, "from"),
        ("/api/environments/pre/promote", {"from": "dev", "version": 0}, 422, "version"),
        ("/api/environments/pre/promote", {"from": "dev", "extra": 1}, 422, "extra"),
        ("/api/environments/prod/rollback", {}, 409, "nothing to roll back in prod"),
        ("/api/environments/dev/rollback", {"to": 5}, 409, "never active in dev"),
        ("/api/environments/dev/rollback", {"to": "two"}, 422, "to"),
    ],
)
def test_bad_requests_say_what_is_wrong(
    world: World, url: str, body: dict[str, object], status: int, said: str
) -> None:
    answer = world.client.post(url, json=body, headers=world.tokens["ada"])
    assert answer.status_code == status, answer.text
    assert said in answer.json()["error"]


def test_anonymous_may_not_promote(world: World) -> None:
    assert (
        world.client.post("/api/environments/pre/promote", json={"from": "dev"}).status_code == 401
    )


def test_the_policy_is_enforced_through_the_api(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_PROMOTE_REQUIRE_SUCCESS", "pre")
    answer = world.client.post(
        "/api/environments/pre/promote", json={"from": "dev"}, headers=world.tokens["ada"]
    )
    assert answer.status_code == 409
    assert "requires a successful run of it in dev" in answer.json()["error"]


# -- the page --------------------------------------------------------------------------------


def _sign_in(client: TestClient, user: str) -> str:
    page = client.get("/login").text
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert token
    answer = client.post(
        "/login",
        data={"username": user, "password": PASSWORD, "csrf_token": token.group(1), "next": "/"},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', client.get("/").text)
    assert found
    return found.group(1)


def test_the_page_shows_buttons_only_to_those_allowed_and_refuses_the_others(
    world: World,
) -> None:
    c = world.client
    csrf = _sign_in(c, "olga")
    page = c.get("/deployments")
    assert page.status_code == 200
    assert 'id="env-dev"' in page.text
    assert "version 2" in page.text
    assert 'data-testid="promote"' not in page.text
    assert 'data-testid="rollback"' not in page.text
    # The form posted anyway: refused, audited, nothing changed.
    refused = c.post(
        "/deployments/promote",
        data={"from": "dev", "to": "pre", "csrf_token": csrf},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert refused.status_code == 403
    assert "promote permission" in refused.text
    assert _active(world, "pre") is None
    entry = world.instance.audit.entries(action="promote")[0]
    assert entry.actor == "olga"
    assert entry.detail is not None
    assert entry.detail["outcome"] == "denied"
    # Without the CSRF token: refused before anything is tried.
    no_token = c.post("/deployments/rollback", data={"env": "dev"}, headers=BROWSER)
    assert no_token.status_code == 403
    assert _active(world, "dev") == 2


def test_an_admin_promotes_and_rolls_back_on_the_page(world: World) -> None:
    c = world.client
    csrf = _sign_in(c, "ada")
    page = c.get("/deployments").text
    assert 'data-testid="promote"' in page
    assert 'data-testid="rollback"' in page
    done = c.post(
        "/deployments/promote",
        data={"from": "dev", "to": "pre", "csrf_token": csrf},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/deployments"
    assert _active(world, "pre") == 2
    back = c.post(
        "/deployments/rollback",
        data={"env": "dev", "to": "1", "csrf_token": csrf},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert back.status_code == 303
    assert _active(world, "dev") == 1
    bad = c.post(
        "/deployments/promote",
        data={"from": "pre", "to": "dev", "csrf_token": csrf},
        headers=BROWSER,
    )
    assert bad.status_code == 200
    assert "versions move forward" in bad.text
    worse = c.post(
        "/deployments/rollback",
        data={"env": "dev", "to": "-1", "csrf_token": csrf},
        headers=BROWSER,
    )
    assert "is not a version number" in worse.text


def test_version_and_diff_pages(world: World) -> None:
    c = world.client
    _sign_in(c, "ada")
    page = c.get("/deployments/versions/2")
    assert page.status_code == 200
    assert "change b" in page.text
    assert "secret_job" in page.text
    assert "bbbbbbbbbb" in page.text
    assert c.get("/deployments/versions/9").status_code == 404
    diff = c.get("/deployments?a=1&b=2").text
    assert "Version 2 against 1" in diff
    assert "secret_job" in diff
    missing = c.get("/deployments?a=1&b=8").text
    assert "no version 8" in missing


def test_a_run_of_a_version_whose_archive_is_gone_still_has_its_page(world: World) -> None:
    """The graph is drawn from the version's archive; without it the page shows the rest."""
    run = world.instance.run_store.create(
        job_name="dev.etl",
        job_version="1",
        deployed_version=1,
        environment="dev",
        status=RunStatus.QUEUED,
    )
    _sign_in(world.client, "ada")
    page = world.client.get(f"/runs/{run.id}")
    assert page.status_code == 200, page.text[:500]
    assert 'id="run-version"' in page.text
    assert "/deployments/versions/1" in page.text
