"""The admin API on a server that asks for logins: users, groups, tokens, job access lists
and the audit log; who may call each, what each bad input answers, what is audited, and
that no answer holds a password or (but for its POST) a token's secret. Runs record who
started them (``launched_by``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conveyor.definitions.access import Role
from conveyor.server.auth_settings import AuthSettings
from tests.server.test_api import Api, make_api

WORKSPACE = """
from conveyor import job

@job(access={"group:quants": ["read", "operate"], "carol": ["read"]})
def etl(context) -> None:
    print("etl")

@job
def open_job(context) -> None:
    print("open")

@job(trigger="every:1d")
def daily(context) -> None:
    print("daily")
"""
PASSWORD = "correct horse"


@dataclass
class Caller:
    """A user of the server calling with an API token of its own."""

    api: Api
    name: str
    secret: str
    token_id: str

    @property
    def label(self) -> str:
        return f"{self.name} (token {self.token_id})"

    def call(self, method: str, url: str, body: Any = None, **params: Any) -> Any:
        return self.api.client.request(
            method,
            url,
            json=body,
            params=params,
            headers={"Authorization": f"Bearer {self.secret}"},
        )

    def ok(self, method: str, url: str, body: Any = None, code: int = 200, **params: Any) -> Any:
        response = self.call(method, url, body, **params)
        assert response.status_code == code, response.text
        return response.json() if response.content else None

    def error(self, method: str, url: str, code: int, body: Any = None, **params: Any) -> str:
        response = self.call(method, url, body, **params)
        assert response.status_code == code, response.text
        message = response.json()["error"]
        assert isinstance(message, str)
        assert message
        return message


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    for api in make_api(tmp_path, WORKSPACE):
        api.state.auth = AuthSettings(mode="login")
        yield api


def caller(api: Api, name: str, role: Role | str = Role.VIEWER) -> Caller:
    identity = api.instance.identity
    if identity.user(name) is None:
        identity.add_user(name, role)  # a token needs no password (argon2 takes its time)
    token, secret = identity.create_token(name, "tests")
    return Caller(api, name, secret, token.id)


@pytest.fixture
def root(api: Api) -> Caller:
    return caller(api, "root", Role.ADMIN)


def audited(api: Api) -> list[tuple[str, str, str | None]]:
    """The audit log, oldest first: (actor, action, target)."""
    return [(e.actor, e.action, e.target) for e in api.instance.audit.entries()][::-1]


# -- who may call ----------------------------------------------------------------------------


ADMIN_ROUTES = [
    ("GET", "/api/users", None),
    ("POST", "/api/users", {"name": "x"}),
    ("PATCH", "/api/users/root", {"role": "viewer"}),
    ("DELETE", "/api/users/root", None),
    ("GET", "/api/groups", None),
    ("POST", "/api/groups", {"name": "g"}),
    ("DELETE", "/api/groups/g", None),
    ("PUT", "/api/groups/g/members/root", None),
    ("DELETE", "/api/groups/g/members/root", None),
    ("PUT", "/api/jobs/open_job/access/root", {"permissions": ["read"]}),
    ("DELETE", "/api/jobs/open_job/access/root", None),
    ("GET", "/api/audit", None),
]


@pytest.mark.parametrize(("method", "url", "body"), ADMIN_ROUTES)
def test_admin_routes_refuse_anonymous_and_non_admins(
    api: Api, root: Caller, method: str, url: str, body: Any
) -> None:
    anonymous = api.client.request(method, url, json=body)
    assert anonymous.status_code == 401, anonymous.text
    assert "sign in" in anonymous.json()["error"]
    for role in (Role.VIEWER, Role.OPERATOR, Role.EDITOR):
        someone = caller(api, f"a-{role}", role)
        said = someone.error(method, url, 403, body)
        assert "needs the role admin" in said
    assert api.instance.identity.require_user("root").role is Role.ADMIN
    assert api.instance.identity.groups() == {}


# -- users -----------------------------------------------------------------------------------


def test_users_add_list_change_remove(api: Api, root: Caller) -> None:
    added = root.ok(
        "POST",
        "/api/users",
        {"name": "alice", "role": "operator", "password": PASSWORD, "email": "a@example.com"},
        201,
    )
    assert added["name"] == "alice"
    assert added["role"] == "operator"
    assert added["has_password"] is True
    assert added["groups"] == []
    root.ok("POST", "/api/users", {"name": "bob"}, 201)
    listed = root.ok("GET", "/api/users")
    assert [(u["name"], u["role"], u["has_password"]) for u in listed] == [
        ("alice", "operator", True),
        ("bob", "viewer", False),
        ("root", "admin", False),
    ]
    changed = root.ok("PATCH", "/api/users/bob", {"role": "editor", "password": "battery staple"})
    assert (changed["role"], changed["has_password"]) == ("editor", True)
    assert api.instance.identity.check_password("bob", "battery staple") is not None
    assert root.ok("PATCH", "/api/users/bob", {"disabled": True})["disabled"] is True
    assert api.instance.identity.check_password("bob", "battery staple") is None
    root.ok("PATCH", "/api/users/bob", {"disabled": False})
    root.ok("DELETE", "/api/users/bob", code=204)
    assert api.instance.identity.user("bob") is None
    assert audited(api) == [
        (root.label, "user add", "alice"),
        (root.label, "user add", "bob"),
        (root.label, "user set password", "bob"),
        (root.label, "user set role", "bob"),
        (root.label, "user disable", "bob"),
        (root.label, "user enable", "bob"),
        (root.label, "user remove", "bob"),
    ]
    said = json.dumps([(e.detail, e.address) for e in api.instance.audit.entries()])
    assert PASSWORD not in said
    assert "battery" not in said


def test_a_disabled_users_token_is_refused(api: Api, root: Caller) -> None:
    bob = caller(api, "bob")
    bob.ok("GET", "/api/jobs")
    root.ok("PATCH", "/api/users/bob", {"disabled": True})
    assert "disabled" in bob.error("GET", "/api/jobs", 401)


def test_the_last_admin_stays(api: Api, root: Caller) -> None:
    for change in ({"role": "viewer"}, {"disabled": True}):
        said = root.error("PATCH", "/api/users/root", 409, change)
        assert "root is the only enabled admin: make another user admin first" in said
    root.error("DELETE", "/api/users/root", 409)
    root.ok("POST", "/api/users", {"name": "second", "role": "admin"}, 201)
    assert root.ok("PATCH", "/api/users/root", {"role": "viewer"})["role"] == "viewer"


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"name": "eve", "role": "root"}, "role: Input should be 'viewer', 'operator', 'editor'"),
        ({"name": "eve", "password": "short"}, "a password must be at least 8 characters long"),
        ({"name": "user:eve"}, "user name 'user:eve': use letters, digits"),
        ({"name": ""}, "user name '': use letters"),
        ({"name": "eve", "pasword": PASSWORD}, "pasword: Extra inputs are not permitted"),
        ({"role": "viewer"}, "name: Field required"),
        ({"name": "root"}, "user 'root' exists already"),
    ],
)
def test_bad_new_users_are_refused(api: Api, root: Caller, body: Any, said: str) -> None:
    message = root.error("POST", "/api/users", 422, body)
    assert said in message
    assert [u.name for u in api.instance.identity.users()] == ["root"]


def test_a_password_is_never_said_back(api: Api, root: Caller) -> None:
    response = root.call("POST", "/api/users", {"name": "eve", "password": "sevenXX"})
    assert response.status_code == 422
    assert "sevenXX" not in response.text
    response = root.call("POST", "/api/users", {"name": "eve", "password": 12345678})
    assert response.status_code == 422
    assert "12345678" not in response.text


def test_changing_an_unknown_user_or_badly(api: Api, root: Caller) -> None:
    assert "no user 'ghost'" in root.error("PATCH", "/api/users/ghost", 404, {"role": "admin"})
    assert "no user 'ghost'" in root.error("DELETE", "/api/users/ghost", 404)
    assert "role: Input should be" in root.error("PATCH", "/api/users/root", 422, {"role": "god"})
    assert "at least 8" in root.error("PATCH", "/api/users/root", 422, {"password": "x"})
    assert "disabled" in root.error("PATCH", "/api/users/root", 422, {"disabled": "maybe"})


# -- groups ----------------------------------------------------------------------------------


def test_groups_and_members(api: Api, root: Caller) -> None:
    assert root.ok("POST", "/api/groups", {"name": "quants"}, 201) == {
        "name": "quants",
        "members": [],
    }
    assert root.ok("PUT", "/api/groups/quants/members/root") == {
        "name": "quants",
        "members": ["root"],
    }
    root.ok("PUT", "/api/groups/quants/members/root")  # again: no change, no entry
    assert root.ok("GET", "/api/groups") == [{"name": "quants", "members": ["root"]}]
    assert root.ok("GET", "/api/users")[0]["groups"] == ["quants"]
    root.ok("DELETE", "/api/groups/quants/members/root", code=204)
    root.ok("DELETE", "/api/groups/quants", code=204)
    assert root.ok("GET", "/api/groups") == []
    assert [a for _, a, _ in audited(api)] == [
        "group add",
        "group add member",
        "group remove member",
        "group remove",
    ]


def test_group_mistakes(api: Api, root: Caller) -> None:
    root.ok("POST", "/api/groups", {"name": "quants"}, 201)
    assert "exists already" in root.error("POST", "/api/groups", 422, {"name": "quants"})
    assert "group name 'a b'" in root.error("POST", "/api/groups", 422, {"name": "a b"})
    assert "no group 'ops'" in root.error("PUT", "/api/groups/ops/members/root", 404)
    assert "no user 'ghost'" in root.error("PUT", "/api/groups/quants/members/ghost", 404)
    said = root.error("DELETE", "/api/groups/quants/members/root", 404)
    assert "'root' is not a member of group 'quants'" in said
    assert "no group 'ops'" in root.error("DELETE", "/api/groups/ops", 404)


# -- tokens ----------------------------------------------------------------------------------


def test_each_user_makes_lists_and_revokes_its_own_tokens(api: Api, root: Caller) -> None:
    bob = caller(api, "bob")
    made = bob.ok("POST", "/api/tokens", {"name": "laptop", "expires_in_days": 30}, 201)
    secret, token = made["secret"], made["token"]
    assert secret.startswith(f"cvt_{token['id']}_")
    assert (token["user"], token["name"], token["state"]) == ("bob", "laptop", "active")
    assert token["expires_at"] is not None
    listed = bob.call("GET", "/api/tokens")
    assert [t["id"] for t in listed.json()] == [bob.token_id, token["id"]]
    assert secret not in listed.text
    assert bob.secret not in listed.text
    # The new token works, and names itself in the audit log.
    new = Caller(api, "bob", secret, token["id"])
    assert new.ok("GET", "/api/tokens")[0]["user"] == "bob"
    new.ok("DELETE", f"/api/tokens/{token['id']}", code=204)
    assert "revoked" in new.error("GET", "/api/tokens", 401)
    assert [t["state"] for t in bob.ok("GET", "/api/tokens")] == ["active", "revoked"]
    assert audited(api)[-2:] == [
        (bob.label, "token create", token["id"]),
        (f"bob (token {token['id']})", "token revoke", token["id"]),
    ]
    assert all(secret not in json.dumps(e.detail) for e in api.instance.audit.entries())


def test_only_an_admin_sees_and_makes_and_revokes_others_tokens(api: Api, root: Caller) -> None:
    bob = caller(api, "bob")
    carol = caller(api, "carol")
    assert "its own tokens only" in bob.error("GET", "/api/tokens", 403, user="carol")
    assert "for itself only" in bob.error(
        "POST", "/api/tokens", 403, {"name": "x", "user": "carol"}
    )
    assert "no token" in bob.error("DELETE", f"/api/tokens/{carol.token_id}", 404)
    assert api.instance.identity.token(carol.token_id).state() == "active"  # type: ignore[union-attr]
    everyone = {t["user"] for t in root.ok("GET", "/api/tokens")}
    assert everyone == {"root", "bob", "carol"}
    assert [t["user"] for t in root.ok("GET", "/api/tokens", user="carol")] == ["carol"]
    made = root.ok("POST", "/api/tokens", {"name": "ci", "user": "carol"}, 201)
    assert made["token"]["user"] == "carol"
    root.ok("DELETE", f"/api/tokens/{carol.token_id}", code=204)
    assert "no user 'ghost'" in root.error("GET", "/api/tokens", 404, user="ghost")
    assert "no user 'ghost'" in root.error(
        "POST", "/api/tokens", 404, {"name": "x", "user": "ghost"}
    )


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"name": ""}, "name: String should have at least 1 character"),
        ({}, "name: Field required"),
        ({"name": "x", "expires_in_days": 0}, "expires_in_days: Input should be greater than"),
        ({"name": "x", "expires_in_days": 99999}, "expires_in_days: Input should be less than"),
        ({"name": "x", "expires_in_days": "soon"}, "expires_in_days: Input should be a valid"),
        ({"name": "x", "scope": "all"}, "scope: Extra inputs are not permitted"),
    ],
)
def test_bad_token_requests(api: Api, root: Caller, body: Any, said: str) -> None:
    assert said in root.error("POST", "/api/tokens", 422, body)
    assert len(api.instance.identity.tokens()) == 1


def test_tokens_need_a_signed_in_caller(api: Api, root: Caller) -> None:
    assert api.client.get("/api/tokens").status_code == 401
    assert api.client.post("/api/tokens", json={"name": "x"}).status_code == 401
    assert api.client.delete(f"/api/tokens/{root.token_id}").status_code == 401
    bad = {"Authorization": "Bearer cvt_nope_nope"}
    assert api.client.get("/api/tokens", headers=bad).status_code == 401
    revoked = caller(api, "bob")
    api.instance.identity.revoke_token(revoked.token_id)
    assert "revoked" in revoked.error("POST", "/api/tokens", 401, {"name": "again"})


def test_the_local_admin_names_whose_token(tmp_path: Path) -> None:
    for api in make_api(tmp_path, WORKSPACE):  # local mode: no login
        said = api.error("POST", "/api/tokens", 422, {"name": "x"})
        assert 'give "user"' in said
        api.instance.identity.add_user("bob")
        made = api.post("/api/tokens", {"name": "x", "user": "bob"}, 201)
        assert made["token"]["user"] == "bob"
        assert [e.actor for e in api.instance.audit.entries()] == ["local admin"]


# -- access lists ----------------------------------------------------------------------------


def test_a_jobs_access_list_with_its_sources(api: Api, root: Caller) -> None:
    api.instance.identity.add_group("quants")
    bob = caller(api, "bob")
    api.instance.identity.add_member("quants", "bob")
    carol = caller(api, "carol")
    code_list = {
        "job_name": "etl",
        "has_list": True,
        "grants": [
            {
                "principal": "group:quants",
                "permissions": ["operate", "read"],
                "source": "code",
                "code_permissions": ["operate", "read"],
            },
            {
                "principal": "user:carol",
                "permissions": ["read"],
                "source": "code",
                "code_permissions": ["read"],
            },
        ],
    }
    assert bob.ok("GET", "/api/jobs/etl/access") == code_list
    assert root.ok("GET", "/api/jobs/etl/access") == code_list
    assert root.ok("GET", "/api/jobs/open_job/access") == {
        "job_name": "open_job",
        "has_list": False,
        "grants": [],
    }
    # An admin narrows the group to read, takes carol's away, and lets dave operate.
    dave = caller(api, "dave")
    assert "no job 'etl'" in dave.error("GET", "/api/jobs/etl/access", 404)
    root.ok("PUT", "/api/jobs/etl/access/group:quants", {"permissions": ["read"]})
    root.ok("PUT", "/api/jobs/etl/access/carol", {"permissions": []})
    after = root.ok("PUT", "/api/jobs/etl/access/user:dave", {"permissions": ["read", "OPERATE"]})
    assert [(g["principal"], g["permissions"], g["source"]) for g in after["grants"]] == [
        ("group:quants", ["read"], "admin"),
        ("user:carol", [], "admin"),
        ("user:dave", ["operate", "read"], "admin"),
    ]
    # What they may do follows: bob reads but cannot launch; carol no longer sees etl.
    assert dave.ok("GET", "/api/jobs/etl/access")["grants"] == after["grants"]
    assert "needs the operate permission" in bob.error(
        "POST", "/api/runs", 403, {"job_name": "etl"}
    )
    assert "no job 'etl'" in carol.error("GET", "/api/jobs/etl/access", 404)
    # Undone, carol's grant comes from the code again.
    undone = root.ok("DELETE", "/api/jobs/etl/access/user:carol")
    assert ("user:carol", ["read"], "code") in [
        (g["principal"], g["permissions"], g["source"]) for g in undone["grants"]
    ]
    carol.ok("GET", "/api/jobs/etl/access")
    assert audited(api)[-4:] == [
        (root.label, "access grant", "etl"),
        (root.label, "access grant", "etl"),
        (root.label, "access grant", "etl"),
        (root.label, "access revoke", "etl"),
    ]
    assert api.instance.audit.entries(limit=1)[0].detail == {"principal": "user:carol"}


def test_a_grant_on_a_job_without_a_list_gives_it_one(api: Api, root: Caller) -> None:
    bob = caller(api, "bob")
    carol = caller(api, "carol")
    carol.ok("GET", "/api/jobs/open_job/access")
    root.ok("PUT", "/api/jobs/open_job/access/bob", {"permissions": ["read"]})
    assert bob.ok("GET", "/api/jobs/open_job/access")["has_list"] is True
    assert "no job 'open_job'" in carol.error("GET", "/api/jobs/open_job/access", 404)
    root.ok("DELETE", "/api/jobs/open_job/access/bob")
    carol.ok("GET", "/api/jobs/open_job/access")


@pytest.mark.parametrize(
    ("url", "body", "code", "said"),
    [
        ("/api/jobs/etl/access/root", {"permissions": ["fly"]}, 422, "unknown permission 'fly'"),
        ("/api/jobs/etl/access/root", {"permissions": "read"}, 422, "Input should be a valid list"),
        ("/api/jobs/etl/access/root", {}, 422, "permissions: Field required"),
        ("/api/jobs/etl/access/team:x", {"permissions": ["read"]}, 422, "name a user as 'alice'"),
        ("/api/jobs/etl/access/ghost", {"permissions": ["read"]}, 404, "no user 'ghost'"),
        ("/api/jobs/etl/access/group:ops", {"permissions": ["read"]}, 404, "no group 'ops'"),
        ("/api/jobs/nope/access/root", {"permissions": ["read"]}, 404, "no job 'nope'"),
        ("/api/jobs/etl/access/root", {"permissions": []}, 422, "gives user:root nothing"),
    ],
)
def test_bad_grants(api: Api, root: Caller, url: str, body: Any, code: int, said: str) -> None:
    assert said in root.error("PUT", url, code, body)
    assert api.instance.access.all() == {}


def test_undoing_what_is_not_there(api: Api, root: Caller) -> None:
    said = root.error("DELETE", "/api/jobs/etl/access/carol", 404)
    assert "user:carol has no admin grant on 'etl' to undo" in said
    assert "no job 'nope'" in root.error("GET", "/api/jobs/nope/access", 404)


# -- audit -----------------------------------------------------------------------------------


def test_the_audit_log_filters_and_pages(api: Api, root: Caller) -> None:
    for i in range(5):
        root.ok("POST", "/api/groups", {"name": f"g{i}"}, 201)
    root.ok("POST", "/api/users", {"name": "x"}, 201)
    api.instance.audit.append("someone", "launch", "etl", address="10.1.2.3")
    page = root.ok("GET", "/api/audit", limit=3)
    assert [e["action"] for e in page["entries"]] == ["launch", "user add", "group add"]
    assert page["entries"][0]["address"] == "10.1.2.3"
    assert page["entries"][1]["actor"] == root.label
    rest = root.ok("GET", "/api/audit", limit=3, before_id=page["next_before_id"])
    assert [e["target"] for e in rest["entries"]] == ["g3", "g2", "g1"]
    last = root.ok("GET", "/api/audit", limit=3, before_id=rest["next_before_id"])
    assert [e["target"] for e in last["entries"]] == ["g0"]
    assert last["next_before_id"] is None
    assert len(root.ok("GET", "/api/audit", action="group add")["entries"]) == 5
    assert [e["target"] for e in root.ok("GET", "/api/audit", actor="someone")["entries"]] == [
        "etl"
    ]
    assert root.ok("GET", "/api/audit", target="g2")["entries"][0]["action"] == "group add"
    assert root.ok("GET", "/api/audit", since="2999-01-01")["entries"] == []
    assert len(root.ok("GET", "/api/audit", since="2000-01-01T00:00:00Z")["entries"]) == 7


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ({"since": "yesterday"}, "since 'yesterday' is not an ISO date or datetime"),
        ({"limit": 0}, "limit: Input should be greater than or equal to 1"),
        ({"limit": 5000}, "limit: Input should be less than or equal to"),
        ({"before_id": "x"}, "before_id: Input should be a valid integer"),
    ],
)
def test_bad_audit_queries(api: Api, root: Caller, params: dict[str, Any], said: str) -> None:
    assert said in root.error("GET", "/api/audit", 422, **params)


# -- launched_by -----------------------------------------------------------------------------


def test_runs_record_who_launched_them(api: Api, root: Caller) -> None:
    bob = caller(api, "bob", Role.OPERATOR)
    run = bob.ok("POST", "/api/runs", {"job_name": "open_job"}, 201)
    shown = bob.ok("GET", f"/api/runs/{run['id']}")
    assert shown["launched_by"] == bob.label
    assert api.instance.run(run["id"]).launched_by == bob.label
    listed = bob.ok("GET", "/api/runs")
    assert listed["runs"][0]["launched_by"] == bob.label


def test_runs_made_by_the_scheduler_record_their_trigger_kind(api: Api, root: Caller) -> None:
    from conveyor.scheduler.backfill import backfill
    from conveyor.scheduler.firing import Ticks, trigger_kind

    kinds = {
        "every:1h": "schedule",
        "schedule:0 * * * *": "schedule",
        "once:2026-01-01": "schedule",
        "interval": "schedule",
        "job.success:etl": "chain",
        "job.fail:etl?partial": "chain",
        "sensor:inbox": "sensor",
        "webhook:hook": "webhook",
        "retry": "retry",
    }
    assert {t: trigger_kind(t) for t in kinds} == kinds
    job = api.state.workspace.jobs["open_job"]
    ticks = Ticks(api.instance, {})
    for i, trigger in enumerate(kinds):
        ticks.add(job, f"k{i}", trigger, 1000.0 + i)
    ticks.flush()
    made = api.instance.runs("open_job", limit=100)
    assert sorted(r.launched_by or "" for r in made) == sorted(kinds.values())
    daily = api.state.workspace.jobs["daily"]
    queued = backfill(daily, "2026-01-01", "2026-01-03", instance=api.instance).queued
    assert {api.instance.run(r).launched_by for r in queued} == {"backfill"}
    asked = root.ok(
        "POST",
        "/api/backfills",
        {"job_name": "daily", "start": "2026-02-01", "end": "2026-02-03"},
        201,
    )
    runs = api.instance.runs("daily", limit=100)
    assert {r.launched_by for r in runs if r.id not in queued} == {root.label}
    assert asked["job_name"] == "daily"
