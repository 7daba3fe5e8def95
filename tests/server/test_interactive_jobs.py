"""Interactive jobs under a real ``conveyor dev`` (acceptance 3 of issue 13): not running
until their URL is requested; that first request is answered (it waits while the job
starts); each start is a run with its logs; stopped after the idle timeout (3 s here);
an MCP job answers ``tools/list`` from the ``mcp`` client package at
``/apps/<name>/mcp``; a job that fails at start answers 503 with its error, and the
next request tries again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import textwrap
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import pytest

from conveyor.execution.workload_launch import same_process
from tests.cli.test_dev import STOP, Dev, _family
from tests.commands import CONVEYOR, conveyor, home_env
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

WORKSPACE = '''
import http.server
import os
import sys

from conveyor import interactive


@interactive(idle_timeout="3s")
def hello(run_context):
    """A page for people, served by the function itself."""
    base = run_context.base_path

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"hello from {run_context.name} at {self.path}".encode()
            self.send_response(200 if self.path.startswith(base) else 404)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            print("served", self.path, flush=True)

    print(f"hello: serving run {run_context.run_id} on port {run_context.port}", flush=True)
    http.server.HTTPServer((run_context.host, run_context.port), Page).serve_forever()


@interactive(interface="mcp", idle_timeout="3s")
def agent():
    """Tools for agents."""
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("agent")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    @server.tool()
    def pid() -> int:
        """The serving process's pid."""
        return os.getpid()

    return server


@interactive(expose={"manual": False, "tags": ["demo"]})
def on_request_only(run_context):
    where = (run_context.host, run_context.port)
    http.server.HTTPServer(where, http.server.SimpleHTTPRequestHandler).serve_forever()


@interactive(execute={"timeout": "60m"})
def notebook(run_context):
    """Runs until stopped: no idle timeout."""
    where = (run_context.host, run_context.port)
    http.server.HTTPServer(where, http.server.SimpleHTTPRequestHandler).serve_forever()


@interactive(idle_timeout="3s")
def broken(run_context):
    print("broken: about to fail", file=sys.stderr, flush=True)
    raise RuntimeError("no database for the broken job")
