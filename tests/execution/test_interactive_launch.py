"""Interactive jobs' processes: each form of entrypoint started with ``start_workload`` as a
real process on a free loopback port, answering under its base path as it will behind the
proxy (which forwards the full path, ``/apps/<name>/...``)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from conveyor.definitions.frameworks import infer_interactive
from conveyor.definitions.interactive import Interactive
from conveyor.errors import ConfigError
from conveyor.execution.interactive_launch import (
    interactive_command,
    is_asgi,
    is_mcp_server,
    is_wsgi,
)
from conveyor.execution.workload_launch import (
    Started,
    free_port,
    log_path,
    reap,
    start_workload,
)
from conveyor.workspace import load_file
from tests.waiting import wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# Starting Python with mcp, Streamlit or marimo takes seconds, more on a busy machine.
START_SECONDS = 90

MCP_FUNCTION = '''
from conveyor import interactive


@interactive(interface="mcp", idle_timeout="3s", env_vars={"CONVEYOR_RUN_ID": "run-7"})
def tools(context):
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("tools")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    @server.tool()
    def where() -> str:
        """Where this start serves, and which run it is."""
        return f"{context.base_path} {context.run_id} {context.port}"

    return server
'''

MCP_MODULE = '''
from mcp.server.mcpserver import MCPServer

server = MCPServer("quotes")


@server.tool()
def quote(ticker: str) -> float:
    """A made-up price."""
    return float(len(ticker)) * 10.0


@server.tool()
def tickers() -> list[str]:
    """What quote knows."""
    return ["ABC", "DEFG"]
'''


@contextmanager
def started(workload: Interactive, origin: dict[str, Any], home: Path) -> Iterator[Started]:
    """``workload`` started as the supervisor starts it; its process group killed after."""
    process = start_workload(workload, origin, home, port=free_port())
    try:
        yield process
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.process.wait(30)
        reap()


def logs(home: Path, name: str) -> str:
    return "\n".join(
        log_path(home, name, stream).read_text(errors="replace")[-3000:]
        for stream in ("stdout", "stderr")
    )


def answer(process: Started, home: Path, name: str, path: str, **kwargs: Any) -> httpx.Response:
    """The first answer under 500 at ``path`` on the job's port, while it starts."""
    url = f"http://127.0.0.1:{process.port}{path}"

    def attempt() -> httpx.Response | None:
        if process.process.poll() is not None:
            pytest.fail(f"{name} exited with {process.process.returncode}:\n{logs(home, name)}")
        try:
            response = httpx.get(url, timeout=5, trust_env=False, **kwargs)
        except httpx.TransportError:
            return None
        return response if response.status_code < 500 else None

    return wait_until(attempt, START_SECONDS, f"{url} to answer")


def mcp_session(url: str, tool: str, arguments: dict[str, Any]) -> tuple[list[str], str]:
    """The tools an ``mcp`` client lists at ``url``, and the text ``tool`` answers."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def talk() -> tuple[list[str], str]:
        async with (
            streamable_http_client(url) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            listed = await session.list_tools()
            called = await session.call_tool(tool, arguments)
            assert not called.is_error, called
            text = " ".join(getattr(c, "text", "") for c in called.content)
            return sorted(t.name for t in listed.tools), text

    return asyncio.run(asyncio.wait_for(talk(), 60))


def mcp_ready(process: Started, home: Path, name: str) -> str:
    """The job's MCP endpoint, once it answers (a GET without a session is refused)."""
    path = f"/apps/{name}/mcp"
    response = answer(process, home, name, path)
    assert response.status_code < 500, response.text
    return f"http://127.0.0.1:{process.port}{path}"


def workspace(tmp_path: Path, source: str, name: str = "ws.py") -> tuple[Path, dict[str, Any]]:
    file = tmp_path / name
    file.write_text(source)
    return file, {"file": str(file)}


# --- functions ----------------------------------------------------------------------


