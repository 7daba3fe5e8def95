"""The examples' web workloads as ``make run`` serves them: ``conveyor dev examples`` starts
the FastAPI service and the Flask, Dash, Streamlit and Panel apps, and each answers
through the proxy at ``/apps/<name>/``; the three dashboards render in Chromium with
their callback (Dash) or WebSocket (Streamlit, Panel) traffic going through it too.

One ``conveyor dev`` serves the whole module (starting five web servers is the slow
part), on an instance of its own, with a few runs of the examples' jobs recorded
first for the dashboards to read.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from playwright.sync_api import Browser, WebSocket, expect

from tests.commands import CONVEYOR
from tests.ui.conftest import CHROMIUM, Window, open_window
from tests.waiting import wait_until

pytestmark = [
    pytest.mark.slow,
    # The first test also waits for `conveyor dev` and its five web servers to start.
    pytest.mark.timeout(600),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# The workloads examples/dashboards.py declares, and their kinds.
FIVE = {
    "pricing": "service",
    "hello-flask": "app",
    "dash-dashboard": "app",
    "streamlit-dashboard": "app",
    "panel-app": "app",
}
# Generous, for a busy 2-core machine: how fast they start is measured, not tested here.
START = 300
RUN = 120
STOP = 60


@dataclass
class Examples:
    """The running ``conveyor dev examples``: its URL, and every workload process it showed."""

    proc: subprocess.Popen[bytes]
    log: Path
    url: str = ""
    # pid -> start time of each workload process seen, to clean up what outlives dev.
    seen: dict[int, float] = field(default_factory=dict)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> None:
        assert self.proc.poll() is None, f"conveyor dev exited:\n{self.output()[-4000:]}"

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30, **kwargs)

    def workloads(self) -> dict[str, dict[str, Any]]:
        response = self.get("/api/workloads")
        assert response.status_code == 200, response.text
        listed = {w["name"]: w for w in response.json()}
        for w in listed.values():
            if w["pid"] is not None and w["pid"] not in self.seen:
                try:
                    self.seen[w["pid"]] = psutil.Process(w["pid"]).create_time()
                except psutil.NoSuchProcess:
                    pass
        return listed

    def run(self, job: str) -> str:
        launched = httpx.post(f"{self.url}/api/runs", json={"job_name": job}, timeout=30)
        assert launched.status_code == 201, launched.text
        run_id: str = launched.json()["id"]
        return run_id

    def status(self, run_id: str) -> str:
        status: str = self.get(f"/api/runs/{run_id}").json()["status"]
        return status


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Examples]:
    """``conveyor dev examples`` on any free port, its five web workloads running, two runs
    of ``do_stuff`` and one of ``fan_out`` (and the ``digest`` it triggers) recorded."""
    tmp = tmp_path_factory.mktemp("dev-examples")
    env = {**os.environ, "CONVEYOR_HOME": str(tmp / "home"), "HOME": str(tmp / "user")}
    for name in ("CONVEYOR_DATABASE_URL", "CONVEYOR_URL", "CONVEYOR_TOKEN"):
        env.pop(name, None)
    log = tmp / "dev.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*CONVEYOR, "dev", str(EXAMPLES), "--port", "0"],
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    dev = Examples(proc, log)
    try:

        def url() -> str | None:
            dev.alive()
            found = re.search(r"conveyor dev: (http://\S+)", dev.output())
            return found.group(1) if found else None

        address = wait_until(url, START, "conveyor dev to print its URL", every=0.2)
        assert address is not None
        dev.url = address

        def five_running() -> bool:
            dev.alive()
            listed = dev.workloads()
            return all(listed.get(name, {}).get("state") == "running" for name in FIVE)

        try:
            wait_until(five_running, START, "the five example workloads to run", every=0.5)
        except AssertionError:
            states = {n: w["state"] for n, w in dev.workloads().items()}
            raise AssertionError(f"workloads: {states}\n{dev.output()[-4000:]}") from None
        runs = [dev.run("do_stuff"), dev.run("do_stuff"), dev.run("fan_out")]

        def ended() -> bool:
            dev.alive()
            statuses = [dev.status(r) for r in runs]
            assert "failure" not in statuses, statuses
            digests = dev.get("/api/runs", params={"job": "digest"}).json()["runs"]
            return statuses == ["success"] * 3 and any(d["status"] == "success" for d in digests)

        wait_until(ended, RUN, "the example runs (and fan_out's digest) to succeed", every=0.2)
        yield dev
    finally:
        _stop(dev)


def _stop(dev: Examples) -> None:
    """Ctrl-C to dev's process group (it stops its daemon, which stops the workloads),
    SIGKILL after STOP seconds; then any workload process still running is killed."""
    if dev.proc.poll() is None:
        os.killpg(dev.proc.pid, signal.SIGINT)
    try:
        dev.proc.wait(STOP)
    except subprocess.TimeoutExpired:
        os.killpg(dev.proc.pid, signal.SIGKILL)
        dev.proc.wait(STOP)
    for pid, created in dev.seen.items():
        try:
            if abs(psutil.Process(pid).create_time() - created) < 0.5:
                os.killpg(pid, signal.SIGKILL)  # each workload leads a session of its own
        except (psutil.NoSuchProcess, ProcessLookupError, PermissionError):
            pass


@contextmanager
def _page(browser: Browser, dev: Examples, name: str) -> Iterator[Window]:
    """A page on the app ``name`` through the proxy; fails on any browser error (a page
    that names no icon, as Flask's, gets Conveyor's from ``/favicon.ico``)."""
    with open_window(browser, f"{dev.url}/apps/{name}") as w:
        yield w


def test_the_five_examples_run_under_dev_as_declared(examples: Examples) -> None:
    listed = examples.workloads()
    for name, kind in FIVE.items():
        assert listed[name]["kind"] == kind
        assert listed[name]["url"] == f"/apps/{name}/"
        assert listed[name]["description"]
        assert listed[name]["port"] is not None
    assert listed["pricing"]["health"] == "ok"  # its health path answers through its port


def test_the_fastapi_service_answers_through_the_proxy(examples: Examples) -> None:
    index = examples.get("/apps/pricing/")
    assert index.status_code == 200, index.text
    assert index.json()["service"] == "pricing"
    assert index.json()["user"] == "local", "the proxy passes the caller in X-Conveyor-User"
    price = examples.get("/apps/pricing/price", params={"spot": 100, "strike": 95})
    assert price.status_code == 200, price.text
    assert price.json()["call"] == pytest.approx(11.61, abs=0.01)
    # A service gets the path below /apps/pricing; its docs still link under it.
    docs = examples.get("/apps/pricing/docs")
    assert "/apps/pricing/openapi.json" in docs.text
    assert "/price" in examples.get("/apps/pricing/openapi.json").json()["paths"]
    refused = examples.get("/apps/pricing/price", params={"spot": "a lot", "strike": 95})
    assert refused.status_code == 422, "FastAPI's own validation answers through the proxy"


def test_the_flask_app_answers_through_the_proxy(examples: Examples, browser: Browser) -> None:
    page = examples.get("/apps/hello-flask/")
    assert page.status_code == 200, page.text
    assert "<h1>Hello, local</h1>" in page.text
    # url_for builds links under the base path, so they lead back through the proxy.
    assert "href='/apps/hello-flask/health'" in page.text
    assert examples.get("/apps/hello-flask/health").json() == {"status": "ok"}
    with _page(browser, examples, "hello-flask") as w:
        w.go("/")
        expect(w.page.get_by_role("heading", name="Hello, local")).to_be_visible()
        w.shot("proxy-hello-flask")
        w.page.get_by_role("link", name="health").click()
        expect(w.page.get_by_text('"status"')).to_be_visible()
        assert w.page.url == f"{examples.url}/apps/hello-flask/health"


def test_the_dash_dashboard_renders_and_its_callbacks_run_through_the_proxy(
    examples: Examples, browser: Browser
) -> None:
    with _page(browser, examples, "dash-dashboard") as w:
        callbacks: list[tuple[str, int]] = []
        w.page.on(
            "response",
            lambda r: callbacks.append((r.url, r.status)) if "_dash-update" in r.url else None,
        )
        w.go("/")
        expect(w.page.get_by_role("heading", name="Runs of the examples")).to_be_visible()
        # The first callback ran: the counts and the chart come from it.
        expect(
            w.page.get_by_text(re.compile(r"\d+ runs of all jobs: \d+ succeeded"))
        ).to_be_visible()
        expect(w.page.locator(".js-plotly-plot .bars path").first).to_be_attached()
        w.page.locator("#job input").fill("do_stuff")
        w.page.locator("#job input").press("Enter")
        expect(w.page.get_by_text("2 runs of do_stuff: 2 succeeded")).to_be_visible()
        expect(w.page.locator(".js-plotly-plot .bars path")).to_have_count(2)
        assert len(callbacks) >= 2
        for url, status in callbacks:
            assert url == f"{examples.url}/apps/dash-dashboard/_dash-update-component"
            assert status == 200
        w.shot("proxy-dash-dashboard")


def _sockets(w: Window) -> list[str]:
    """The URLs of the WebSockets the page opens (recorded from now on)."""
    opened: list[str] = []

    def on_socket(socket: WebSocket) -> None:
        opened.append(socket.url)

    w.page.on("websocket", on_socket)
    return opened


def test_the_streamlit_dashboard_renders_over_its_websocket_through_the_proxy(
    examples: Examples, browser: Browser
) -> None:
    with _page(browser, examples, "streamlit-dashboard") as w:
        sockets = _sockets(w)
        w.go("/")
        # Everything a Streamlit page shows comes over its WebSocket.
        expect(w.page.get_by_role("heading", name="Runs of the examples")).to_be_visible()
        expect(w.page.get_by_text("Signed in as local")).to_be_visible()
        expect(
            w.page.get_by_text(re.compile(r"\d+ runs of all jobs: \d+ succeeded"))
        ).to_be_visible()
        # The result fan_out's `combine` task returned, read from the run history.
        expect(w.page.get_by_text("Latest: mean 100.45, range 3.4")).to_be_visible()
        w.page.get_by_test_id("stSelectbox").click()
        w.page.get_by_role("option", name="do_stuff").click()
        expect(w.page.get_by_text("2 runs of do_stuff: 2 succeeded")).to_be_visible()
        charts = w.page.get_by_test_id("stVegaLiteChart")
        expect(charts).to_have_count(2)
        for i in range(2):
            expect(charts.nth(i).locator("canvas, svg").first).to_be_visible()
        # Its status widget shows while the script reruns.
        expect(w.page.get_by_test_id("stStatusWidget")).to_have_count(0)
        stream = (
            examples.url.replace("http://", "ws://") + "/apps/streamlit-dashboard/_stcore/stream"
        )
        assert set(sockets) == {stream}
        # Streamlit scrolls inside its own container: a full-page shot is one window high.
        w.page.set_viewport_size({"width": 1366, "height": 1400})
        expect(charts.nth(1).locator("canvas, svg").first).to_be_in_viewport()
        w.shot("proxy-streamlit-dashboard")


def test_the_panel_app_renders_over_its_websocket_through_the_proxy(
    examples: Examples, browser: Browser
) -> None:
    with _page(browser, examples, "panel-app") as w:
        sockets = _sockets(w)
        w.go("/")
        expect(w.page.get_by_text("Total: 140 minutes")).to_be_visible()
        slider = w.page.locator(".noUi-handle").first
        slider.focus()
        slider.press("End")
        # The new value went to the server and the text came back, over the WebSocket.
        expect(w.page.get_by_text("Total: 350 minutes")).to_be_visible()
        ws_base = examples.url.replace("http://", "ws://") + "/apps/panel-app/ws"
        assert {s.split("?")[0] for s in sockets} == {ws_base}
        w.shot("proxy-panel-app")


def test_the_workloads_page_lists_every_example(examples: Examples, browser: Browser) -> None:
    """The page ``/workloads`` under ``make run``: the five web workloads running, the
    Excel add-in, and the MCP job waiting for its first request."""
    wait_until(
        lambda: examples.workloads()["pricer"]["state"] == "running", RUN, "the add-in to run"
    )
    with open_window(browser, examples.url) as w:
        w.go("/workloads")
        for name in [*FIVE, "pricer"]:
            row = w.page.locator(f"#workload-{name}")
            expect(row.get_by_test_id("state")).to_have_text("running")
        agents = w.page.locator("#workload-agents")
        expect(agents.get_by_test_id("state")).to_have_text("stopped")
        expect(agents.get_by_test_id("on-request")).to_contain_text("starts on request")
        w.shot("workloads-examples")
