"""The authorization matrix: every API route, read from the app's route table, called as
each kind of caller, with the answer each must get; and no answer names a job (or its
runs, sensors, pools) that the caller may not read.

The callers: nobody (anonymous), a viewer, an operator, an editor, an admin, a viewer
who is a member of a group on the job's access list, a reader named on the list, an
operator outside the list, and an expired and a revoked token. Each signs in with an
API token (no CSRF token needed; the cookie path is in ``test_auth.py``).

``guarded`` has an access list (``group:quants`` read and operate, ``carol`` read);
``open_job`` has none, so the instance roles hold on it. A route without an entry in
``CASES`` fails ``test_every_api_route_has_a_matrix_entry``: a new route must say who may
call it.
"""

from __future__ import annotations

import textwrap
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from conveyor.execution.launch import execute_run
from conveyor.execution.runner import reuse_for
from conveyor.scheduler.daemon import Daemon
from conveyor.server.app import create_app
from conveyor.server.auth_settings import AuthSettings
from conveyor.server.state import ServerState, WorkspaceHolder
from conveyor.storage.deployments import NewVersion
from conveyor.storage.instance import Instance
from conveyor.storage.run_queries import RunFilter
from conveyor.workspace import Workspace, load_file
from tests.waiting import wait_until

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient

WORKSPACE = """
from conveyor import StaticPartitions, job, sensor

@job(trigger="every:1d")
def open_job(context) -> int:
    print("open job ran")
    return 1

@job(
    trigger="every:1d",
    partitions=StaticPartitions(["a", "b"]),
    pool="secretpool",
    access={"group:quants": ["read", "operate"], "carol": ["read"]},
)
def guarded(context) -> int:
    print("guarded job ran")
    return 2

@sensor(job=guarded, interval="1h")
def guarded_watch(context):
    return None

@sensor(job=open_job, interval="1h")
def open_watch(context):
    return None
"""

SPAN = {"start": "2026-01-01", "end": "2026-01-03"}
PASSWORD = "correct horse battery"

# Each caller: (user, role, groups); None for anonymous and the bad tokens.
USERS = {
    "viewer": ("vera", "viewer", ()),
    "operator": ("otto", "operator", ()),
    "editor": ("eddie", "editor", ()),
    "admin": ("ada", "admin", ()),
    "member": ("quinn", "viewer", ("quants",)),
    "reader": ("carol", "viewer", ()),
    "outsider": ("olaf", "operator", ()),
}
CALLERS = ["anonymous", *USERS, "expired", "revoked"]
SIGNED_IN = list(USERS)

# What each caller may do on each job: r(ead), o(perate), w(rite).
PERMS = {
    "open_job": {
        "viewer": "r",
        "operator": "ro",
        "editor": "row",
        "admin": "row",
        "member": "r",
        "reader": "r",
        "outsider": "ro",
    },
    "guarded": {
        "viewer": "",
        "operator": "",
        "editor": "",
        "admin": "row",
        "member": "ro",
        "reader": "r",
        "outsider": "",
    },
}
ROLE_RANK = {"viewer": 0, "operator": 1, "editor": 2, "admin": 3}


@dataclass
class World:
    client: TestClient
    state: ServerState
    headers: dict[str, dict[str, str]]
    runs: dict[str, str]  # job -> an ended run of it
    task: dict[str, str]  # job -> the task key of its run
    backfills: dict[str, str]  # job -> a backfill of it
    spare_token: str  # an admin's token the matrix revokes
    hidden_words: dict[str, list[str]] = field(default_factory=dict)

    @property
    def instance(self) -> Instance:
        return self.state.instance