'''


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    folder = tmp_path_factory.mktemp("interactive")
    (folder / "ws").mkdir()
    (folder / "ws" / "jobs_interactive.py").write_text(textwrap.dedent(WORKSPACE))
    home = folder / "home"
    log = folder / "dev.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*CONVEYOR, "dev", str(folder / "ws"), "--port", "0"],
            cwd=folder,
            env=home_env(home),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Dev(proc, log, home)
    try:
        yield running
    finally:
        family = _family(proc.pid)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(STOP)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(STOP)
        for p in family:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass


def workload(dev: Dev, name: str) -> dict[str, Any]:
    found: dict[str, Any] = dev.get(f"/api/workloads/{name}")
    return found


def runs_of(dev: Dev, name: str) -> list[dict[str, Any]]:
    page: dict[str, Any] = dev.get(f"/api/runs?job={name}")
    return list(page["runs"])


def supervised(dev: Dev, name: str) -> dict[str, Any] | None:
    """The workload once its supervisor holds it (it registered and claimed it)."""
    try:
        found = workload(dev, name)
    except AssertionError:
        return None  # not registered yet
    return found if found["supervised"] else None


def test_not_running_until_requested_then_answered_and_stopped_when_idle(dev: Dev) -> None:
    before = wait_until(lambda: supervised(dev, "hello"), 90, "the supervisor to hold hello")
    assert before["kind"] == "interactive"
    assert before["state"] == "stopped"
    assert before["desired"] == "stopped"
    assert before["pid"] is None
    assert before["port"] is None
    assert before["idle_timeout"] == 3.0
    assert runs_of(dev, "hello") == []

    # The first request starts it, waits for it and is answered.
    answer = httpx.get(f"{dev.url}/apps/hello/page?x=1", timeout=90)
    assert answer.status_code == 200, answer.text
    assert answer.text == "hello from hello at /apps/hello/page?x=1"
    serving = workload(dev, "hello")
    assert serving["state"] in ("running", "unhealthy")
    assert serving["pid"] is not None
    pid, run_id = serving["pid"], serving["run_id"]
    proc = psutil.Process(pid)
    (run,) = runs_of(dev, "hello")
    assert run["id"] == run_id
    assert run["status"] == "running"
    assert run["trigger"] == "request"
    # Its logs are the run's, while it serves.
    live = conveyor(home_env(dev.home), "logs", run_id)
    assert f"hello: serving run {run_id}" in live.stdout, live

    # 3 s without a request: stopped, its process gone, its run a success with its logs.
    def idle() -> dict[str, Any] | None:
        found = workload(dev, "hello")
        return found if found["state"] == "idle" else None

    stopped = wait_until(idle, 60, "hello to be stopped after its idle timeout", every=0.2)
    assert stopped["pid"] is None
    assert stopped["desired"] == "stopped"
    wait_until(lambda: not _alive(proc), 30, "hello's process to be gone")
    done = dev.get(f"/api/runs/{run_id}")
    assert done["status"] == "success", done
    logs = conveyor(home_env(dev.home), "logs", run_id)
    assert f"hello: serving run {run_id}" in logs.stdout
    assert "served /apps/hello/page" in logs.stdout

    # The next request starts it again: a second run.
    again = httpx.get(f"{dev.url}/apps/hello/", timeout=90)
    assert again.status_code == 200, again.text
    assert len(runs_of(dev, "hello")) == 2


def test_an_mcp_job_lists_its_tools_at_its_mcp_path(dev: Dev) -> None:
    wait_until(lambda: supervised(dev, "agent"), 90, "the supervisor to hold agent")
    assert workload(dev, "agent")["pid"] is None
    tools, total = asyncio.run(_list_and_add(f"{dev.url}/apps/agent/mcp"))
    assert tools == ["add", "pid"]
    assert total == 5
    serving = workload(dev, "agent")
    (run,) = runs_of(dev, "agent")
    assert run["id"] == serving["run_id"]
    assert run["trigger"] == "request"
    # Another site's page is refused by the proxy; a page that rebinds its own name to
    # the job's port is refused by the job (its Host is not the loopback the proxy sends).
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    accept = {"Accept": "application/json, text/event-stream"}
    cross = httpx.post(
        f"{dev.url}/apps/agent/mcp",
        json=call,
        headers={**accept, "Origin": "https://evil.example"},
        timeout=30,
    )
    assert cross.status_code == 403, cross.text
    rebound = httpx.post(
        f"http://127.0.0.1:{serving['port']}/apps/agent/mcp",
        json=call,
        headers={**accept, "Host": f"evil.example:{serving['port']}"},
        timeout=30,
    )
    assert rebound.status_code == 421, rebound.text


async def _list_and_add(url: str) -> tuple[list[str], int]:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with (
        streamable_http_client(url) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        listed = await session.list_tools()
        result = await session.call_tool("add", {"a": 2, "b": 3})
    text = result.content[0]
    return sorted(t.name for t in listed.tools), int(getattr(text, "text", "0"))


def test_a_job_that_fails_at_start_answers_503_with_its_error(dev: Dev) -> None:
    wait_until(lambda: supervised(dev, "broken"), 90, "the supervisor to hold broken")
    answer = httpx.get(f"{dev.url}/apps/broken/", timeout=90)
    assert answer.status_code == 503, answer.text
    assert "broken" in answer.json()["error"]
    found = workload(dev, "broken")
    assert found["state"] == "stopped"
    assert found["desired"] == "stopped"
    assert found["last_error"] == "exited with code 1"
    (run,) = runs_of(dev, "broken")
    assert run["status"] == "failure"
    errors = conveyor(home_env(dev.home), "logs", run["id"], "--stderr")
    assert "RuntimeError: no database for the broken job" in errors.stdout, errors
    # It is not started again by itself, only by the next request.
    again = httpx.get(f"{dev.url}/apps/broken/", timeout=90)
    assert again.status_code == 503
    assert len(runs_of(dev, "broken")) == 2


def _alive(proc: psutil.Process) -> bool:
    return same_process(proc.pid, proc.create_time()) is not None


def test_one_that_starts_only_on_request_refuses_a_manual_start(dev: Dev) -> None:
    wait_until(lambda: supervised(dev, "on_request_only"), 90, "the supervisor to hold it")
    refused = httpx.post(f"{dev.url}/api/workloads/on_request_only/start", timeout=30)
    assert refused.status_code == 409, refused.text
    assert "starts only when its URL" in refused.json()["error"]
    cli = conveyor(home_env(dev.home), "services", "start", "on_request_only")
    assert cli.returncode == 1
    assert "starts only when its URL /apps/on_request_only/ is requested" in cli.stderr
    page = httpx.get(f"{dev.url}/workloads", timeout=30).text
    assert "starts on request" in page
    assert workload(dev, "on_request_only")["desired"] == "stopped"


def test_started_by_hand_and_stopped_by_canceling_its_run(dev: Dev) -> None:
    wait_until(lambda: supervised(dev, "notebook"), 90, "the supervisor to hold notebook")
    started = httpx.post(f"{dev.url}/api/workloads/notebook/start", timeout=30)
    assert started.status_code == 200, started.text

    def serving() -> dict[str, Any] | None:
        found = workload(dev, "notebook")
        return found if found["state"] == "running" else None

    running = wait_until(serving, 90, "notebook to run")
    (run,) = runs_of(dev, "notebook")
    assert run["trigger"] == "manual"
    assert run["id"] == running["run_id"]
    proc = psutil.Process(running["pid"])
    canceled = conveyor(home_env(dev.home), "runs", "cancel", run["id"])
    assert canceled.returncode == 0, canceled.stderr

    def ended() -> dict[str, Any] | None:
        found: dict[str, Any] = dev.get(f"/api/runs/{run['id']}")
        return found if found["status"] in ("success", "failure", "canceled") else None

    assert wait_until(ended, 60, "notebook's run to end")["status"] == "canceled"
    wait_until(lambda: not _alive(proc), 30, "notebook's process to be gone")
    after = workload(dev, "notebook")
    assert after["state"] == "stopped"
    assert after["desired"] == "stopped"