def test_a_function_returning_an_mcp_server_answers_an_mcp_client_at_base_mcp(
    tmp_path: Path,
) -> None:
    pytest.importorskip("mcp")
    file, origin = workspace(tmp_path, MCP_FUNCTION)
    job = load_file(file).workload("tools")
    assert isinstance(job, Interactive)
    with started(job, origin, tmp_path) as process:
        url = mcp_ready(process, tmp_path, "tools")
        names, text = mcp_session(url, "add", {"a": 2, "b": 40})
        assert names == ["add", "where"]
        assert text == "42"
        _, where = mcp_session(url, "where", {})
        assert where == f"/apps/tools run-7 {process.port}"
        # An mcp job's guard against DNS rebinding lets in the loopback Host the proxy
        # sends, and refuses another name (a page that rebound its name to 127.0.0.1).
        initialize = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "proxy-test", "version": "1"},
            },
        }

        def post(host: str) -> httpx.Response:
            return httpx.post(
                url,
                content=json.dumps(initialize),
                headers={
                    "host": host,
                    "x-forwarded-host": "conveyor.example.com:3000",
                    "x-conveyor-user": "alice",
                    "content-type": "application/json",
                    "accept": "application/json, text/event-stream",
                },
                timeout=30,
                trust_env=False,
            )

        forwarded = post(f"127.0.0.1:{process.port}")
        assert forwarded.status_code == 200, forwarded.text
        assert "serverInfo" in forwarded.text
        rebound = post(f"evil.example.com:{process.port}")
        assert rebound.status_code == 421, rebound.text


def test_a_function_returning_a_fastapi_app_answers_under_the_base_path(tmp_path: Path) -> None:
    file, origin = workspace(
        tmp_path,
        "from fastapi import FastAPI, Request\n"
        "from conveyor import interactive\n\n"
        "@interactive(interface='rest_api')\n"
        "def api():\n"
        "    app = FastAPI()\n\n"
        "    @app.get('/hello')\n"
        "    def hello(request: Request) -> dict:\n"
        "        return {'root_path': request.scope['root_path'], 'url': str(request.url)}\n\n"
        "    return app\n",
    )
    job = load_file(file).workload("api")
    with started(job, origin, tmp_path) as process:
        response = answer(process, tmp_path, "api", "/apps/api/hello")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["root_path"] == "/apps/api"
        assert body["url"].endswith("/apps/api/hello")


def test_a_function_that_serves_on_its_port_itself_gets_its_context(tmp_path: Path) -> None:
    file, origin = workspace(
        tmp_path,
        "import json\n"
        "from http.server import BaseHTTPRequestHandler, HTTPServer\n"
        "from conveyor import interactive\n\n"
        "@interactive(interface='gui')\n"
        "def board(context):\n"
        "    class Page(BaseHTTPRequestHandler):\n"
        "        def do_GET(self):\n"
        "            body = json.dumps({'path': self.path, 'name': context.name,\n"
        "                               'base': context.base_path, 'url': context.url,\n"
        "                               'interface': context.interface}).encode()\n"
        "            self.send_response(200)\n"
        "            self.send_header('content-length', str(len(body)))\n"
        "            self.end_headers()\n"
        "            self.wfile.write(body)\n\n"
        "    HTTPServer((context.host, context.port), Page).serve_forever()\n",
    )
    job = load_file(file).workload("board")
    with started(job, origin, tmp_path) as process:
        body = answer(process, tmp_path, "board", "/apps/board/x?y=1").json()
        assert body == {
            "path": "/apps/board/x?y=1",
            "name": "board",
            "base": "/apps/board",
            "url": f"http://127.0.0.1:{process.port}/apps/board/",
            "interface": "gui",
        }