def _executing_here(ws: Workspace) -> Any:
    def launch(run_id: str, instance: Instance) -> None:
        run = instance.run(run_id)
        job = ws.jobs[run.job_name]
        execute_run(run_id, job, instance=instance, reuse=reuse_for(run, job, instance))

    return launch


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("matrix")
    path = folder / "jobs.py"
    path.write_text(textwrap.dedent(WORKSPACE))
    instance = Instance.at(folder / "home")
    holder = WorkspaceHolder(lambda: load_file(path), str(path))
    assert holder.reload() is None
    assert holder.workspace is not None
    state = ServerState(instance, holder, auth=AuthSettings(mode="login"))
    identity = instance.identity
    identity.add_group("quants")
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    for caller, (name, role, groups) in USERS.items():
        identity.add_user(name, role, password=PASSWORD)
        for g in groups:
            identity.add_member(g, name)
        _, secret = identity.create_token(name, f"matrix {caller}")
        headers[caller] = {"Authorization": f"Bearer {secret}"}
    expired, secret = identity.create_token("ada", "expires at once", expires_in=0.001)
    headers["expired"] = {"Authorization": f"Bearer {secret}"}
    wait_until(lambda: identity.token(expired.id).state() == "expired", 10, "the token to expire")  # type: ignore[union-attr]
    revoked, secret = identity.create_token("ada", "revoked")
    identity.revoke_token(revoked.id)
    headers["revoked"] = {"Authorization": f"Bearer {secret}"}
    spare, _ = identity.create_token("ada", "revoked by the matrix")
    for name in ("zed-patch", "zed-delete"):
        identity.add_user(name, "viewer", password=PASSWORD)
    for name in ("g-members", "g-delete"):
        identity.add_group(name)
    instance.pool_store.set("doomed", 1)
    daemon = Daemon(holder.workspace, instance, launch=_executing_here(holder.workspace))
    with TestClient(create_app(state), base_url="http://testserver") as client:
        admin = headers["admin"]
        runs, tasks, backfills = {}, {}, {}
        for job, extra in (("open_job", {}), ("guarded", {"partition": "a"})):
            made = client.post("/api/runs", json={"job_name": job, **extra}, headers=admin)
            assert made.status_code == 201, made.text
            runs[job] = made.json()["id"]
        for _ in range(20):
            daemon.launch_queued()
            if not instance.run_status_counts(RunFilter(statuses=("queued",)))["queued"]:
                break
        for job, rid in runs.items():
            run = client.get(f"/api/runs/{rid}", headers=admin).json()
            assert run["status"] == "success", run
            tasks[job] = run["tasks"][0]["key"]
            made = client.post("/api/backfills", json={"job_name": job, **SPAN}, headers=admin)
            assert made.status_code == 201, made.text
            backfills[job] = made.json()["id"]
        w = World(client, state, headers, runs, tasks, backfills, spare.id)
        w.hidden_words["guarded"] = [
            "guarded",
            "guarded_watch",
            "secretpool",
            runs["guarded"],
            backfills["guarded"],
        ]
        yield w
    instance.close()


# -- the expected answers --------------------------------------------------------------------

# How a case says what a caller gets: an exact status, or ALLOWED (any answer but
# 401/403 and no server error: the routes of the access-control pages, whose inputs
# other tests check) or REFUSED (403, or 404 where the caller may not see the thing).
ALLOWED = "allowed"
REFUSED = "refused"
Expect = int | str


def job_read(job: str, ok: int) -> Callable[[str], Expect]:
    return lambda c: ok if "r" in PERMS[job][c] else 404


def job_operate(job: str, ok: int) -> Callable[[str], Expect]:
    def rule(c: str) -> Expect:
        perms = PERMS[job][c]
        return 404 if "r" not in perms else ok if "o" in perms else 403

    return rule


def signed_in(ok: Expect) -> Callable[[str], Expect]:
    return lambda c: ok


def role_at_least(role: str, ok: Expect, refused: Expect = 403) -> Callable[[str], Expect]:
    return lambda c: ok if ROLE_RANK[USERS[c][1]] >= ROLE_RANK[role] else refused


@dataclass(frozen=True)
class Call:
    """One call of a route: its URL and body, and what each signed-in caller gets
    (``anonymous`` and the bad tokens always get 401, but on open routes)."""

    url: Callable[[World, str], str]
    expect: Callable[[str], Expect]
    body: Callable[[World, str], Any] | None = None
    open: bool = False  # anyone may call it, signed in or not
    checks_own_auth: bool = False  # the webhook: its own secret, no caller passes


def on(job: str, template: str, expect: Callable[[str], Expect], **more: Any) -> Call:
    """A call of ``template`` about ``job``: its run, task and backfill filled in."""

    def url(w: World, caller: str) -> str:
        return template.format(
            job=job,
            run=w.runs[job],
            task=w.task[job],
            backfill=w.backfills[job],
            sensor="guarded_watch" if job == "guarded" else "open_watch",
            caller=caller,
        )

    return Call(url, expect, **more)


