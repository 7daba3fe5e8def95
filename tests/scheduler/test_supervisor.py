"""The workload supervisor on real processes: starting, restarting after SIGKILL, crash
loops that cost little, stopping, memory limits, and adoption by a new daemon.

Every process started here is killed in teardown by the pid the store recorded (its
process group: services run in sessions of their own)."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from conveyor.errors import NotFoundError
from conveyor.scheduler.supervisor import Supervisor
from conveyor.services import url
from conveyor.storage.instance import Instance
from conveyor.storage.workloads import WorkloadRecord
from conveyor.workspace import load_file
from tests.commands import CONVEYOR, conveyor, home_env
from tests.waiting import wait_until

HERE = Path(__file__).parent
ECHO = HERE / "echo_service.py"
CRASH = HERE / "crash_service.py"


class Groups:
    """Process groups to kill at the end of a test (by pid, never by name)."""

    def __init__(self) -> None:
        self.pids: set[int] = set()
        self.daemons: list[subprocess.Popen[bytes]] = []

    def note(self, record: WorkloadRecord | None) -> WorkloadRecord | None:
        if record is not None and record.pid is not None:
            self.pids.add(record.pid)
        return record

    def daemon(self, workspace: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            p = subprocess.Popen(
                [*CONVEYOR, "daemon", str(workspace)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=workspace.parent,
            )
        self.daemons.append(p)
        return p

    def kill_all(self) -> None:
        for p in self.daemons:
            if p.poll() is None:
                p.kill()
            p.wait(10)
        for pid in self.pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


@pytest.fixture
def groups() -> Iterator[Groups]:
    g = Groups()
    yield g
    g.kill_all()


def _get(address: str, path: str) -> str | None:
    try:
        with urllib.request.urlopen(address + path, timeout=1) as r:
            return str(r.read().decode())
    except OSError:
        return None


def _serving(instance: Instance, name: str, groups: Groups) -> WorkloadRecord | None:
    r = groups.note(instance.workloads.get(name))
    if r is None or r.state != "running" or r.port is None:
        return None
    return r if _get(f"http://127.0.0.1:{r.port}", "/pid") == str(r.pid) else None


def _cpu(pids: list[int]) -> float:
    """CPU seconds used so far by these processes and their children."""
    total = 0.0
    for pid in pids:
        try:
            p = psutil.Process(pid)
            procs = [p, *p.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for q in procs:
            try:
                t = q.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.NoSuchProcess:
                continue
    return total


# -- the lease ------------------------------------------------------------------------------


def test_one_supervisor_holds_a_workload_and_a_new_one_takes_over_after_it() -> None:
    store = Instance.ephemeral().workloads
    store.register("svc", "service", {})
    first = store.claim("svc", "a", 0.3)
    assert first is not None
    assert store.claim("svc", "b") is None
    assert store.renew("svc", "a", first, 0.3)

    second = wait_until(lambda: store.claim("svc", "b"), 5, "the lease to run out")
    assert second > first
    assert not store.renew("svc", "a", first)
    assert not store.update("svc", first, state="running")
    assert store.update("svc", second, state="running")

    assert store.claim("svc", "c", take_from="a") is None  # b holds it, not a
    third = store.claim("svc", "c", take_from="b")
    assert third is not None
    assert third > second
    assert not store.release("svc", "b", second)
    assert store.release("svc", "c", third)
    assert store.claim("svc", "d") == third + 1
    assert store.claim("nothing", "d") is None


# -- in one process: the supervisor called pass by pass -----------------------------------


def _supervisor(tmp_path: Path, workspace: Path) -> tuple[Supervisor, Instance]:
    instance = Instance.at(tmp_path / "home")
    return Supervisor(load_file(workspace), instance, "test:1:x", "testhost"), instance


def test_a_service_starts_with_its_port_base_path_and_env_and_serves(
    tmp_path: Path, groups: Groups
) -> None:
    sup, instance = _supervisor(tmp_path, ECHO)

    def up() -> WorkloadRecord | None:
        sup.supervise()
        return _serving(instance, "echo", groups)

    r = wait_until(up, 30, "the echo service to serve")
    assert r.host == "testhost"
    assert r.health == "ok"
    assert r.restarts == 0
    assert r.pid_started == pytest.approx(psutil.Process(r.pid).create_time(), abs=0.5)
    assert url("echo", instance=instance) == f"http://127.0.0.1:{r.port}"
    assert r.pid is not None
    assert os.getpgid(r.pid) == r.pid  # a session of its own
    env = psutil.Process(r.pid).environ()
    assert env["PORT"] == str(r.port)
    assert env["CONVEYOR_BASE_PATH"] == "/apps/echo"
    assert env["GREETING"] == "hi"
    logs = tmp_path / "home" / "workloads" / "echo"
    wait_until(lambda: "echo serving" in (logs / "stdout.log").read_text(), 10, "its stdout")
    assert "echo stderr line" in (logs / "stderr.log").read_text()

    # Stopped when asked: SIGTERM to its group, then "stopped".
    instance.workloads.set_desired("echo", "stopped")

    def stopped() -> bool:
        sup.supervise()
        rec = instance.workloads.require("echo")
        return rec.state == "stopped" and rec.pid is None

    wait_until(stopped, 20, "the service to stop")
    assert not psutil.pid_exists(r.pid) or psutil.Process(r.pid).status() == "zombie"
    with pytest.raises(NotFoundError, match=r"not running.*services start echo"):
        url("echo", instance=instance)


def test_url_of_an_unknown_workload_is_a_clear_error() -> None:
    with pytest.raises(NotFoundError, match="no workload 'nope'"):
        url("nope", instance=Instance.ephemeral())


def test_a_service_over_its_memory_limit_is_killed_and_restarted(
    tmp_path: Path, groups: Groups
) -> None:
    ws = tmp_path / "hog.py"
    ws.write_text(
        textwrap.dedent(
            """
            import time
            from conveyor import Service

            def serve(port):
                ballast = bytearray(300 * 2**20)  # touched: resident
                ballast[::4096] = b"x" * len(ballast[::4096])
                time.sleep(60)

            hog = Service("hog", serve, memory="150Mi")
            """
        )
    )
    sup, instance = _supervisor(tmp_path, ws)

    def killed() -> WorkloadRecord | None:
        sup.supervise()
        r = groups.note(instance.workloads.get("hog"))
        return r if r is not None and r.last_error and "memory" in r.last_error else None

    r = wait_until(killed, 30, "the memory limit to kill it")
    assert "over its limit 150 MiB" in (r.last_error or "")
    assert r.state in ("backoff", "starting")


def test_a_workload_gone_from_the_workspace_is_stopped_and_removed(
    tmp_path: Path, groups: Groups
) -> None:
    sup, instance = _supervisor(tmp_path, ECHO)

    def up() -> WorkloadRecord | None:
        sup.supervise()
        return _serving(instance, "echo", groups)

    r = wait_until(up, 30, "the echo service to serve")
    sup.workspace.workloads.clear()  # as after a reload without it
    assert r.pid is not None

    def removed() -> bool:
        sup.supervise()
        return instance.workloads.get("echo") is None

    wait_until(removed, 20, "the service to be removed")
    wait_until(
        lambda: not psutil.pid_exists(r.pid) or psutil.Process(r.pid).status() == "zombie",
        5,
        "its process to end",
    )


# -- the daemon, as a real process --------------------------------------------------------


@pytest.mark.slow
def test_a_killed_service_answers_again_within_5s_and_a_new_daemon_adopts_it(
    tmp_path: Path, groups: Groups
) -> None:
    """Acceptance 2 (restart after SIGKILL) and 6 (adoption without a second copy)."""
    env = home_env(tmp_path / "home")
    instance = Instance.at(tmp_path / "home")
    first = groups.daemon(ECHO, env, tmp_path / "daemon1.log")
    r = wait_until(lambda: _serving(instance, "echo", groups), 60, "the echo service")
    assert r.pid is not None

    os.kill(r.pid, signal.SIGKILL)
    killed_at = time.monotonic()

    def again() -> WorkloadRecord | None:
        # Answering is what counts (its state turns "running" a look later).
        new = groups.note(instance.workloads.get("echo"))
        if new is None or new.pid in (None, r.pid) or new.port is None:
            return None
        return new if _get(f"http://127.0.0.1:{new.port}", "/pid") == str(new.pid) else None

    back = wait_until(again, 5, "the killed service to answer again")
    assert time.monotonic() - killed_at < 5
    assert back.restarts == 1
    assert back.last_error == "killed by SIGKILL"

    # Acceptance 6: the daemon dies; the service goes on; a new daemon adopts it.
    first.kill()
    first.wait(10)
    assert _get(f"http://127.0.0.1:{back.port}", "/pid") == str(back.pid)
    groups.daemon(ECHO, env, tmp_path / "daemon2.log")
    adopted_from = time.monotonic()

    def adopted() -> WorkloadRecord | None:
        rec = instance.workloads.require("echo")
        return rec if rec.owner is not None and rec.token > back.token else None

    rec = wait_until(adopted, 10, "the new daemon to adopt the service")
    assert time.monotonic() - adopted_from < 10
    assert rec.pid == back.pid
    assert "adopted pid" in (tmp_path / "daemon2.log").read_text()
    # Still the same one process answering, a few supervisor passes later.
    wait_until(
        lambda: "adopted" in (tmp_path / "daemon2.log").read_text(), 5, "the adoption to be logged"
    )
    for _ in range(3):
        assert _get(f"http://127.0.0.1:{back.port}", "/pid") == str(back.pid)
    copies = [
        p
        for p in psutil.process_iter(["cmdline"])
        if p.info["cmdline"]
        and str(ECHO) in " ".join(p.info["cmdline"])
        and "echo" in p.info["cmdline"]
    ]
    assert [p.pid for p in copies] == [back.pid]


@pytest.mark.slow
def test_a_service_that_exits_at_once_crash_loops_cheaply_with_its_last_lines_shown(
    tmp_path: Path, groups: Groups
) -> None:
    """Acceptance 2: crash_loop, its last log lines, under 5% of a core."""
    env = home_env(tmp_path / "home")
    instance = Instance.at(tmp_path / "home")
    daemon = groups.daemon(CRASH, env, tmp_path / "daemon.log")

    def looping() -> WorkloadRecord | None:
        r = groups.note(instance.workloads.get("crasher"))
        return r if r is not None and r.state == "crash_loop" else None

    # Backoff 1 + 2 + 4 + 8 s before the fifth failure; from then on, once a minute.
    r = wait_until(looping, 60, "the service to crash-loop")
    assert r.last_exit_code == 3
    assert r.restarts >= 4
    assert r.next_start_at is not None
    assert r.next_start_at - time.time() > 50

    before, started = _cpu([daemon.pid]), time.monotonic()
    wait_until(lambda: time.monotonic() - started >= 8, 15, "eight seconds of crash loop")
    used = (_cpu([daemon.pid]) - before) / (time.monotonic() - started)
    assert used < 0.05, f"the daemon used {used:.1%} of a core while the service crash-looped"

    listed = conveyor(env, "services", "list")
    assert listed.returncode == 0, listed.stderr
    assert "crash_loop" in listed.stdout
    assert "exited with code 3" in listed.stderr
    logs = conveyor(env, "services", "logs", "crasher", "--stderr", "--lines", "2")
    assert logs.returncode == 0, logs.stderr
    lines = logs.stdout.splitlines()
    assert len(lines) == 2
    assert all("no model file" in line for line in lines)


def test_a_service_that_fails_its_health_check_is_restarted(tmp_path: Path, groups: Groups) -> None:
    ws = tmp_path / "sickly.py"
    ws.write_text(
        textwrap.dedent(
            """
            from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
            from conveyor import Service

            class Handler(BaseHTTPRequestHandler):
                calls = 0

                def do_GET(self):
                    Handler.calls += 1
                    self.send_response(200 if Handler.calls == 1 else 500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def serve(port):
                ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()

            sickly = Service("sickly", serve, health="/health")
            """
        )
    )
    sup, instance = _supervisor(tmp_path, ws)

    def restarted() -> WorkloadRecord | None:
        sup.supervise()
        r = groups.note(instance.workloads.get("sickly"))
        return r if r is not None and r.last_error and "health" in r.last_error else None

    r = wait_until(restarted, 40, "the failing health checks to restart it")
    assert r.last_error == "killed: health check /health failed 3 times (HTTP 500)"


def test_a_new_supervisor_adopts_the_same_code_and_replaces_changed_code(
    tmp_path: Path, groups: Groups
) -> None:
    ws = tmp_path / "echo_copy.py"
    ws.write_text(ECHO.read_text())
    instance = Instance.at(tmp_path / "home")

    def serving(sup: Supervisor) -> WorkloadRecord | None:
        sup.supervise()
        return _serving(instance, "echo", groups)

    first = Supervisor(load_file(ws), instance, "test:1:a", "testhost")
    r = wait_until(lambda: serving(first), 30, "the echo service")
    first.close()  # as a daemon stopping: the service goes on

    same = Supervisor(load_file(ws), instance, "test:1:b", "testhost")
    adopted = wait_until(lambda: serving(same), 10, "the adoption")
    assert adopted.pid == r.pid
    assert adopted.owner == "test:1:b"
    same.close()

    ws.write_text(ECHO.read_text() + "\n# changed\n")
    changed = Supervisor(load_file(ws), instance, "test:1:c", "testhost")

    def replaced() -> WorkloadRecord | None:
        new = serving(changed)
        return new if new is not None and new.pid != r.pid else None

    new = wait_until(replaced, 30, "the changed code to replace the old process")
    assert new.restarts == 0  # replaced, not failed
    assert not psutil.pid_exists(r.pid) or psutil.Process(r.pid).status() == "zombie"


def test_an_app_runs_under_its_framework_server_at_its_base_path(
    tmp_path: Path, groups: Groups
) -> None:
    (tmp_path / "api.py").write_text(
        textwrap.dedent(
            """
            from fastapi import FastAPI

            app = FastAPI()

            @app.get("/ping")
            def ping():
                return {"pong": True}
            """
        )
    )
    ws = tmp_path / "apps_ws.py"
    ws.write_text("from conveyor import App\napi = App('api', 'api:app', framework='fastapi')\n")
    sup, instance = _supervisor(tmp_path, ws)

    def up() -> WorkloadRecord | None:
        sup.supervise()
        r = groups.note(instance.workloads.get("api"))
        return r if r is not None and r.state == "running" else None

    r = wait_until(up, 60, "the app to run")
    assert r.kind == "app"
    answer = wait_until(
        lambda: _get(f"http://127.0.0.1:{r.port}", "/apps/api/ping"), 10, "the app to answer"
    )
    assert answer == '{"pong":true}'


def test_two_supervisors_run_one_copy_and_the_second_adopts_when_the_lease_runs_out(
    tmp_path: Path, groups: Groups
) -> None:
    instance = Instance.at(tmp_path / "home")
    a = Supervisor(load_file(ECHO), instance, "test:1:a", "testhost", lease=1.0)
    b = Supervisor(load_file(ECHO), instance, "test:2:b", "testhost", lease=1.0)

    def both() -> WorkloadRecord | None:
        a.supervise()
        b.supervise()
        return _serving(instance, "echo", groups)

    r = wait_until(both, 30, "the echo service")
    assert r.owner == "test:1:a"
    assert "echo" in a.held
    assert "echo" not in b.held
    for _ in range(3):
        both()
    assert groups.pids == {r.pid}  # one copy only

    # a stops renewing (a paused daemon): b takes the lease over and adopts the process.
    def taken() -> WorkloadRecord | None:
        b.supervise()
        rec = instance.workloads.require("echo")
        return rec if rec.owner == "test:2:b" else None

    rec = wait_until(taken, 10, "the lease to pass to b")
    assert rec.pid == r.pid
    assert rec.token > r.token
    a.supervise()  # a finds it lost the workload, and leaves the process alone
    assert "echo" not in a.held
    assert _serving(instance, "echo", groups) is not None
    assert instance.workloads.require("echo").pid == r.pid


def test_an_excel_addin_is_served_by_the_add_in_server(tmp_path: Path, groups: Groups) -> None:
    example = HERE.parent.parent / "examples" / "excel_addin.py"
    sup, instance = _supervisor(tmp_path, example)

    def up() -> WorkloadRecord | None:
        sup.supervise()
        r = groups.note(instance.workloads.get("pricer"))
        return r if r is not None and r.state == "running" and r.health == "ok" else None

    r = wait_until(up, 60, "the add-in to serve")
    assert r.kind == "addin"
    manifest = _get(f"http://127.0.0.1:{r.port}", "/apps/pricer/manifest.xml")
    assert manifest is not None
    assert "<OfficeApp" in manifest


def test_a_supervisor_closed_with_stop_stops_its_workloads(tmp_path: Path, groups: Groups) -> None:
    sup, instance = _supervisor(tmp_path, ECHO)

    def up() -> WorkloadRecord | None:
        sup.supervise()
        return _serving(instance, "echo", groups)

    r = wait_until(up, 30, "the echo service")
    assert r.pid is not None
    sup.close(stop=True)
    rec = instance.workloads.require("echo")
    assert (rec.state, rec.pid, rec.owner, rec.desired) == ("stopped", None, None, "running")
    assert not psutil.pid_exists(r.pid) or psutil.Process(r.pid).status() == "zombie"
