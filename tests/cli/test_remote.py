"""The remote CLI: ``conveyor --url/--token``, ``CONVEYOR_URL``/``CONVEYOR_TOKEN`` and
``conveyor login`` run, list, show, follow and rerun runs on a real ``conveyor server``
(with a daemon beside it) through its REST API, with nothing read from the local
instance; a bad, expired or revoked token is refused in one line that says what to do."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest

from conveyor.cli.credentials import (
    Remote,
    credentials_path,
    load_credentials,
    remote_of,
    save_credentials,
    server_url,
    token_id_of,
)
from conveyor.errors import ConfigError
from conveyor.storage.instance import Instance
from tests.commands import CONVEYOR, conveyor, home_env
from tests.waiting import wait_until

WORKSPACE = """
from conveyor import job, task, workflow

@task
def five():
    return 5

@task
def shout(x):
    print("shouting", x)
    return x + 1

@task
def boom(x):
    raise ValueError(f"bad value {x}")

@workflow
def hello():
    shout(five())

@workflow
def failing():
    boom(shout(five()))

@workflow(schedule="0 * * * *")
def hourly():
    five()

@job(partitions=["eu", "us"])
def sliced(context):
    print("slice", context.partition_key)
"""


@dataclass
class Server:
    home: Path
    url: str
    token: str
    expired: str
    revoked: str
    viewer: str


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [*CONVEYOR, *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A ``conveyor server`` in login mode (its instance has users) on 127.0.0.1, with a
    daemon beside it, and the tokens of its users."""
    root = tmp_path_factory.mktemp("remote")
    workspace = root / "served.py"
    workspace.write_text(textwrap.dedent(WORKSPACE))
    home = root / "server-home"
    instance = Instance.at(home)
    try:
        identity = instance.identity
        identity.add_user("alice", "operator", password="correct horse")
        identity.add_user("victor", "viewer", password="correct horse")
        _, token = identity.create_token("alice", "laptop")
        _, viewer = identity.create_token("victor", "laptop")
        _, expired = identity.create_token("alice", "old", expires_in=0.001)
        old, revoked = identity.create_token("alice", "leaked")
        identity.revoke_token(old.id)
    finally:
        instance.close()
    env = home_env(home)
    server = _start(
        ["server", str(workspace), "--host", "127.0.0.1", "--port", "0"], env, root / "server.log"
    )
    daemon = _start(["daemon", str(workspace)], env, root / "daemon.log")
    try:

        def url() -> str | None:
            if server.poll() is not None:
                raise AssertionError(f"the server exited:\n{(root / 'server.log').read_text()}")
            found = re.search(
                r"conveyor server[^:]*: (http://\S+)", (root / "server.log").read_text()
            )
            return found.group(1) if found else None

        base = wait_until(url, 90, "the server to print its URL")
        assert base is not None
        yield Server(home, base, token, expired, revoked, viewer)
    finally:
        _stop(daemon)
        _stop(server)


@pytest.fixture
def client_env(tmp_path: Path) -> dict[str, str]:
    """A caller's environment: an empty CONVEYOR_HOME of its own (nothing local to read)
    and its own config folder for `conveyor login`'s credentials."""
    env = {**home_env(tmp_path / "client-home"), "COLUMNS": "200", "NO_COLOR": "1"}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    for name in ("CONVEYOR_URL", "CONVEYOR_TOKEN", "CONVEYOR_DEBUG"):
        env.pop(name, None)
    return env


def _run_id(output: str) -> str:
    found = re.search(r"run ([0-9a-f]{32}) ", output)
    assert found, output
    return found.group(1)


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