def plain(template: str, expect: Callable[[str], Expect], **more: Any) -> Call:
    return Call(lambda w, c: template.format(caller=c, token=w.spare_token), expect, **more)


def both(
    template: str, rule: Callable[[str, int], Callable[[str], Expect]], ok: int, **more: Any
) -> list[Call]:
    return [on(job, template, rule(job, ok), **more) for job in ("open_job", "guarded")]


def _json(value: Any) -> Callable[[World, str], Any]:
    return lambda w, c: value


def workload(template: str, expect: Callable[[str], Expect]) -> Call:
    """A call about the workload ``svc``, recorded on first use; it has no access list,
    so the instance roles hold on it (lists: ``test_workloads_api.py``, ``test_proxy.py``)."""

    def url(w: World, caller: str) -> str:
        if w.instance.workloads.get("svc") is None:
            w.instance.workloads.register("svc", "service", {})
        return template

    return Call(url, expect)


def deployed(template: str, expect: Callable[[str], Expect], **more: Any) -> Call:
    """A call about deployments: versions 1 and 2 (jobs open_job and guarded, without
    access lists of their own: the workspace's hold) are deployed to dev on first use."""

    def url(w: World, caller: str) -> str:
        store = w.instance.deployments
        if store.latest() is None:
            for n in (1, 2):
                jobs = {"open_job": {"version": str(n)}, "guarded": {"version": "1"}}
                record, _ = store.add_version(
                    NewVersion(f"{n:064x}", f"code/{n}.tar.gz", 1, "jobs.py", {"jobs": jobs})
                )
                store.activate("dev", record.number, action="deploy", by="ada")
        return template

    return Call(url, expect, **more)


