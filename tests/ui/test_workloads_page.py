"""The page ``/workloads`` in Chromium, over a real service kept up by the supervisor: it
is shown running, opens through the proxy, and stops from its button."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from conveyor.scheduler.supervisor import Supervisor
from conveyor.server.app import create_app
from conveyor.server.runner import bound_url, make_server
from conveyor.server.state import ServerState, WorkspaceHolder
from conveyor.storage.instance import Instance
from conveyor.workspace import load_file
from tests.ui.conftest import CHROMIUM, open_window
from tests.waiting import wait_until

ECHO = Path(__file__).resolve().parents[1] / "scheduler" / "echo_service.py"


@dataclass
class Supervised:
    url: str
    instance: Instance
    pids: set[int]


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Supervised]:
    """The UI (local mode) on a free port, and a supervisor in a thread keeping the echo
    service of ``tests/scheduler/echo_service.py`` up; its process group is killed at the
    end by the pids the store reported."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    instance = Instance.at(tmp_path / "home")
    holder = WorkspaceHolder(lambda: load_file(ECHO), str(ECHO))
    assert holder.reload() is None
    assert holder.workspace is not None
    sup = Supervisor(holder.workspace, instance, "ui-test:1:x", socket.gethostname())
    pids: set[int] = set()
    stop = threading.Event()

    def supervise() -> None:
        while not stop.is_set():
            sup.supervise()
            record = instance.workloads.get("echo")
            if record is not None and record.pid is not None:
                pids.add(record.pid)
            stop.wait(0.2)

    server = make_server(create_app(ServerState(instance, holder)), "127.0.0.1", 0)
    serving = threading.Thread(target=server.run, name="ui-test-server", daemon=True)
    keeper = threading.Thread(target=supervise, name="ui-test-supervisor", daemon=True)
    serving.start()
    keeper.start()
    try:
        url = wait_until(lambda: bound_url(server, "127.0.0.1"), 30, "the UI server to listen")
        assert url is not None
        yield Supervised(url, instance, pids)
    finally:
        stop.set()
        keeper.join(30)
        server.should_exit = True
        serving.join(30)
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        instance.close()


def test_a_running_service_is_shown_opened_and_stopped(
    browser: Browser, supervised: Supervised
) -> None:
    store = supervised.instance.workloads

    def running() -> bool:
        record = store.get("echo")
        return record is not None and record.state == "running" and record.health == "ok"

    wait_until(running, 60, "the echo service to run")
    with open_window(browser, supervised.url) as w:
        w.go("/workloads")
        row = w.page.locator("#workload-echo")
        expect(row.get_by_test_id("state")).to_have_text("running")
        expect(row).to_contain_text(str(store.require("echo").port))
        expect(w.page.get_by_role("link", name="Workloads")).to_have_attribute(
            "aria-current", "page"
        )
        w.shot("workloads")
        row.get_by_test_id("open").click()
        expect(w.page).to_have_url(supervised.url + "/apps/echo/")
        expect(w.page.locator("body")).to_have_text("ok")  # the service's own answer
        # Its bare text page names no icon, so Chromium asks for /favicon.ico, which
        # Conveyor does not serve: an error of the app's page, not of Conveyor's.
        w.page.wait_for_load_state("networkidle")
        w.errors[:] = [e for e in w.errors if not e.endswith("/favicon.ico)")]
        w.go("/workloads")
        w.page.locator("#workload-echo").get_by_test_id("stop").click()
        expect(w.page).to_have_url(supervised.url + "/workloads#workload-echo")
        wait_until(lambda: store.require("echo").state == "stopped", 30, "the service to stop")
        w.go("/workloads")
        expect(w.page.locator("#workload-echo").get_by_test_id("state")).to_have_text("stopped")
        w.shot("workloads-stopped")