@pytest.mark.slow
def test_run_list_logs_and_rerun_against_a_server_with_a_token(
    server: Server, client_env: dict[str, str], tmp_path: Path
) -> None:
    remote = ("--url", server.url, "--token", server.token)

    done = conveyor(client_env, *remote, "run", "hello", "--echo")
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "hello: running 2 tasks" in done.stdout
    assert "shouting 5\n" in done.stdout  # --echo: the task's own output
    assert re.search(r"✓ shout", done.stdout), done.stdout
    assert re.search(r"run [0-9a-f]{32} success in .*: 2 success", done.stdout), done.stdout
    hello = _run_id(done.stdout)

    failed = conveyor(client_env, *remote, "run", "failing")
    assert failed.returncode == 1, (failed.stdout, failed.stderr)
    assert "boom: ValueError: bad value 6" in failed.stdout
    assert "traceback: conveyor logs" in failed.stdout
    failing = _run_id(failed.stdout)

    listed = conveyor(client_env, *remote, "runs", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split()[:3] for line in listed.stdout.splitlines()]
    assert rows[0] == ["RUN", "JOB", "STATUS"]
    newest_first = [failing[:8], "failing", "failure"], [hello[:8], "hello", "success"]
    assert rows.index(newest_first[0]) < rows.index(newest_first[1])
    as_json = conveyor(client_env, *remote, "runs", "list", "--json", "--job", "hello")
    assert [r["id"] for r in json.loads(as_json.stdout)] == [hello]
    older = conveyor(client_env, *remote, "runs", "list", "--before", failing[:8], "-n", "1")
    assert [line.split()[0] for line in older.stdout.splitlines()[1:]] == [hello[:8]]

    shown = conveyor(client_env, *remote, "runs", "show", failing[:8])
    assert shown.returncode == 0, shown.stderr
    assert f"run {failing}  failure" in shown.stdout
    assert re.search(r"boom\s+failure\s+1\s+.*ValueError: bad value 6", shown.stdout)

    logs = conveyor(client_env, *remote, "logs", hello[:8])
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout == "== shout ==\nshouting 5\n"
    task_log = conveyor(client_env, *remote, "logs", failing, "--task", "boom", "--stderr")
    assert "ValueError: bad value 6" in task_log.stdout
    followed = conveyor(client_env, *remote, "logs", hello, "--task", "shout", "--follow")
    assert followed.stdout == "shouting 5\n"

    again = conveyor(client_env, *remote, "rerun", failing[:8])
    assert again.returncode == 1, (again.stdout, again.stderr)
    assert "failing: running 3 tasks" in again.stdout
    assert "2 reused, 1 failure" in again.stdout
    assert "boom: ValueError: bad value 6" in again.stdout
    rerun = _run_id(again.stdout)
    assert rerun != failing
    assert (
        json.loads(conveyor(client_env, *remote, "runs", "show", rerun, "--json").stdout)[
            "parent_run_id"
        ]
        == failing
    )
    full = conveyor(client_env, *remote, "rerun", hello, "--full")
    assert full.returncode == 0, (full.stdout, full.stderr)
    assert "2 success" in full.stdout

    # The server knows who did it: each run records the token's user, and each action
    # has one audit entry naming them.
    actor = f"alice (token {server.token.split('_')[1]})"
    shown_json = json.loads(conveyor(client_env, *remote, "runs", "show", rerun, "--json").stdout)
    assert shown_json["launched_by"] == actor
    instance = Instance.at(server.home)
    try:
        entries = instance.audit.entries(actor=actor, limit=1000)
    finally:
        instance.close()
    full_id = _run_id(full.stdout)
    mine = {hello, failing, rerun, full_id}
    assert sorted((e.action, e.target) for e in entries if e.target in mine) == sorted(
        [("launch", hello), ("launch", failing), ("rerun", rerun), ("rerun", full_id)]
    )

    # Nothing of it was read from, or written to, the caller's own instance.
    assert not (tmp_path / "client-home").exists()


@pytest.mark.slow
def test_the_environment_names_the_server_and_detach_trigger_backfill_schedules_cancel(
    server: Server, client_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**client_env, "CONVEYOR_URL": server.url, "CONVEYOR_TOKEN": server.token}
    detached = conveyor(env, "run", "hello", "--detach", "-t", "team=data")
    assert detached.returncode == 0, detached.stderr
    rid = detached.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", rid), detached.stdout
    assert f"queued on {server.url}" in detached.stderr

    def ended() -> bool:
        shown = json.loads(conveyor(env, "runs", "show", rid, "--json").stdout)
        return bool(shown["status"] == "success" and shown["tags"]["team"] == "data")

    wait_until(ended, 90, "the detached run to succeed on the server")
    canceled = conveyor(env, "runs", "cancel", rid[:8])
    assert canceled.stdout.strip() == f"run {rid} had already ended: success"

    triggered = conveyor(env, "trigger", "sliced")
    assert triggered.returncode == 0, triggered.stderr
    ids = triggered.stdout.split()
    assert len(ids) == 2
    partitions = {
        json.loads(conveyor(env, "runs", "show", i, "--json").stdout)["partition"] for i in ids
    }
    assert partitions == {"eu", "us"}

    backfilled = conveyor(
        env, "backfill", "hourly", "--start", "2026-01-01T00:00", "--end", "2026-01-01T03:00"
    )
    assert backfilled.returncode == 0, backfilled.stderr
    assert (
        backfilled.stdout.splitlines()[0]
        == "hourly: 3 intervals, 3 runs queued, 0 already queued or done"
    )
    assert backfilled.stdout.splitlines()[1].startswith("backfill ")

    listed = conveyor(env, "schedules", "list")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.split()[:1] == ["hourly"])
    assert "0 * * * *" in row
    assert "UTC" in row
    as_json = json.loads(conveyor(env, "schedules", "list", "--json").stdout)
    assert [s["job_name"] for s in as_json] == ["hourly"]

    backfill_id = backfilled.stdout.splitlines()[1].split()[1]
    instance = Instance.at(server.home)
    try:
        entries = instance.audit.entries(actor=f"alice (token {server.token.split('_')[1]})")
    finally:
        instance.close()
    mine = {rid, *ids, backfill_id}
    assert sorted((e.action, e.target) for e in entries if e.target in mine) == sorted(
        [
            ("launch", rid),
            ("cancel", rid),
            *(("launch", i) for i in ids),
            ("backfill", backfill_id),
        ]
    )
    assert not (tmp_path / "client-home").exists()