CASES: dict[tuple[str, str], list[Call]] = {
    ("GET", "/api/health"): [plain("/api/health", signed_in(200), open=True)],
    ("GET", "/api/me"): [plain("/api/me", signed_in(200))],
    ("GET", "/api/jobs"): [plain("/api/jobs", signed_in(200))],
    ("GET", "/api/jobs/{job_name}"): both("/api/jobs/{job}", job_read, 200),
    ("GET", "/api/jobs/{job_name}/graph"): both("/api/jobs/{job}/graph", job_read, 200),
    ("GET", "/api/jobs/{job_name}/config-schema"): both(
        "/api/jobs/{job}/config-schema", job_read, 200
    ),
    ("GET", "/api/jobs/{job_name}/triggers"): both("/api/jobs/{job}/triggers", job_read, 200),
    ("POST", "/api/jobs/{job_name}/config-check"): [
        on("open_job", "/api/jobs/{job}/config-check", job_read("open_job", 200), body=_json({})),
        # A read, so no operate needed; the config lacks the partition: 422.
        on("guarded", "/api/jobs/{job}/config-check", job_read("guarded", 422), body=_json({})),
    ],
    ("GET", "/api/runs"): [
        plain("/api/runs", signed_in(200)),
        plain("/api/runs?job=guarded", signed_in(200)),
    ],
    ("GET", "/api/runs/counts"): [
        plain("/api/runs/counts", signed_in(200)),
        plain("/api/runs/counts?job=guarded", signed_in(200)),
    ],
    ("POST", "/api/runs"): [
        on(
            "open_job",
            "/api/runs",
            job_operate("open_job", 201),
            body=_json({"job_name": "open_job"}),
        ),
        on(
            "guarded",
            "/api/runs",
            job_operate("guarded", 201),
            body=_json({"job_name": "guarded", "partition": "b"}),
        ),
    ],
    ("GET", "/api/runs/{run_id}"): both("/api/runs/{run}", job_read, 200),
    ("GET", "/api/runs/{run_id}/tasks"): both("/api/runs/{run}/tasks", job_read, 200),
    ("GET", "/api/runs/{run_id}/events"): both("/api/runs/{run}/events", job_read, 200),
    ("POST", "/api/runs/{run_id}/cancel"): both("/api/runs/{run}/cancel", job_operate, 200),
    ("POST", "/api/runs/{run_id}/rerun"): both(
        "/api/runs/{run}/rerun", job_operate, 201, body=_json({"full": True})
    ),
    ("GET", "/api/runs/{run_id}/tasks/{task_key}/logs"): both(
        "/api/runs/{run}/tasks/{task}/logs", job_read, 200
    ),
    ("GET", "/api/runs/{run_id}/tasks/{task_key}/logs/stream"): both(
        "/api/runs/{run}/tasks/{task}/logs/stream", job_read, 200
    ),
    ("GET", "/api/runs/{run_id}/tasks/{task_key}/result"): both(
        "/api/runs/{run}/tasks/{task}/result", job_read, 200
    ),
    ("GET", "/api/schedules"): [plain("/api/schedules", signed_in(200))],
    ("GET", "/api/schedules/upcoming"): [plain("/api/schedules/upcoming", signed_in(200))],
    ("GET", "/api/schedules/{job_name}"): both("/api/schedules/{job}", job_read, 200),
    ("GET", "/api/schedules/{job_name}/ticks"): both("/api/schedules/{job}/ticks", job_read, 200),
    ("POST", "/api/schedules/{job_name}/on"): both("/api/schedules/{job}/on", job_operate, 200),
    ("POST", "/api/schedules/{job_name}/off"): both("/api/schedules/{job}/off", job_operate, 200),
    ("GET", "/api/sensors"): [plain("/api/sensors", signed_in(200))],
    ("GET", "/api/sensors/{name}"): both("/api/sensors/{sensor}", job_read, 200),
    ("GET", "/api/sensors/{name}/ticks"): both("/api/sensors/{sensor}/ticks", job_read, 200),
    ("POST", "/api/sensors/{name}/on"): both("/api/sensors/{sensor}/on", job_operate, 200),
    ("POST", "/api/sensors/{name}/off"): both("/api/sensors/{sensor}/off", job_operate, 200),
    ("PUT", "/api/sensors/{name}/cursor"): both(
        "/api/sensors/{sensor}/cursor", job_operate, 200, body=_json({"cursor": "x"})
    ),
    ("GET", "/api/backfills"): [
        plain("/api/backfills", signed_in(200)),
        plain("/api/backfills?job=guarded", signed_in(200)),
    ],
    ("POST", "/api/backfills"): [
        on(
            "open_job",
            "/api/backfills",
            job_operate("open_job", 201),
            body=_json({"job_name": "open_job", **SPAN}),
        ),
        on(
            "guarded",
            "/api/backfills",
            job_operate("guarded", 201),
            body=_json({"job_name": "guarded", **SPAN}),
        ),
    ],
    ("GET", "/api/backfills/{backfill_id}"): both("/api/backfills/{backfill}", job_read, 200),
    ("POST", "/api/backfills/{backfill_id}/cancel"): both(
        "/api/backfills/{backfill}/cancel", job_operate, 200
    ),
    ("GET", "/api/pools"): [plain("/api/pools", signed_in(200))],
    ("GET", "/api/pools/{name}"): [
        plain("/api/pools/secretpool", lambda c: 200 if "r" in PERMS["guarded"][c] else 404)
    ],
    ("PUT", "/api/pools/{name}"): [
        plain("/api/pools/matrix-{caller}", role_at_least("admin", 200), body=_json({"limit": 2}))
    ],
    ("DELETE", "/api/pools/{name}"): [plain("/api/pools/doomed", role_at_least("admin", 204))],
    ("GET", "/api/daemon"): [plain("/api/daemon", signed_in(200))],
    ("GET", "/api/workspace"): [plain("/api/workspace", signed_in(200))],
    ("POST", "/api/workspace/reload"): [
        plain("/api/workspace/reload", role_at_least("operator", 200))
    ],
    ("POST", "/api/webhooks/{path}"): [
        plain("/api/webhooks/some-hook", signed_in(REFUSED), checks_own_auth=True, body=_json({}))
    ],
    # The access-control pages' API (helper A): admins only, but for one's own tokens
    # and reading a job's access list (read on the job).
    ("GET", "/api/users"): [plain("/api/users", role_at_least("admin", ALLOWED))],
    ("POST", "/api/users"): [
        plain(
            "/api/users",
            role_at_least("admin", ALLOWED),
            body=lambda w, c: {"name": f"made-by-{c}", "role": "viewer", "password": PASSWORD},
        )
    ],
    ("PATCH", "/api/users/{name}"): [
        plain(
            "/api/users/zed-patch",
            role_at_least("admin", ALLOWED),
            body=_json({"role": "operator"}),
        )
    ],
    ("DELETE", "/api/users/{name}"): [
        plain("/api/users/zed-delete", role_at_least("admin", ALLOWED))
    ],
    ("GET", "/api/groups"): [plain("/api/groups", role_at_least("admin", ALLOWED))],
    ("POST", "/api/groups"): [
        plain("/api/groups", role_at_least("admin", ALLOWED), body=lambda w, c: {"name": f"g-{c}"})
    ],
    ("DELETE", "/api/groups/{name}"): [
        plain("/api/groups/g-delete", role_at_least("admin", ALLOWED))
    ],
    ("PUT", "/api/groups/{name}/members/{user}"): [
        plain("/api/groups/g-members/members/vera", role_at_least("admin", ALLOWED))
    ],
    ("DELETE", "/api/groups/{name}/members/{user}"): [
        plain("/api/groups/g-members/members/vera", role_at_least("admin", ALLOWED))
    ],
    ("GET", "/api/tokens"): [plain("/api/tokens", signed_in(ALLOWED))],
    ("POST", "/api/tokens"): [
        plain("/api/tokens", signed_in(ALLOWED), body=lambda w, c: {"name": f"made by {c}"})
    ],
    ("DELETE", "/api/tokens/{token_id}"): [
        plain("/api/tokens/{token}", role_at_least("admin", ALLOWED, REFUSED))
    ],
    ("GET", "/api/jobs/{job_name}/access"): [
        on(
            job,
            "/api/jobs/{job}/access",
            (lambda j: lambda c: ALLOWED if "r" in PERMS[j][c] else 404)(job),
        )
        for job in ("open_job", "guarded")
    ],
    # On guarded only, for a user no caller is: a grant on open_job would give it a list.
    ("PUT", "/api/jobs/{job_name}/access/{principal}"): [
        on(
            "guarded",
            "/api/jobs/{job}/access/user:zed-patch",
            role_at_least("admin", ALLOWED, REFUSED),
            body=_json({"permissions": ["read"]}),
        )
    ],
    ("DELETE", "/api/jobs/{job_name}/access/{principal}"): [
        on(
            "guarded",
            "/api/jobs/{job}/access/user:zed-patch",
            role_at_least("admin", ALLOWED, REFUSED),
        )
    ],
    ("GET", "/api/audit"): [plain("/api/audit", role_at_least("admin", ALLOWED))],
    # Workloads (issue 13): read to see them, operate to start, stop and restart them.
    ("GET", "/api/workloads"): [plain("/api/workloads", signed_in(200))],
    ("GET", "/api/workloads/{name}"): [workload("/api/workloads/svc", signed_in(200))],
    ("GET", "/api/workloads/{name}/logs"): [
        workload("/api/workloads/svc/logs?lines=5", signed_in(200))
    ],
    ("POST", "/api/workloads/{name}/start"): [
        workload("/api/workloads/svc/start", role_at_least("operator", 200))
    ],
    ("POST", "/api/workloads/{name}/stop"): [
        workload("/api/workloads/svc/stop", role_at_least("operator", 200))
    ],
    ("POST", "/api/workloads/{name}/restart"): [
        workload("/api/workloads/svc/restart", role_at_least("operator", 200))
    ],
    # Deployments (issue 15): read when signed in (a version shows only the jobs the
    # caller may read); promote and rollback need promote on every job: admins here.
    ("GET", "/api/environments"): [deployed("/api/environments", signed_in(200))],
    ("GET", "/api/environments/{env}/history"): [
        deployed("/api/environments/dev/history", signed_in(200))
    ],
    ("GET", "/api/versions"): [deployed("/api/versions", signed_in(200))],
    ("GET", "/api/versions/{number}"): [deployed("/api/versions/2", signed_in(200))],
    ("GET", "/api/versions/{a}/diff/{b}"): [deployed("/api/versions/1/diff/2", signed_in(200))],
    ("POST", "/api/environments/{env}/promote"): [
        deployed(
            "/api/environments/pre/promote",
            role_at_least("admin", 200),
            body=_json({"from": "dev"}),
        )
    ],
    ("POST", "/api/environments/{env}/rollback"): [
        deployed("/api/environments/dev/rollback", role_at_least("admin", 200), body=_json({}))
    ],
}


