"""``conveyor users``, ``groups``, ``tokens`` and ``access`` on the local instance: what they
print, what they store, the audit entries they write, and a clear error (exit 2) for each
bad input."""

from __future__ import annotations

import getpass
import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from conveyor.definitions.access import Permission, Role
from conveyor.storage.instance import Instance
from tests.cli.conftest import CONVEYOR, Cli

ME = f"local:{getpass.getuser()}"


@pytest.fixture
def inst(tmp_path: Path) -> Instance:
    """The instance the ``cli`` fixture's commands write to."""
    return Instance.at(tmp_path / "home")


def with_stdin(cli_env_home: Path, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "CONVEYOR_HOME": str(cli_env_home), "NO_COLOR": "1"}
    env.pop("CONVEYOR_DATABASE_URL", None)
    return subprocess.run(
        [*CONVEYOR, *args], input=text, capture_output=True, text=True, env=env, timeout=60
    )


def fails(result: subprocess.CompletedProcess[str], *said: str) -> None:
    assert result.returncode == 2, result
    for text in said:
        assert text in result.stderr, result.stderr


def test_users_add_list_set_role_disable_remove(cli: Cli, tmp_path: Path, inst: Instance) -> None:
    home = tmp_path / "home"
    added = with_stdin(
        home, "correct horse\n", "users", "add", "alice", "--role", "Admin", "--password-stdin"
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "user alice added, role admin: may sign in"
    out = cli("users", "add", "bob", "--no-password", "--email", "bob@example.com")
    assert "signs in with OpenID Connect only" in out.stdout
    assert inst.identity.check_password("alice", "correct horse") is not None
    assert inst.identity.require_user("bob").has_password is False

    table = cli("users", "list").stdout
    assert "alice" in table
    assert "admin" in table
    assert "bob@example.com" in table
    assert "correct horse" not in table
    rows = json.loads(cli("users", "list", "--json").stdout)
    assert [(r["name"], r["role"], r["password"]) for r in rows] == [
        ("alice", "admin", True),
        ("bob", "viewer", False),
    ]

    assert cli("users", "set-role", "bob", "operator").stdout.strip() == (
        "user bob: role operator (was viewer)"
    )
    assert inst.identity.require_user("bob").role is Role.OPERATOR
    assert "disabled" in cli("users", "disable", "bob").stdout
    assert inst.identity.require_user("bob").disabled
    assert cli("users", "enable", "bob").returncode == 0
    assert not inst.identity.require_user("bob").disabled
    changed = with_stdin(
        home, "battery staple\n", "users", "set-password", "alice", "--password-stdin"
    )
    assert changed.returncode == 0
    assert "correct horse" not in changed.stdout + changed.stderr
    assert inst.identity.check_password("alice", "battery staple") is not None
    assert cli("users", "remove", "bob").returncode == 0
    assert inst.identity.user("bob") is None

    actions = [(e.actor, e.action, e.target) for e in inst.audit.entries()][::-1]
    assert actions == [
        (ME, "user add", "alice"),
        (ME, "user add", "bob"),
        (ME, "user set role", "bob"),
        (ME, "user disable", "bob"),
        (ME, "user enable", "bob"),
        (ME, "user set password", "alice"),
        (ME, "user remove", "bob"),
    ]
    assert all("horse" not in json.dumps(e.detail) for e in inst.audit.entries())


def test_a_password_typed_twice_at_the_prompt(tmp_path: Path, inst: Instance) -> None:
    done = with_stdin(tmp_path / "home", "long enough\nlong enough\n", "users", "add", "carol")
    assert done.returncode == 0, done.stderr
    assert inst.identity.check_password("carol", "long enough") is not None
    mismatch = with_stdin(tmp_path / "home", "long enough\nother one!\n", "users", "add", "dave")
    assert mismatch.returncode != 0
    assert inst.identity.user("dave") is None


def test_bad_user_input_is_refused_clearly(cli: Cli, tmp_path: Path, inst: Instance) -> None:
    home = tmp_path / "home"
    fails(
        cli("users", "add", "eve", "--role", "root", "--no-password"),
        "'root' is not one of 'viewer'",
    )
    fails(
        with_stdin(home, "short\n", "users", "add", "eve", "--password-stdin"),
        "at least 8 characters",
    )
    fails(
        with_stdin(home, "\n", "users", "add", "eve", "--password-stdin"), "stdin held no password"
    )
    fails(cli("users", "add", "group:x", "--no-password"), "user name 'group:x': use letters")
    fails(
        cli("users", "add", "eve", "--no-password", "--password-stdin"),
        "--password-stdin or --no-password, not both",
    )
    assert inst.identity.users() == []
    cli("users", "add", "eve", "--no-password")
    fails(cli("users", "add", "eve", "--no-password"), "user 'eve' exists already")
    fails(cli("users", "set-role", "eve", "god"), "'god' is not one of")
    for args in (
        ("set-role", "ghost", "admin"),
        ("remove", "ghost"),
        ("disable", "ghost"),
        ("enable", "ghost"),
        ("set-password", "ghost", "--password-stdin"),
    ):
        fails(cli("users", *args), "no user 'ghost'; list them with `conveyor users list`")


def test_groups(cli: Cli, inst: Instance) -> None:
    assert "no groups" in cli("groups", "list").stdout
    assert cli("groups", "add", "quants").returncode == 0
    cli("users", "add", "bob", "--no-password")
    assert cli("groups", "add-member", "quants", "bob").stdout.strip() == (
        "bob is a member of group quants"
    )
    assert cli("groups", "list").stdout.strip() == "quants: bob"
    assert json.loads(cli("groups", "list", "--json").stdout) == [
        {"name": "quants", "members": ["bob"]}
    ]
    fails(cli("groups", "add", "quants"), "group 'quants' exists already")
    fails(cli("groups", "add-member", "quants", "ghost"), "no user 'ghost'")
    fails(cli("groups", "add-member", "ops", "bob"), "no group 'ops'; make it with")
    assert cli("groups", "remove-member", "quants", "bob").returncode == 0
    fails(
        cli("groups", "remove-member", "quants", "bob"), "'bob' is not a member of group 'quants'"
    )
    assert cli("groups", "remove", "quants").returncode == 0
    fails(cli("groups", "remove", "quants"), "no group 'quants'")
    assert [e.action for e in inst.audit.entries()][::-1] == [
        "group add",
        "user add",
        "group add member",
        "group remove member",
        "group remove",
    ]


def test_tokens_create_shows_the_secret_once(cli: Cli, inst: Instance) -> None:
    cli("users", "add", "bob", "--no-password")
    made = cli("tokens", "create", "--user", "bob", "--name", "ci", "--expires-in-days", "3")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("cvt_")
    assert "not shown again" in made.stderr
    token = inst.identity.check_token(secret)
    assert token is not None
    assert token.user_name == "bob"
    assert token.expires_at is not None
    listed = cli("tokens", "list").stdout
    assert token.id in listed
    assert "active" in listed
    assert secret not in listed
    rows = json.loads(cli("tokens", "list", "--user", "bob", "--json").stdout)
    assert [(r["id"], r["state"]) for r in rows] == [(token.id, "active")]
    assert secret not in json.dumps(rows)
    # The whole secret pasted in place of the id works too.
    assert cli("tokens", "revoke", secret).stdout.strip() == f"token {token.id} of bob (ci) revoked"
    assert json.loads(cli("tokens", "list", "--json").stdout)[0]["state"] == "revoked"
    fails(cli("tokens", "revoke", token.id), f"token '{token.id}' was revoked already")
    entries = [(e.action, e.target) for e in inst.audit.entries()][::-1]
    assert entries[1:] == [("token create", token.id), ("token revoke", token.id)]
    assert all(secret not in json.dumps(e.detail) for e in inst.audit.entries())


def test_bad_token_input(cli: Cli) -> None:
    fails(cli("tokens", "create", "--user", "ghost", "--name", "ci"), "no user 'ghost'")
    cli("users", "add", "bob", "--no-password")
    fails(cli("tokens", "create", "--user", "bob"), "Missing option '-n' / '--name'")
    fails(cli("tokens", "create", "--user", "bob", "--name", ""), "a token needs a name")
    for days in ("0", "-1", "x"):
        fails(cli("tokens", "create", "--user", "bob", "--name", "a", "--expires-in-days", days))
    fails(cli("tokens", "revoke", "nope"), "no token 'nope'")
    fails(cli("tokens", "list", "--user", "ghost"), "no user 'ghost'")


@pytest.fixture
def access_ws(tmp_path: Path) -> Path:
    path = tmp_path / "acl.py"
    path.write_text(
        textwrap.dedent("""
        from conveyor import job

        @job(access={"alice": ["read"], "group:quants": "read,operate"})
        def etl():
            pass

        @job
        def open_job():
            pass
        """)
    )
    return path


def test_access_show_grant_revoke(cli: Cli, access_ws: Path, inst: Instance) -> None:
    for name in ("alice", "bob"):
        cli("users", "add", name, "--no-password")
    cli("groups", "add", "quants")
    shown = json.loads(cli("access", "show", "etl", str(access_ws), "--json").stdout)
    assert shown == {
        "job": "etl",
        "has_list": True,
        "grants": [
            {
                "principal": "group:quants",
                "permissions": ["operate", "read"],
                "source": "code",
                "code": ["operate", "read"],
            },
            {
                "principal": "user:alice",
                "permissions": ["read"],
                "source": "code",
                "code": ["read"],
            },
        ],
    }
    assert "no access list" in cli("access", "show", "open_job", str(access_ws)).stdout

    assert cli("access", "grant", "etl", "group:quants", "read").stdout.strip() == (
        "group:quants on etl: read"
    )
    assert cli("access", "grant", "etl", "bob", "READ, write").returncode == 0
    took = cli("access", "grant", "etl", "alice", "none")
    assert "the code grant is taken away" in took.stdout
    assert inst.access.changes("etl") == {
        "group:quants": frozenset({Permission.READ}),
        "user:bob": frozenset({Permission.READ, Permission.WRITE}),
        "user:alice": frozenset(),
    }
    table = cli("access", "show", "etl", str(access_ws)).stdout
    assert "admin (the code gives operate, read)" in table
    assert cli("access", "revoke", "etl", "user:alice").stdout.strip() == (
        "user:alice on etl: back to the code's list"
    )
    grants = json.loads(cli("access", "show", "etl", str(access_ws), "--json").stdout)["grants"]
    assert [(g["principal"], g["permissions"], g["source"]) for g in grants] == [
        ("group:quants", ["read"], "admin"),
        ("user:alice", ["read"], "code"),
        ("user:bob", ["read", "write"], "admin"),
    ]
    # Without the workspace: the admin's changes only, and a word on that.
    alone = cli("access", "show", "etl")
    assert "user:bob" in alone.stdout
    assert "user:alice" not in alone.stdout
    assert "the admin's changes only" in alone.stdout
    assert [(e.action, e.target, (e.detail or {}).get("principal")) for e in inst.audit.entries()][
        :4
    ] == [
        ("access revoke", "etl", "user:alice"),
        ("access grant", "etl", "user:alice"),
        ("access grant", "etl", "user:bob"),
        ("access grant", "etl", "group:quants"),
    ]


def test_bad_access_input(cli: Cli, access_ws: Path, inst: Instance) -> None:
    cli("users", "add", "bob", "--no-password")
    fails(
        cli("access", "grant", "etl", "bob", "fly"), "unknown permission 'fly': use read, operate"
    )
    fails(cli("access", "grant", "etl", "bob", ","), "give permissions such as read,operate")
    fails(cli("access", "grant", "etl", "team:x", "read"), "name a user as 'alice' or 'user:alice'")
    fails(cli("access", "grant", "etl", "ghost", "read"), "no user 'ghost'")
    fails(cli("access", "grant", "etl", "group:nope", "read"), "no group 'nope'")
    fails(cli("access", "revoke", "etl", "bob"), "user:bob has no admin grant on etl")
    fails(
        cli("access", "show", "nojob", str(access_ws)),
        "no job 'nojob' in",
        "its jobs: etl, open_job",
    )
    fails(cli("access", "show", "etl", str(access_ws), "-m", "x"), "not both")
    assert inst.access.all() == {}


def test_a_local_run_records_the_os_user_who_started_it(
    cli: Cli, workspace: Path, inst: Instance
) -> None:
    done = cli("run", str(workspace), "do_stuff")
    assert done.returncode == 0, done.stderr
    queued = cli("run", "--detach", str(workspace), "do_stuff")
    assert queued.returncode == 0, queued.stderr
    runs = inst.runs("do_stuff")
    assert len(runs) == 2
    assert {r.launched_by for r in runs} == {ME}