def test_an_async_function_returning_none_has_served_and_exits_0(tmp_path: Path) -> None:
    file, origin = workspace(
        tmp_path,
        "from conveyor import interactive\n\n"
        "@interactive\n"
        "async def once():\n"
        "    print('served and done')\n",
    )
    job = load_file(file).workload("once")
    with started(job, origin, tmp_path) as process:
        code = wait_until(lambda: process.process.poll() is not None, START_SECONDS, "exit")
        assert code
        assert process.process.returncode == 0, logs(tmp_path, "once")
        assert "served and done" in logs(tmp_path, "once")


def test_a_function_returning_a_flask_app_is_served_under_the_prefix(tmp_path: Path) -> None:
    pytest.importorskip("flask")
    pytest.importorskip("waitress")
    file, origin = workspace(
        tmp_path,
        "from flask import Flask, request, url_for\n"
        "from conveyor import interactive\n\n"
        "@interactive\n"
        "def forms():\n"
        "    app = Flask('forms')\n\n"
        "    @app.get('/')\n"
        "    def index():\n"
        "        return {'script_name': request.script_root, 'self': url_for('index')}\n\n"
        "    return app\n",
    )
    job = load_file(file).workload("forms")
    with started(job, origin, tmp_path) as process:
        body = answer(process, tmp_path, "forms", "/apps/forms/").json()
        assert body == {"script_name": "/apps/forms", "self": "/apps/forms/"}


# --- entrypoints named by string -------------------------------------------------------


@pytest.mark.parametrize("entrypoint", ["quotes:server", "quotes.py", "quotes"])
def test_an_mcp_server_named_by_reference_or_module_is_served(
    tmp_path: Path, entrypoint: str
) -> None:
    pytest.importorskip("mcp")
    (tmp_path / "quotes.py").write_text(MCP_MODULE)
    file, origin = workspace(
        tmp_path,
        "from conveyor import Interactive\n\n"
        f"quotes = Interactive('quotes', {entrypoint!r}, interface='mcp')\n",
    )
    job = load_file(file).workload("quotes")
    assert isinstance(job, Interactive)
    launch = interactive_command(job, origin, 1, sys.executable)
    assert launch.argv[1:3] == ["-m", "conveyor.execution.interactive_launch"]
    with started(job, origin, tmp_path) as process:
        names, text = mcp_session(
            mcp_ready(process, tmp_path, "quotes"), "quote", {"ticker": "ABC"}
        )
        assert names == ["quote", "tickers"]
        assert text == "30.0"


def test_a_streamlit_script_is_served_by_streamlit_under_the_base_path(tmp_path: Path) -> None:
    pytest.importorskip("streamlit")
    (tmp_path / "board.py").write_text("import streamlit as st\n\nst.title('Runs')\n")
    job = Interactive("stboard", "board.py")
    origin = {"folder": str(tmp_path)}
    launch = interactive_command(job, origin, 8501, sys.executable)
    assert launch.argv[1:4] == ["-m", "streamlit", "run"]
    assert launch.health == "/apps/stboard/_stcore/health"
    with started(job, origin, tmp_path) as process:
        health = answer(process, tmp_path, "stboard", "/apps/stboard/_stcore/health")
        assert health.status_code == 200
        page = answer(process, tmp_path, "stboard", "/apps/stboard/")
        assert page.status_code == 200
        assert "<html" in page.text.lower()


MARIMO_NOTEBOOK = """
import marimo

app = marimo.App()


@app.cell
def _():
    import marimo as mo
    return (mo,)


@app.cell
def _(mo):
    mo.md("# Runs board")
    return


if __name__ == "__main__":
    app.run()
"""


def test_a_marimo_notebook_is_served_by_marimo_run_under_the_base_path(tmp_path: Path) -> None:
    if importlib.util.find_spec("marimo") is None:
        pytest.skip("marimo is not installed (pip install 'conveyor[marimo]')")
    (tmp_path / "notebook.py").write_text(MARIMO_NOTEBOOK)
    job = Interactive("nb", "notebook.py", interface="gui", idle_timeout="1h")
    origin = {"folder": str(tmp_path)}
    launch = interactive_command(job, origin, 2718, sys.executable)
    assert launch.argv[1:4] == ["-m", "marimo", "run"]
    assert launch.argv[launch.argv.index("--base-url") + 1] == "/apps/nb"
    assert "--headless" in launch.argv
    with started(job, origin, tmp_path) as process:
        health = answer(process, tmp_path, "nb", "/apps/nb/health")
        assert health.status_code == 200
        # Through the proxy the Host is the one the browser used.
        page = answer(process, tmp_path, "nb", "/apps/nb/", headers={"host": "conveyor.example"})
        assert page.status_code == 200
        assert "<html" in page.text.lower()


