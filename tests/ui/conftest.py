"""Browser tests: Chromium (Debian's, headless) driven by Playwright's sync API against the
app served by uvicorn on a free loopback port, over a real instance in ``tmp_path``, with
the scheduler daemon running the runs in a thread, as ``conveyor dev`` does.

Every test fails on a browser console error or an uncaught page error, and saves a
screenshot under ``docs/screenshots/``.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from conveyor.scheduler.daemon import Daemon
from conveyor.server.app import create_app
from conveyor.server.auth_settings import AuthSettings
from conveyor.server.runner import bound_url, make_server
from conveyor.server.state import ServerState, WorkspaceHolder
from conveyor.storage.instance import Instance
from conveyor.workspace import load_file
from tests.waiting import wait_until

CHROMIUM = "/usr/bin/chromium"
WORKSPACE = Path(__file__).with_name("workspace.py")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# How long a page waits for what it expects (ms): generous, the machine may be busy.
EXPECT_MS = 30_000

# A browser test takes seconds, more on a busy machine.
BROWSER_TEST_TIMEOUT = 300
expect.set_options(timeout=EXPECT_MS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests (those served the app) are slow, with a longer timeout."""
    here = Path(__file__).parent
    for item in items:
        names = getattr(item, "fixturenames", ())
        if here in item.path.parents and ("served" in names or "served_login" in names):
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.timeout(BROWSER_TEST_TIMEOUT))


@dataclass
class Served:
    """The app under test: its URL, instance and workspace."""

    url: str
    instance: Instance
    state: ServerState
    marks: Path


# The users of the login-mode tests (``served_login``): name -> role; all have PASSWORD.
USERS = {"vera": "viewer", "otto": "operator", "ada": "admin"}
PASSWORD = "browser tests only"


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """The UI on 127.0.0.1 (port 0), a daemon executing runs, on ``tests/ui/workspace.py``;
    no login (local mode), as ``conveyor dev`` serves."""
    with serve(tmp_path, monkeypatch, AuthSettings()) as s:
        yield s


@pytest.fixture
def served_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """As ``served``, in login mode, with the users of ``USERS``."""
    with serve(tmp_path, monkeypatch, AuthSettings(mode="login")) as s:
        for name, role in USERS.items():
            s.instance.identity.add_user(name, role, password=PASSWORD)
        yield s


@contextmanager
def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, auth: AuthSettings) -> Iterator[Served]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip(f"no Chromium at {CHROMIUM}")
    home = tmp_path / "home"
    marks = tmp_path / "marks"
    marks.mkdir()
    # Run workers find the instance, and the jobs their markers, from the environment.
    monkeypatch.setenv("CONVEYOR_HOME", str(home))
    monkeypatch.setenv("CONVEYOR_UI_DIR", str(marks))
    instance = Instance.at(home)
    holder = WorkspaceHolder(lambda: load_file(WORKSPACE), str(WORKSPACE))
    assert holder.reload() is None
    assert holder.workspace is not None
    state = ServerState(instance, holder, auth=auth)
    server = make_server(create_app(state), "127.0.0.1", 0)
    serving = threading.Thread(target=server.run, name="ui-test-server", daemon=True)
    stop = threading.Event()
    daemon_thread: threading.Thread | None = None
    serving.start()
    try:
        daemon = Daemon(holder.workspace, instance, poll=0.1)
        daemon_thread = threading.Thread(target=daemon.run, args=(stop,), name="ui-test-daemon")
        daemon_thread.start()
        url = wait_until(lambda: bound_url(server, "127.0.0.1"), 30, "the UI server to listen")
        assert url is not None
        yield Served(url, instance, state, marks)
    finally:
        stop.set()
        server.should_exit = True
        if daemon_thread is not None:
            daemon_thread.join(30)
        serving.join(30)
        instance.close()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
    yield b
    b.close()


@dataclass
class Window:
    """A browser page that records every console error and page error."""

    page: Page
    base: str
    errors: list[str] = field(default_factory=list)

    def go(self, path: str) -> None:
        self.page.goto(self.base + path)

    def shot(self, name: str, *, full_page: bool = True) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def check(self) -> None:
        """Fail on any console or page error so far."""
        assert not self.errors, "browser errors:\n" + "\n".join(self.errors)


@pytest.fixture
def window(browser: Browser, served: Served) -> Iterator[Window]:
    """A 1366x768 page on the served UI; fails the test on any browser error."""
    with open_window(browser, served.url) as w:
        yield w


@contextmanager
def open_window(browser: Browser, url: str) -> Iterator[Window]:
    """A 1366x768 page (in a context of its own: its own cookies) on the UI at ``url``;
    fails the test on any browser error."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    context.set_default_timeout(EXPECT_MS)
    page = context.new_page()
    w = Window(page, url)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            w.errors.append(f"console: {message.text} ({message.location.get('url', '')})")

    page.on("console", on_console)
    page.on("pageerror", lambda e: w.errors.append(f"page error: {e}"))
    try:
        yield w
        w.check()
    finally:
        context.close()
