"""The commands that serve apps: each framework started as a real process on a free loopback
port, answering under its base path as it will behind the proxy (which forwards the full path).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from conveyor.definitions.workloads import App
from conveyor.errors import ConfigError
from conveyor.execution.app_launch import (
    Launch,
    app_command,
    load_app,
    normalize_base_path,
    resolve_target,
)
from tests.waiting import wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# Starting Streamlit, Panel or Dash takes seconds, more on a busy machine.
START_SECONDS = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def running(launch: Launch, cwd: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``launch`` as a process in its own group; killed (by its pid) on the way out."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            launch.argv,
            env={**os.environ, **launch.env},
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(30)


def answer(proc: subprocess.Popen[bytes], log: Path, url: str, **kwargs: object) -> httpx.Response:
    """The first non-error answer at ``url``, waiting while the app starts."""

    def attempt() -> httpx.Response | None:
        if proc.poll() is not None:
            pytest.fail(f"the app exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            response = httpx.get(url, timeout=5, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError:
            return None
        return response if response.status_code < 500 else None

    return wait_until(attempt, START_SECONDS, f"{url} to answer")


def serve(app: App, tmp_path: Path, root: Path, path: str) -> tuple[httpx.Response, Launch]:
    port = free_port()
    base = f"/apps/{app.name}"
    launch = app_command(app, port, base, sys.executable, root=root)
    log = tmp_path / f"{app.name}.log"
    with running(launch, root, log) as proc:
        response = answer(proc, log, f"http://127.0.0.1:{port}{base}{path}")
        if launch.health is not None:
            health = httpx.get(f"http://127.0.0.1:{port}{launch.health}", timeout=10)
            assert health.status_code == 200, launch.health
    return response, launch


def test_fastapi_example_answers_under_its_base_path(tmp_path: Path) -> None:
    app = App("pricing", "apps.pricing:app")
    port = free_port()
    launch = app_command(app, port, "/apps/pricing", sys.executable, root=EXAMPLES)
    log = tmp_path / "pricing.log"
    with running(launch, EXAMPLES, log) as proc:
        base = f"http://127.0.0.1:{port}/apps/pricing"
        index = answer(proc, log, base + "/", headers={"X-Conveyor-User": "ada"})
        assert index.json()["user"] == "ada"
        price = httpx.get(base + "/price", params={"spot": 100, "strike": 95}, timeout=10)
        assert price.status_code == 200
        assert price.json()["call"] == pytest.approx(11.61, abs=0.01)
        # FastAPI's docs know the root path, so they work behind the proxy.
        docs = httpx.get(base + "/docs", timeout=10)
        assert "/apps/pricing/openapi.json" in docs.text
        assert httpx.get(base + "/openapi.json", timeout=10).status_code == 200


def test_flask_example_answers_with_links_under_its_base_path(tmp_path: Path) -> None:
    app = App("hello-flask", "apps.hello_flask:app")
    response, launch = serve(app, tmp_path, EXAMPLES, "/")
    assert response.status_code == 200
    assert "/apps/hello-flask/health" in response.text  # url_for sees SCRIPT_NAME
    assert "--framework" in launch.argv
    assert launch.argv[launch.argv.index("--framework") + 1] == "flask"


@pytest.mark.slow
def test_dash_example_serves_its_layout_and_callbacks_under_its_base_path(tmp_path: Path) -> None:
    app = App("dash-dashboard", "apps.dash_dashboard:app")
    port = free_port()
    launch = app_command(app, port, "/apps/dash-dashboard", sys.executable, root=EXAMPLES)
    assert launch.health == "/apps/dash-dashboard/_dash-layout"
    log = tmp_path / "dash.log"
    with running(launch, EXAMPLES, log) as proc:
        base = f"http://127.0.0.1:{port}/apps/dash-dashboard/"
        page = answer(proc, log, base)
        config = page.text.replace("\\u002f", "/")
        assert '"requests_pathname_prefix":"/apps/dash-dashboard/"' in config
        layout = httpx.get(base + "_dash-layout", timeout=10).json()
        assert "Runs of the examples" in str(layout)
        update = httpx.post(
            base + "_dash-update-component",
            json={
                "output": "..chart.figure...total.children..",
                "outputs": [
                    {"id": "chart", "property": "figure"},
                    {"id": "total", "property": "children"},
                ],
                "inputs": [{"id": "job", "property": "value", "value": "*"}],
                "changedPropIds": ["job.value"],
            },
            timeout=30,
        )
        assert update.status_code == 200, update.text
        # The tests' CONVEYOR_HOME is unset (tests/conftest.py): the app reads a new,
        # empty ~/.conveyor under the test's own HOME.
        assert "No runs of any job have ended yet." in update.text


@pytest.mark.slow
def test_streamlit_example_answers_its_health_under_its_base_path(tmp_path: Path) -> None:
    app = App("streamlit-dashboard", "apps/streamlit_dashboard.py")
    response, launch = serve(app, tmp_path, EXAMPLES, "/_stcore/health")
    assert response.text == "ok"
    assert launch.argv[1:4] == ["-m", "streamlit", "run"]
    assert "--server.baseUrlPath" in launch.argv


@pytest.mark.slow
def test_panel_script_answers_its_page_under_its_base_path(tmp_path: Path) -> None:
    app = App("panel-app", "apps/panel_app.py")
    response, _ = serve(app, tmp_path, EXAMPLES, "/")
    assert response.status_code == 200
    assert "<title>Run durations</title>" in response.text


@pytest.mark.slow
def test_panel_object_named_by_module_and_attr_is_served_at_the_base_path(tmp_path: Path) -> None:
    (tmp_path / "board.py").write_text(
        "import panel as pn\n\ndef page():\n    return pn.pane.Markdown('# Board of runs')\n"
    )
    response, launch = serve(App("board", "board:page"), tmp_path, tmp_path, "/")
    assert response.status_code == 200
    assert "conveyor.execution.app_launch" in launch.argv


def test_any_asgi_app_sees_its_root_path_and_the_whole_path(tmp_path: Path) -> None:
    (tmp_path / "echo_asgi.py").write_text(
        "import json\n\n"
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    user = dict(scope['headers']).get(b'x-conveyor-user', b'').decode()\n"
        "    body = json.dumps({'root_path': scope['root_path'], 'path': scope['path'],\n"
        "                       'user': user})\n"
        "    await send({'type': 'http.response.start', 'status': 200,\n"
        "                'headers': [(b'content-type', b'application/json')]})\n"
        "    await send({'type': 'http.response.body', 'body': body.encode()})\n"
    )
    app = App("echo", "echo_asgi:app", framework="asgi")
    port = free_port()
    launch = app_command(app, port, "/apps/echo/", sys.executable, root=tmp_path)
    log = tmp_path / "asgi.log"
    with running(launch, tmp_path, log) as proc:
        url = f"http://127.0.0.1:{port}/apps/echo/a/b"
        seen = answer(proc, log, url, headers={"X-Conveyor-User": "otto"}).json()
    assert seen == {"root_path": "/apps/echo", "path": "/apps/echo/a/b", "user": "otto"}


def test_any_wsgi_app_from_a_factory_gets_script_name(tmp_path: Path) -> None:
    (tmp_path / "echo_wsgi.py").write_text(
        "def create():\n"
        "    def app(environ, start_response):\n"
        "        start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "        return [(environ['SCRIPT_NAME'] + '|' + environ['PATH_INFO']).encode()]\n"
        "    return app\n"
    )
    app = App("echo", "echo_wsgi:create", framework="wsgi")
    port = free_port()
    launch = app_command(app, port, "/apps/echo", sys.executable, root=tmp_path)
    log = tmp_path / "wsgi.log"
    with running(launch, tmp_path, log) as proc:
        seen = answer(proc, log, f"http://127.0.0.1:{port}/apps/echo/x/y")
    assert seen.text == "/apps/echo|/x/y"


def test_the_app_gets_its_env_vars_port_and_base_path(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text("from flask import Flask\napp = Flask(__name__)\n")
    app = App("envy", "mod:app", env_vars={"GREETING": "hi"})
    launch = app_command(app, 8123, "/apps/envy", "/usr/bin/python3", root=tmp_path)
    assert launch.argv[0] == "/usr/bin/python3"
    assert launch.env["GREETING"] == "hi"
    assert launch.env["PORT"] == "8123"
    assert launch.env["CONVEYOR_BASE_PATH"] == "/apps/envy"
    assert launch.env["PYTHONPATH"].split(os.pathsep)[0] == str(tmp_path.resolve())


def test_framework_is_inferred_from_the_module_source(tmp_path: Path) -> None:
    (tmp_path / "both.py").write_text(
        "import flask\nfrom dash import Dash\n\nserver = flask.Flask(__name__)\napp = Dash()\n"
    )
    dash = app_command(App("b", "both:app"), 1, "/apps/b", "python", root=tmp_path)
    flask = app_command(App("b", "both:server"), 1, "/apps/b", "python", root=tmp_path)
    assert dash.argv[dash.argv.index("--framework") + 1] == "dash"
    assert flask.argv[flask.argv.index("--framework") + 1] == "flask"
    assert "DASH_ROUTES_PATHNAME_PREFIX" in dash.env


def test_an_app_object_is_found_in_the_module_that_holds_it(tmp_path: Path) -> None:
    from flask import Flask

    holder = type(sys)("conveyor_test_app_holder")
    holder.site = Flask("site")  # type: ignore[attr-defined]
    sys.modules[holder.__name__] = holder
    try:
        target = resolve_target(holder.site, tmp_path, "App('s')")  # type: ignore[attr-defined]
    finally:
        del sys.modules[holder.__name__]
    assert (target.module, target.attr) == ("conveyor_test_app_holder", "site")


# --- bad input ----------------------------------------------------------------------


def test_a_missing_framework_package_names_the_apps_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules is how Python marks a module as not importable.
    monkeypatch.setitem(sys.modules, "streamlit", None)
    (tmp_path / "st.py").write_text("import streamlit as st\nst.write('hi')\n")
    with pytest.raises(ConfigError, match=r"streamlit package.*pip install 'conveyor\[apps\]'"):
        app_command(App("st", "st.py"), 1, "/apps/st", "python", root=tmp_path)


@pytest.mark.parametrize(
    ("entrypoint", "source", "message"),
    [
        ("gone.py", None, "does not exist"),
        ("nowhere.mod", None, "cannot find the module 'nowhere.mod'"),
        ("plain:app", "app = 1\n", "cannot infer the framework"),
        ("broken:app", "def (:\n", "cannot read"),
    ],
)
def test_bad_entrypoints_are_config_errors(
    tmp_path: Path, entrypoint: str, source: str | None, message: str
) -> None:
    if source is not None:
        (tmp_path / f"{entrypoint.partition(':')[0]}.py").write_text(source)
    with pytest.raises(ConfigError, match=message):
        app_command(App("bad", entrypoint), 1, "/apps/bad", "python", root=tmp_path)


def test_an_app_object_from_inside_a_function_is_refused(tmp_path: Path) -> None:
    def make() -> None:
        pass

    with pytest.raises(ConfigError, match="inside a function"):
        app_command(App("bad", make, framework="flask"), 1, "/apps/bad", "python")


@pytest.mark.parametrize("base", ["apps/x", "/apps//x", "/apps/x?y", "/apps/x y", "", "/a\\b"])
def test_a_malformed_base_path_is_refused(base: str) -> None:
    with pytest.raises(ConfigError, match="must be a URL path"):
        normalize_base_path(base)


def test_base_paths_are_normalized() -> None:
    assert normalize_base_path("/apps/x/") == "/apps/x"
    assert normalize_base_path(" /apps/x ") == "/apps/x"


def test_load_app_names_a_missing_attribute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setitem(sys.modules, "lonely", None)
    script = tmp_path / "lonely.py"
    script.write_text("x = 1\n")
    with pytest.raises(ConfigError, match="has no attribute 'app'"):
        load_app(str(script), None, None)