def _api_routes() -> list[tuple[str, str]]:
    from fastapi.routing import APIRoute

    from conveyor.server.api import routers

    out: list[tuple[str, str]] = []
    for router in routers():
        for route in router.routes:
            if isinstance(route, APIRoute):
                path = "/api" + route.path.replace("{path:path}", "{path}")
                out.extend((m, path) for m in sorted(set(route.methods or ()) - {"HEAD"}))
    return sorted(set(out))


ROUTES = _api_routes()


def test_every_api_route_has_a_matrix_entry() -> None:
    missing = [r for r in ROUTES if r not in CASES]
    assert missing == [], f"routes without an authorization matrix entry: {missing}"


# Callers in an order that leaves the admin last: a destructive call (a deleted user, a
# revoked token) is refused to the others before the admin makes it.
ORDER = ["anonymous", "expired", "revoked", *[c for c in SIGNED_IN if c != "admin"], "admin"]


def _check(expected: Expect, status: int, text: str, what: str) -> None:
    if expected == ALLOWED:
        assert status not in (401, 403), f"{what}: {status} {text[:300]}"
        assert status < 500, f"{what}: {status} {text[:300]}"
    elif expected == REFUSED:
        assert status in (401, 403, 404), f"{what}: {status} {text[:300]}"
    else:
        assert status == expected, f"{what}: expected {expected}, got {status} {text[:300]}"