@pytest.mark.slow
def test_bad_expired_revoked_and_missing_tokens_are_refused_in_one_line(
    server: Server, client_env: dict[str, str]
) -> None:
    for token, word in (
        (server.expired, "expired"),
        (server.revoked, "revoked"),
        ("cvt_0123456789ab_not-a-real-secret", "refused by"),
    ):
        line = _one_line_error(
            conveyor(client_env, "--url", server.url, "--token", token, "runs", "list")
        )
        assert f"token {token.split('_')[1]} {word}" in line, line
        assert "conveyor tokens create" in line
        assert f"conveyor login {server.url}" in line
    line = _one_line_error(conveyor(client_env, "--url", server.url, "run", "hello"))
    assert f"conveyor login {server.url}" in line
    assert "CONVEYOR_TOKEN" in line
    # A viewer may read but not launch: 403, said in one line.
    line = _one_line_error(
        conveyor(client_env, "--url", server.url, "--token", server.viewer, "run", "hello")
    )
    assert "refused" in line, line
    # A run that is not there: the server's 404, in one line.
    line = _one_line_error(
        conveyor(
            client_env, "--url", server.url, "--token", server.token, "runs", "show", "abcdef12"
        )
    )
    assert "abcdef12" in line


@pytest.mark.slow
def test_login_stores_the_token_with_0600_and_later_commands_use_it(
    server: Server, client_env: dict[str, str], tmp_path: Path
) -> None:
    done = subprocess.run(
        [*CONVEYOR, "login", server.url + "/", "--token-stdin"],
        env=client_env,
        input=server.token + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"signed in to {server.url} as alice (operator)"
    path = tmp_path / "config" / "conveyor" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    stored = json.loads(path.read_text())
    assert stored == {"default": server.url, "servers": {server.url: {"token": server.token}}}

    listed = conveyor(client_env, "runs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert isinstance(json.loads(listed.stdout), list)
    assert not (tmp_path / "client-home").exists()
    # --local leaves the server aside: the local instance (empty) answers.
    local = conveyor(client_env, "--local", "runs", "list")
    assert local.returncode == 0, local.stderr
    assert "no runs yet" in local.stdout

    out = conveyor(client_env, "logout")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"signed out of {server.url}"
    assert f"conveyor tokens revoke {server.token.split('_')[1]}" in out.stderr
    assert json.loads(path.read_text()) == {"default": None, "servers": {}}
    again = conveyor(client_env, "logout")
    assert again.stdout.strip() == "not signed in to any server: nothing to forget"


@pytest.mark.slow
def test_login_refuses_a_bad_token_and_stores_nothing(
    server: Server, client_env: dict[str, str], tmp_path: Path
) -> None:
    done = subprocess.run(
        [*CONVEYOR, "login", server.url, "--token-stdin"],
        env=client_env,
        input=server.revoked,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "revoked: make a new one" in _one_line_error(done)
    assert not (tmp_path / "config").exists()


def test_an_unreachable_server_is_one_line_naming_its_url(client_env: dict[str, str]) -> None:
    url = "http://127.0.0.1:9"  # the discard port: nothing listens there
    line = _one_line_error(conveyor(client_env, "--url", url, "--token", "cvt_a_b", "runs", "list"))
    assert f"cannot reach the Conveyor server at {url}" in line


def test_a_workspace_file_on_a_server_is_a_usage_error(client_env: dict[str, str]) -> None:
    url = ("--url", "http://127.0.0.1:9")
    for args in (
        ("run", "pipes.py", "hello"),
        ("run", "-m", "pipes", "hello"),
        ("trigger", "pipes.py", "hello"),
        ("backfill", "pipes.py", "hello"),
        ("schedules", "list", "pipes.py"),
    ):
        done = conveyor(client_env, *url, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert "--local" in done.stderr, done.stderr
    done = conveyor(client_env, *url, "runs", "delete", "abcd1234", "--yes")
    assert done.returncode == 2
    assert "--local" in done.stderr


def test_login_refuses_what_is_not_a_token_or_a_url(client_env: dict[str, str]) -> None:
    def login(url: str, token: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CONVEYOR, "login", url, "--token-stdin"],
            env=client_env,
            input=token,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert "not an API token" in _one_line_error(login("http://127.0.0.1:9", "hunter2"))
    assert "no token given" in _one_line_error(login("http://127.0.0.1:9", "\n"))
    assert "not a server's URL" in _one_line_error(login("127.0.0.1:3000", "cvt_a_b"))
    no_tty = subprocess.run(
        [*CONVEYOR, "login", "http://127.0.0.1:9"],
        env=client_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert no_tty.returncode == 2
    assert "--token-stdin" in no_tty.stderr


# -- the parsers, in process -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["", "127.0.0.1:3000", "ftp://host", "http://", "https:///path", "http://h/?q=1", "http://h#x"],
)
def test_server_url_refuses_what_is_not_a_server_url(text: str) -> None:
    with pytest.raises(ConfigError, match="URL"):
        server_url(text)


def test_server_url_keeps_scheme_host_and_path_without_a_trailing_slash() -> None:
    assert server_url(" https://c.example.com/ ") == "https://c.example.com"
    assert server_url("http://127.0.0.1:3000/conveyor/") == "http://127.0.0.1:3000/conveyor"


def test_remote_of_takes_options_then_environment_then_the_stored_default() -> None:
    stored = {
        "default": "https://a.example",
        "servers": {
            "https://a.example": {"token": "cvt_a_1"},
            "https://b.example": {"token": "cvt_b_2"},
        },
    }
    assert remote_of(env={}, credentials=stored) == Remote("https://a.example", "cvt_a_1")
    assert remote_of("https://b.example/", env={}, credentials=stored) == Remote(
        "https://b.example", "cvt_b_2"
    )
    env = {"CONVEYOR_URL": "https://b.example", "CONVEYOR_TOKEN": "cvt_env_3"}
    assert remote_of(env=env, credentials=stored) == Remote("https://b.example", "cvt_env_3")
    assert remote_of(token="cvt_opt_4", env=env, credentials=stored) == Remote(
        "https://b.example", "cvt_opt_4"
    )
    assert remote_of("https://c.example", env={}, credentials=stored) == Remote(
        "https://c.example", None
    )
    assert remote_of(local=True, env=env, credentials=stored) is None
    assert remote_of(env={}, credentials={"default": None, "servers": {}}) is None
    with pytest.raises(ConfigError, match="needs a server"):
        remote_of(token="cvt_x_y", env={}, credentials={"default": None, "servers": {}})
    # A token in the environment without a server leaves commands local.
    nowhere: dict[str, Any] = {"default": None, "servers": {}}
    assert remote_of(env={"CONVEYOR_TOKEN": "cvt_x_y"}, credentials=nowhere) is None
    with pytest.raises(ConfigError, match="not both"):
        remote_of("https://a.example", local=True, env={})


@pytest.mark.parametrize(
    "text",
    [
        "{",
        "[]",
        '{"servers": []}',
        '{"servers": {"https://a": "cvt_a_b"}}',
        '{"servers": {"https://a": {}}}',
    ],
)
def test_a_credentials_file_not_written_by_login_is_an_error_naming_it(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "credentials.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_credentials(path)


def test_credentials_are_written_0600_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "conveyor" / "credentials.json"
    old = os.umask(0)
    try:
        save_credentials(
            {"default": "https://a", "servers": {"https://a": {"token": "cvt_a_b"}}}, path
        )
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_credentials(path)["default"] == "https://a"
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]
    assert load_credentials(tmp_path / "missing.json") == {"default": None, "servers": {}}


def test_the_credentials_file_lives_under_xdg_config_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert credentials_path() == tmp_path / "conveyor" / "credentials.json"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert credentials_path() == tmp_path / "home" / ".config" / "conveyor" / "credentials.json"


@pytest.mark.parametrize(
    ("token", "token_id"),
    [
        ("cvt_83e5596d2805_secret", "83e5596d2805"),
        ("cvt_nosecret", None),
        ("abc", None),
        ("cvt__x", None),
    ],
)
def test_token_id_reads_the_id_of_a_token(token: str, token_id: str | None) -> None:
    assert token_id_of(token) == token_id


def test_the_global_options_are_documented_in_help() -> None:
    from conveyor.cli.main import cli

    text = cli.get_help(click.Context(cli))
    assert "--url URL" in text
    assert "--token TOKEN" in text
    assert "--local" in text