def test_the_example_mcp_job_starts_and_lists_its_tools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mcp")
    # The example reads the run history of the instance it runs beside.
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path / "home"))
    file = EXAMPLES / "agents.py"
    job = load_file(file).workload("agents")
    assert isinstance(job, Interactive)
    assert (job.interface, job.idle_seconds) == ("mcp", 900)
    with started(job, {"file": str(file)}, tmp_path) as process:
        url = mcp_ready(process, tmp_path, "agents")
        names, text = mcp_session(url, "last_status", {"job": "fan_out"})
        assert names == ["last_status", "recent_runs", "served_from"]
        assert "no run of 'fan_out' yet" in text
        _, runs = mcp_session(url, "recent_runs", {"limit": 5})
        assert runs in ("", "[]")


# --- bad ones ------------------------------------------------------------------------


def test_a_function_returning_something_else_exits_naming_it_and_what_is_accepted(
    tmp_path: Path,
) -> None:
    file, origin = workspace(
        tmp_path,
        "from conveyor import interactive\n\n@interactive\ndef answer(context):\n    return 42\n",
    )
    job = load_file(file).workload("answer")
    with started(job, origin, tmp_path) as process:
        wait_until(lambda: process.process.poll() is not None, START_SECONDS, "it to exit")
        assert process.process.returncode == 1
        stderr = log_path(tmp_path, "answer", "stderr").read_text()
        assert "Interactive('answer'): got 42 (a builtins.int)" in stderr
        assert "may return None (the function served on context.port itself)" in stderr
        assert "an MCP server" in stderr
        assert "ASGI app" in stderr
        assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("package", "file", "source", "extra"),
    [
        ("marimo", "nb.py", MARIMO_NOTEBOOK, "conveyor[marimo]"),
        ("streamlit", "st.py", "import streamlit as st\nst.write('hi')\n", "conveyor[apps]"),
        ("mcp", "srv.py", MCP_MODULE, "conveyor[mcp]"),
    ],
)
def test_a_missing_framework_package_names_the_extra(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    package: str,
    file: str,
    source: str,
    extra: str,
) -> None:
    # None in sys.modules is how Python marks a module as not importable.
    monkeypatch.setitem(sys.modules, package, None)
    (tmp_path / file).write_text(source)
    job = Interactive("x", file)
    needs = rf"needs the {package} package; install it: pip install '{re.escape(extra)}'"
    with pytest.raises(ConfigError, match=needs):
        interactive_command(job, {"folder": str(tmp_path)}, 1, sys.executable)


@pytest.mark.parametrize(
    ("entrypoint", "source", "message"),
    [
        ("gone.py", None, "entrypoint file .*gone.py' does not exist"),
        ("nowhere.mod", None, "cannot find the module 'nowhere.mod'"),
        ("plain.py", "x = 1\n", "is not a marimo notebook .*, a Streamlit script .* or a module"),
        ("broken.py", "def (:\n", "cannot read"),
    ],
)
def test_bad_module_entrypoints_are_config_errors(
    tmp_path: Path, entrypoint: str, source: str | None, message: str
) -> None:
    if source is not None:
        (tmp_path / entrypoint).write_text(source)
    with pytest.raises(ConfigError, match=message):
        interactive_command(
            Interactive("bad", entrypoint), {"folder": str(tmp_path)}, 1, sys.executable
        )


