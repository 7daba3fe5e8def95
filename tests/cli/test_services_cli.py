"""``conveyor services``: list, start, stop, restart and logs, on records and log files
made here (the supervisor's own behaviour is tested in tests/scheduler/test_supervisor.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from conveyor.execution.workload_launch import rotate
from conveyor.storage.instance import Instance
from tests.cli.conftest import Cli


def _instance(tmp_path: Path) -> Instance:
    return Instance.at(tmp_path / "home")


def _running(instance: Instance, name: str = "pricer") -> None:
    store = instance.workloads
    store.register(name, "service", {"entrypoint": "m:serve"})
    token = store.claim(name, "elsewhere:1:x")
    assert token is not None
    assert store.update(
        name,
        token,
        state="running",
        host="h",
        pid=4242,
        port=8123,
        started_at=time.time() - 125,
        restarts=2,
        health="ok",
    )


def test_list_says_how_to_declare_one_when_there_are_none(cli: Cli) -> None:
    r = cli("services", "list")
    assert r.returncode == 0, r.stderr
    assert "no services or apps" in r.stdout
    assert "conveyor daemon" in r.stdout
    r = cli("services", "list", "--json")
    assert json.loads(r.stdout) == []


def test_list_shows_state_port_pid_restarts_uptime_and_health(cli: Cli, tmp_path: Path) -> None:
    _running(_instance(tmp_path))
    r = cli("services", "list")
    assert r.returncode == 0, r.stderr
    header, row = r.stdout.splitlines()
    assert header.split() == [
        "NAME",
        "KIND",
        "STATE",
        "PORT",
        "PID",
        "RESTARTS",
        "UPTIME",
        "HEALTH",
    ]
    cells = row.split()
    assert cells[:6] == ["pricer", "service", "running", "8123", "4242", "2"]
    assert cells[6].startswith("2m")
    assert cells[7] == "ok"
    (data,) = json.loads(cli("services", "list", "--json").stdout)
    assert data["name"] == "pricer"
    assert data["port"] == 8123
    assert data["restarts"] == 2
    assert 120 <= data["uptime"] < 200


def test_start_and_stop_set_what_is_asked_and_unknown_names_are_errors(
    cli: Cli, tmp_path: Path
) -> None:
    instance = _instance(tmp_path)
    _running(instance)
    r = cli("services", "stop", "pricer")
    assert r.returncode == 0, r.stderr
    assert instance.workloads.require("pricer").desired == "stopped"
    assert "(stop asked)" in cli("services", "list").stdout
    r = cli("services", "start", "pricer")
    assert r.returncode == 0, r.stderr
    assert instance.workloads.require("pricer").desired == "running"
    for command in ("start", "logs"):
        r = cli("services", command, "nope")
        assert r.returncode == 2, (command, r.stdout, r.stderr)
        assert "no workload 'nope'" in r.stderr
        assert "conveyor services list" in r.stderr


def test_restart_without_a_daemon_gives_up_and_leaves_it_as_asked(cli: Cli, tmp_path: Path) -> None:
    instance = _instance(tmp_path)
    _running(instance)
    r = cli("services", "restart", "pricer", "--wait", "0.5")
    assert r.returncode == 1
    assert "did not stop within 0.5s" in r.stderr
    assert "is a daemon running?" in r.stderr
    assert instance.workloads.require("pricer").desired == "running"
    r = cli("services", "restart", "pricer", "--wait", "-1")
    assert r.returncode == 2
    assert "-1" in r.stderr


def test_restart_of_a_stopped_workload_asks_it_to_run(cli: Cli, tmp_path: Path) -> None:
    instance = _instance(tmp_path)
    instance.workloads.register("pricer", "service", {}, desired="stopped")
    r = cli("services", "restart", "pricer")
    assert r.returncode == 0, r.stderr
    assert instance.workloads.require("pricer").desired == "running"


def test_logs_print_the_last_lines_of_stdout_or_stderr_across_a_rotation(
    cli: Cli, tmp_path: Path
) -> None:
    instance = _instance(tmp_path)
    _running(instance)
    r = cli("services", "logs", "pricer")
    assert r.returncode == 0
    assert r.stdout == ""
    assert "nothing on its stdout yet" in r.stderr
    folder = tmp_path / "home" / "workloads" / "pricer"
    folder.mkdir(parents=True)
    (folder / "stdout.log").write_text("".join(f"out {i}\n" for i in range(100)))
    (folder / "stderr.log").write_text("Traceback\nValueError: no model\n")
    assert rotate(folder / "stdout.log", max_bytes=10, keep=2)
    assert (folder / "stdout.log").read_text() == ""
    with open(folder / "stdout.log", "a") as f:
        f.write("out 100\n")

    r = cli("services", "logs", "pricer", "--lines", "3")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["out 98", "out 99", "out 100"]
    r = cli("services", "logs", "pricer", "--stderr", "-n", "1")
    assert r.stdout.splitlines() == ["ValueError: no model"]
    for bad in ("0", "-2", "many"):
        r = cli("services", "logs", "pricer", "--lines", bad)
        assert r.returncode == 2, bad
        assert "--lines" in r.stderr


def test_rotation_keeps_a_few_files_and_leaves_small_ones(tmp_path: Path) -> None:
    log = tmp_path / "stdout.log"
    assert not rotate(log, max_bytes=10)  # none yet
    for i in range(4):
        log.write_text(f"generation {i}\n" * 5)
        assert rotate(log, max_bytes=10, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "stdout.log",
        "stdout.log.1",
        "stdout.log.2",
    ]
    assert (tmp_path / "stdout.log.1").read_text().startswith("generation 3")
    assert (tmp_path / "stdout.log.2").read_text().startswith("generation 2")
    log.write_text("small\n")
    assert not rotate(log, max_bytes=10, keep=2)


def test_services_is_a_command_of_conveyor(cli: Cli) -> None:
    r = cli("--help")
    assert "services" in r.stdout
    assert "List, start, stop and restart services" in r.stdout