# Writes that change nothing, so leave no audit entry.
NOT_ACTIONS = {("POST", "/api/jobs/{job_name}/config-check")}


def _audited_once(world: World, after: int, caller: str, what: str) -> None:
    """A change made through the API leaves one audit entry, naming its caller."""
    new = [e for e in world.instance.audit.entries(limit=50) if e.id > after]
    assert len(new) == 1, f"{what}: {len(new)} audit entries: {new}"
    if caller in USERS:
        user = USERS[caller][0]
        assert new[0].actor.startswith(f"{user} (token "), f"{what}: actor {new[0].actor!r}"


@pytest.mark.parametrize("route", [r for r in ROUTES if r in CASES], ids=" ".join)
def test_matrix(world: World, route: tuple[str, str]) -> None:
    method = route[0]
    for call in CASES[route]:
        for caller in ORDER:
            url = call.url(world, caller)
            body = call.body(world, caller) if call.body is not None else None
            [last] = world.instance.audit.entries(limit=1) or [None]
            response = world.client.request(method, url, json=body, headers=world.headers[caller])
            what = f"{method} {url} as {caller}"
            if method != "GET" and response.status_code < 400 and route not in NOT_ACTIONS:
                _audited_once(world, last.id if last else 0, caller, what)
            if caller in ("anonymous", "expired", "revoked"):
                if call.open and caller == "anonymous":
                    expected: Expect = 200
                elif call.checks_own_auth:
                    expected = REFUSED
                else:
                    expected = 401
            else:
                expected = call.expect(caller)
            _check(expected, response.status_code, response.text, what)
            if response.status_code == 401 and caller in ("expired", "revoked"):
                assert caller in response.json()["error"], what
            if response.status_code >= 400 and response.headers.get("content-type", "").startswith(
                "application/json"
            ):
                assert response.json().get("error"), what
            if "r" not in PERMS["guarded"].get(caller, ""):
                sent = url + repr(body)
                leaked = [
                    w for w in world.hidden_words["guarded"] if w in response.text and w not in sent
                ]
                assert leaked == [], f"{what} reveals {leaked}: {response.text[:500]}"