def test_a_module_with_no_mcp_server_exits_saying_so(tmp_path: Path) -> None:
    (tmp_path / "empty_tools.py").write_text("x = 1\n")
    file, origin = workspace(
        tmp_path,
        "from conveyor import Interactive\n\nempty = Interactive('empty', 'empty_tools:x')\n",
    )
    job = load_file(file).workload("empty")
    with started(job, origin, tmp_path) as process:
        wait_until(lambda: process.process.poll() is not None, START_SECONDS, "it to exit")
        assert process.process.returncode == 1
        stderr = log_path(tmp_path, "empty", "stderr").read_text()
        assert "entrypoint 'empty_tools:x' is 1 (a builtins.int)" in stderr


# --- what is what --------------------------------------------------------------------


def test_what_a_module_is_is_read_from_its_source() -> None:
    assert infer_interactive(MARIMO_NOTEBOOK) == "marimo"
    assert infer_interactive(MCP_MODULE) == "mcp"
    v1 = "import mcp.server.fastmcp\nm = mcp.server.fastmcp.FastMCP('a')\n"
    assert infer_interactive(v1) == "mcp"
    assert infer_interactive("from fastmcp import FastMCP as F\nserver = F('a')\n") == "mcp"
    assert infer_interactive("import streamlit as st\nst.write(1)\n") == "streamlit"
    # Importing marimo is not being a notebook; importing mcp is not making a server.
    assert infer_interactive("import marimo\nimport mcp\nx = 1\n") is None
    assert infer_interactive("from fastapi import FastAPI\napp = FastAPI()\n") is None


def test_servers_and_apps_are_told_apart_by_their_shape() -> None:
    from fastapi import FastAPI

    async def asgi(scope: Any, receive: Any, send: Any) -> None: ...

    def wsgi(environ: Any, start_response: Any) -> list[bytes]:
        return []

    def job(context: Any) -> None: ...

    assert is_asgi(FastAPI())
    assert is_asgi(asgi)
    assert not is_asgi(job)
    assert not is_asgi(wsgi)
    assert not is_asgi(FastAPI)
    assert is_wsgi(wsgi)
    assert not is_wsgi(asgi)
    assert not is_wsgi(job)
    assert not is_mcp_server(FastAPI())
    assert not is_mcp_server(job)
    if importlib.util.find_spec("mcp") is not None:
        from mcp.server.mcpserver import MCPServer

        assert is_mcp_server(MCPServer("x"))
        assert not is_mcp_server(MCPServer)


def test_a_function_whose_mcp_import_fails_is_told_the_extra(tmp_path: Path) -> None:
    # A package of that name that cannot be imported stands for one not installed; it is
    # on the job's PYTHONPATH only, not on this process's sys.path.
    fake = tmp_path / "fake" / "mcp"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ModuleNotFoundError(name='mcp')\n")
    file, origin = workspace(
        tmp_path,
        "from conveyor import interactive\n\n"
        f"@interactive(interface='mcp', env_vars={{'PYTHONPATH': {str(fake.parent)!r}}})\n"
        "def nomcp():\n"
        "    from mcp.server.mcpserver import MCPServer\n"
        "    return MCPServer('x')\n",
    )
    job = load_file(file).workload("nomcp")
    with started(job, origin, tmp_path) as process:
        wait_until(lambda: process.process.poll() is not None, START_SECONDS, "it to exit")
        assert process.process.returncode == 1
        stderr = log_path(tmp_path, "nomcp", "stderr").read_text()
        assert "install it: pip install 'conveyor[mcp]'" in stderr


@pytest.mark.parametrize("launcher", ["workload_launch", "interactive_launch"])
def test_a_launcher_without_a_port_says_so(tmp_path: Path, launcher: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PORT"}
    ended = subprocess.run(
        [sys.executable, "-m", f"conveyor.execution.{launcher}", "--file", "ws.py", "job"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ended.returncode == 2
    assert f"{launcher}: PORT must be set to the port to serve on" in ended.stderr