def test_lists_and_counts_leave_out_what_the_caller_may_not_read(world: World) -> None:
    def get(caller: str, url: str) -> Any:
        response = world.client.get(url, headers=world.headers[caller])
        assert response.status_code == 200, response.text
        return response.json()

    for caller in ("viewer", "outsider"):
        assert {j["name"] for j in get(caller, "/api/jobs")} == {"open_job"}
        assert {r["job_name"] for r in get(caller, "/api/runs")["runs"]} == {"open_job"}
        assert get(caller, "/api/runs?job=guarded")["runs"] == []
        assert sum(get(caller, "/api/runs/counts?job=guarded").values()) == 0
        mine = sum(get(caller, "/api/runs/counts").values())
        everything = sum(get("admin", "/api/runs/counts").values())
        assert mine == sum(get("admin", "/api/runs/counts?job=open_job").values()) < everything
        assert {s["name"] for s in get(caller, "/api/sensors")} == {"open_watch"}
        assert {s["job_name"] for s in get(caller, "/api/schedules")} == {"open_job"}
        assert {b["job_name"] for b in get(caller, "/api/backfills")} == {"open_job"}
        assert get(caller, "/api/workspace")["jobs"] == ["open_job"]
    for caller in ("member", "reader", "admin"):
        assert {j["name"] for j in get(caller, "/api/jobs")} == {"open_job", "guarded"}
        assert get(caller, "/api/runs?job=guarded")["runs"]
    # Paging through what a viewer may read: every page full but the last, no job of the
    # others, and the same runs as one long page.
    pages, cursor = [], None
    while True:
        url = "/api/runs?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = get("viewer", url)
        pages.append(page["runs"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert all(len(p) == 2 for p in pages[:-1])
    flat = [r["id"] for p in pages for r in p]
    assert flat == [r["id"] for r in get("viewer", "/api/runs?limit=1000")["runs"]]


def test_runs_record_who_launched_them(world: World) -> None:
    made = world.client.post(
        "/api/runs", json={"job_name": "open_job"}, headers=world.headers["operator"]
    )
    assert made.status_code == 201
    run = world.instance.run(made.json()["id"])
    token = world.instance.identity.tokens("otto")[0]
    assert run.launched_by == f"otto (token {token.id})"
    entry = world.instance.audit.entries(action="launch", target=run.id)
    assert len(entry) == 1
    assert entry[0].actor == f"otto (token {token.id})"


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "/api/runs", {"job_name": "nope"}),
        ("POST", "/api/backfills", {"job_name": "nope", **SPAN}),
        ("GET", "/api/jobs/nope", None),
        ("POST", "/api/schedules/nope/on", None),
        ("GET", "/api/sensors/nope", None),
    ],
)
def test_a_wrong_name_is_answered_without_the_names_the_caller_may_not_read(
    world: World, method: str, url: str, body: Any
) -> None:
    answer = world.client.request(method, url, json=body, headers=world.headers["operator"])
    assert answer.status_code == 404
    assert "guarded" not in answer.text
    assert "open" in answer.text  # it names what the caller may read


UI_PAGES = ["/", "/jobs", "/runs", "/runs?job=guarded", "/schedules", "/backfills", "/pools"]


@pytest.mark.parametrize("caller", ["viewer", "operator", "outsider"])
def test_the_pages_show_nothing_of_a_job_the_caller_may_not_read(world: World, caller: str) -> None:
    headers = world.headers[caller]
    for path in UI_PAGES:
        page = world.client.get(path, headers=headers)
        assert page.status_code == 200, (path, page.text[:300])
        leaked = [w for w in world.hidden_words["guarded"] if w in page.text and w not in path]
        assert leaked == [], f"{path} shows {leaked} to {caller}"
        assert "open_job" in page.text or path in ("/pools", "/runs?job=guarded"), path
    for path in (
        "/jobs/guarded",
        "/jobs/guarded/launch",
        f"/runs/{world.runs['guarded']}",
        f"/backfills/{world.backfills['guarded']}",
    ):
        page = world.client.get(path, headers=headers)
        assert page.status_code == 404, (path, page.status_code)
        assert "text/html" in page.headers["content-type"]
    forged = world.client.post(
        f"/runs/{world.runs['guarded']}/rerun", data={"mode": "all"}, headers=headers
    )
    assert forged.status_code == 404


def test_the_pages_show_a_member_the_job_and_its_buttons(world: World) -> None:
    headers = world.headers["member"]
    page = world.client.get(f"/runs/{world.runs['guarded']}", headers=headers)
    assert page.status_code == 200
    assert "Rerun all" in page.text
    reader = world.client.get(f"/runs/{world.runs['guarded']}", headers=world.headers["reader"])
    assert reader.status_code == 200
    assert "Rerun all" not in reader.text
    assert 'id="open-launchpad"' not in reader.text
