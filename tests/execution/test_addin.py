"""An Excel add-in's server, over real HTTP and a real WebSocket on 127.0.0.1: calls
with good and bad arguments, streams, progress, and the files Excel loads it by."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from websockets.sync.client import ClientConnection, connect
from websockets.sync.connection import Connection

from conveyor.definitions.addin import Addin, ExcelAddin, Queue
from conveyor.errors import ConfigError
from conveyor.execution.addin_manifest import addin_id, functions_metadata, manifest_xml
from conveyor.execution.addin_server import addin_command, create_app, serve_addin
from tests.waiting import wait_until

ROOT = Path(__file__).parents[2]
BASE_PATH = "/apps/pricer"
OFFICE = "{http://schemas.microsoft.com/office/appforoffice/1.1}"
OV = "{http://schemas.microsoft.com/office/taskpaneappversionoverrides}"
BT = "{http://schemas.microsoft.com/office/officeappbasictypes/1.0}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"

ADDIN = Addin("Test Pricer", "Functions for the tests")
TICKS_STOPPED = threading.Event()


@ADDIN.expose(description="Adds two numbers", help="a plus b")
def add(a: float, b: float = 10) -> float:
    return a + b


@ADDIN.expose(description="Scales a range")
def scale(grid: list[list[float]], k: float) -> list[list[float]]:
    return [[v * k for v in row] for row in grid]


@ADDIN.expose(description="Always fails")
def fail(a: int) -> int:
    raise ValueError(f"no price for {a}")


@ADDIN.expose(description="Returns the wrong type")
def liar(a: int) -> int:
    return "not a number"  # type: ignore[return-value]


@ADDIN.expose(description="Adds in a coroutine")
async def async_add(a: int, b: int) -> int:
    return a + b


@ADDIN.expose(description="Counts up until the cell is cleared", streaming=True)
def tick(queue: Queue, start: int) -> int:
    try:
        value = start
        while True:
            queue.push(value)
            value += 1
            time.sleep(0.01)  # a feed's pace; the test waits on messages, not on this
    finally:
        TICKS_STOPPED.set()


@ADDIN.expose(description="Counts down", streaming=True)
def countdown(n: int) -> Iterator[int]:
    yield from range(n, 0, -1)


@ADDIN.expose(description="Works in steps", progressbar=True)
def crunch(queue: Queue, steps: int) -> str:
    for step in range(steps):
        queue.progress(step / steps, f"step {step + 1}")
    return f"done in {steps}"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The add-in served by uvicorn on a free loopback port; its public base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(ADDIN, BASE_PATH), log_level="warning", access_log=False, lifespan="off"
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: uv.started, 30, "the add-in server to listen")
    try:
        yield f"http://127.0.0.1:{port}{BASE_PATH}/"
    finally:
        uv.should_exit = True
        thread.join(30)
        sock.close()


def _post(base: str, name: str, body: Any) -> httpx.Response:
    return httpx.post(f"{base}functions/{name}", json=body, timeout=30)


def test_a_function_is_called_over_http(server: str) -> None:
    assert _post(server, "add", {"args": [1, 2]}).json() == {"result": 3.0}
    assert _post(server, "add", {"args": {"a": 1.5}}).json() == {"result": 11.5}
    assert _post(server, "add", [4, 5]).json() == {"result": 9.0}
    response = _post(server, "scale", {"args": [[[1, 2], [3, 4]], 2]})
    assert response.json() == {"result": [[2.0, 4.0], [6.0, 8.0]]}
    assert _post(server, "async_add", {"args": [2, 3]}).json() == {"result": 5}
    assert _post(server, "crunch", {"args": [3]}).json() == {"result": "done in 3"}


@pytest.mark.parametrize(
    ("name", "body", "status", "error"),
    [
        ("add", {"args": ["one", 2]}, 422, "add: argument a wants float, got str"),
        ("add", {"args": [True, [1]]}, 422, "argument a wants float, got bool; argument b wants"),
        ("add", {"args": []}, 422, "argument a (float) is missing"),
        ("add", {"args": [1, 2, 3]}, 422, "add: takes 2 arguments, got 3"),
        ("add", {"args": {"a": 1, "z": 2}}, 422, "add: unknown arguments z"),
        ("add", {"args": "1,2"}, 422, "args must be a list or an object, got str"),
        ("scale", {"args": [[[1, "x"]], 2]}, 422, "argument grid[0][1] wants float, got str"),
        ("scale", {"args": [5, 2]}, 422, "argument grid wants list[list[float]], got int"),
        ("nope", {"args": []}, 404, "no function 'nope' in add-in 'Test Pricer'"),
        ("tick", {"args": [1]}, 400, "tick streams values: call it over the WebSocket"),
        ("fail", {"args": [7]}, 500, "fail raised ValueError: no price for 7"),
        ("liar", {"args": [7]}, 500, "liar returned a bad value: the result wants int, got str"),
    ],
)
def test_a_bad_call_gets_a_clear_error(
    server: str, name: str, body: Any, status: int, error: str
) -> None:
    response = _post(server, name, body)
    assert response.status_code == status
    assert error in response.json()["error"]


def test_a_body_that_is_not_json_is_refused(server: str) -> None:
    response = httpx.post(f"{server}functions/add", content=b"{nope", timeout=30)
    assert response.status_code == 400
    assert response.json()["error"].startswith("the body is not JSON")


def _ws(base: str) -> ClientConnection:
    return connect(base.replace("http://", "ws://") + "ws", open_timeout=30)


def _receive(ws: Connection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(ws.recv(timeout=30))
    return message


def test_a_streaming_function_delivers_values_until_canceled(server: str) -> None:
    TICKS_STOPPED.clear()
    with _ws(server) as ws:
        ws.send(json.dumps({"id": "t1", "function": "tick", "args": [5]}))
        values = [_receive(ws) for _ in range(4)]
        assert values == [{"id": "t1", "type": "value", "value": v} for v in (5, 6, 7, 8)]
        ws.send(json.dumps({"id": "t1", "cancel": True}))
        wait_until(TICKS_STOPPED.is_set, 30, "the canceled stream's function to end")
        # The socket still serves other calls after a cancel.
        ws.send(json.dumps({"id": 2, "function": "add", "args": [1, 1]}))
        while (message := _receive(ws))["id"] != 2:
            assert message["id"] == "t1"  # values already on their way when it was canceled
        assert message == {"id": 2, "type": "result", "value": 2.0}


def test_a_closed_socket_stops_its_streams(server: str) -> None:
    TICKS_STOPPED.clear()
    with _ws(server) as ws:
        ws.send(json.dumps({"id": "a", "function": "tick", "args": [0]}))
        assert _receive(ws)["value"] == 0
    wait_until(TICKS_STOPPED.is_set, 30, "the stream of a closed socket to end")


def test_a_generator_streams_then_ends(server: str) -> None:
    with _ws(server) as ws:
        ws.send(json.dumps({"id": 1, "function": "countdown", "args": {"n": 3}}))
        messages = [_receive(ws) for _ in range(4)]
    assert [m.get("value") for m in messages[:3]] == [3, 2, 1]
    assert messages[3] == {"id": 1, "type": "end"}


def test_progress_is_reported_then_the_result(server: str) -> None:
    with _ws(server) as ws:
        ws.send(json.dumps({"id": "c", "function": "crunch", "args": [2]}))
        messages = [_receive(ws) for _ in range(3)]
    assert messages == [
        {"id": "c", "type": "progress", "done": 0.0, "message": "step 1"},
        {"id": "c", "type": "progress", "done": 0.5, "message": "step 2"},
        {"id": "c", "type": "result", "value": "done in 2"},
    ]


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("{nope", "not JSON"),
        ("[1, 2]", 'a message is {"id": ..., "function": ..., "args": [...]}'),
        ('{"function": "add"}', 'a message is {"id"'),
        ('{"id": 1, "function": "nope"}', "no function 'nope' in add-in 'Test Pricer'"),
        ('{"id": 1, "function": "tick", "args": ["x"]}', "tick: argument start wants int"),
        ('{"id": 1, "function": "fail", "args": [3]}', "fail raised ValueError: no price for 3"),
        ('{"id": 1, "function": "liar", "args": [3]}', "liar returned a bad value"),
    ],
)
def test_a_bad_message_over_the_websocket_gets_an_error(
    server: str, message: str, error: str
) -> None:
    with _ws(server) as ws:
        ws.send(message)
        answer = _receive(ws)
    assert answer["type"] == "error"
    assert error in answer["error"]


def test_the_manifest_is_an_office_taskpane_manifest_for_excel(server: str) -> None:
    response = httpx.get(f"{server}manifest.xml", timeout=30)
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.content)  # well-formed, or this raises
    assert root.tag == f"{OFFICE}OfficeApp"
    assert root.get(XSI_TYPE) == "TaskPaneApp"
    # The elements the schema requires of a TaskPaneApp, in the schema's order.
    children = [child.tag.removeprefix(OFFICE) for child in root]
    assert children == [
        "Id",
        "Version",
        "ProviderName",
        "DefaultLocale",
        "DisplayName",
        "Description",
        "IconUrl",
        "HighResolutionIconUrl",
        "Hosts",
        "Requirements",
        "DefaultSettings",
        "Permissions",
        f"{OV}VersionOverrides",
    ]
    assert uuid.UUID(root.findtext(f"{OFFICE}Id") or "") == uuid.UUID(addin_id(ADDIN))
    assert root.findtext(f"{OFFICE}Version") == "1.0.0.0"
    assert root.findtext(f"{OFFICE}DefaultLocale") == "en-US"
    assert root.find(f"{OFFICE}DisplayName").get("DefaultValue") == "Test Pricer"  # type: ignore[union-attr]
    assert root.find(f"{OFFICE}Hosts/{OFFICE}Host").get("Name") == "Workbook"  # type: ignore[union-attr]
    sets = {s.get("Name") for s in root.iter(f"{OFFICE}Set")}
    assert sets == {"CustomFunctionsRuntime", "SharedRuntime"}
    assert root.findtext(f"{OFFICE}Permissions") == "ReadWriteDocument"
    source = root.find(f"{OFFICE}DefaultSettings/{OFFICE}SourceLocation")
    assert source is not None
    assert source.get("DefaultValue") == f"{server}taskpane.html"

    overrides = root.find(f"{OV}VersionOverrides")
    assert overrides is not None
    assert overrides.get(XSI_TYPE) == "VersionOverridesV1_0"
    host = overrides.find(f"{OV}Hosts/{OV}Host")
    assert host is not None
    assert host.get(XSI_TYPE) == "Workbook"
    runtime = host.find(f"{OV}Runtimes/{OV}Runtime")
    assert runtime is not None
    assert (runtime.get("resid"), runtime.get("lifetime")) == ("Taskpane.Url", "long")
    point = host.find(f"{OV}AllFormFactors/{OV}ExtensionPoint")
    assert point is not None
    assert point.get(XSI_TYPE) == "CustomFunctions"
    urls = {u.get("id"): u.get("DefaultValue") for u in overrides.iter(f"{BT}Url")}
    strings = {s.get("id"): s.get("DefaultValue") for s in overrides.iter(f"{BT}String")}
    resids = {
        part: point.findall(f"{OV}{part}/{OV}SourceLocation")[0].get("resid")
        for part in ("Script", "Page", "Metadata")
    }
    assert {part: urls[str(resid)] for part, resid in resids.items()} == {
        "Script": f"{server}functions.js",
        "Page": f"{server}taskpane.html",
        "Metadata": f"{server}functions.json",
    }
    namespace = point.find(f"{OV}Namespace")
    assert namespace is not None
    assert strings[str(namespace.get("resid"))] == "TESTPRICER"
    # Every resid the manifest uses is defined, and no longer than the schema's 32.
    used = {e.get("resid") for e in overrides.iter() if e.get("resid")}
    assert used <= set(urls) | set(strings)
    assert all(len(str(r)) <= 32 for r in used)
    # Every URL is served.
    for url in [*urls.values(), root.find(f"{OFFICE}IconUrl").get("DefaultValue")]:  # type: ignore[union-attr]
        assert httpx.get(str(url), timeout=30).status_code == 200, url


def test_the_manifest_names_the_public_address_behind_a_proxy(server: str) -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "conveyor.example.org"}
    text = httpx.get(f"{server}manifest.xml", headers=headers, timeout=30).text
    public = "https://conveyor.example.org/apps/pricer/"
    assert f'DefaultValue="{public}functions.js"' in text
    assert "127.0.0.1" not in text
    script = httpx.get(f"{server}functions.js", headers=headers, timeout=30).text
    assert f'var BASE = "{public}";' in script
    # The id is the same on every server and every run: it is made from the name.
    assert addin_id(ADDIN) == addin_id(Addin("Test Pricer", "another description"))
    assert addin_id(ADDIN) != addin_id(Addin("Other", ""))
    assert manifest_xml(ADDIN, public) == manifest_xml(ADDIN, public[:-1])


def test_the_functions_metadata_follows_the_custom_functions_schema(server: str) -> None:
    metadata = httpx.get(f"{server}functions.json", timeout=30).json()
    assert metadata == functions_metadata(ADDIN)
    functions = {f["id"]: f for f in metadata["functions"]}
    assert list(functions) == [
        "ADD",
        "SCALE",
        "FAIL",
        "LIAR",
        "ASYNC_ADD",
        "TICK",
        "COUNTDOWN",
        "CRUNCH",
    ]
    assert functions["ADD"] == {
        "id": "ADD",
        "name": "ADD",
        "description": "Adds two numbers a plus b",
        "parameters": [
            {"name": "a", "type": "number", "dimensionality": "scalar"},
            {"name": "b", "type": "number", "dimensionality": "scalar", "optional": True},
        ],
        "result": {"type": "number", "dimensionality": "scalar"},
    }
    assert functions["SCALE"]["parameters"][0] == {
        "name": "grid",
        "type": "any",
        "dimensionality": "matrix",
    }
    assert functions["SCALE"]["result"] == {"type": "any", "dimensionality": "matrix"}
    assert functions["TICK"]["options"] == {"stream": True}
    assert [p["name"] for p in functions["TICK"]["parameters"]] == ["start"]
    assert functions["COUNTDOWN"]["options"] == {"stream": True}
    assert functions["CRUNCH"]["options"] == {"stream": True}
    assert functions["CRUNCH"]["result"]["type"] == "any"
    for function in metadata["functions"]:
        assert set(function) <= {"id", "name", "description", "parameters", "result", "options"}
        assert function["id"].replace("_", "").isalnum()
        assert function["result"]["dimensionality"] in ("scalar", "matrix")
        for parameter in function["parameters"]:
            assert parameter["type"] in ("number", "string", "boolean", "any")
            assert parameter["dimensionality"] in ("scalar", "matrix")
        options = function.get("options", {})
        assert not (options.get("stream") and options.get("volatile"))


def test_the_script_associates_every_function(server: str, tmp_path: Path) -> None:
    response = httpx.get(f"{server}functions.js", timeout=30)
    assert response.headers["content-type"].startswith("text/javascript")
    script = response.text
    assert f'var BASE = "{server}";' in script
    for name, call in [
        ("ADD", 'function (a, b) { return call("add", [a, b], false); }'),
        ("SCALE", 'function (grid, k) { return call("scale", [grid, k], true); }'),
        ("TICK", 'function (start, invocation) { stream("tick", [start], invocation, false); }'),
        ("CRUNCH", "function (steps, invocation) { stream("),
    ]:
        assert f'CustomFunctions.associate("{name}", {call}' in script
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the script's syntax is not checked")
    path = tmp_path / "functions.js"
    path.write_text(script)
    checked = subprocess.run([node, "--check", str(path)], capture_output=True, timeout=60)
    assert checked.returncode == 0, checked.stderr.decode()


def test_the_page_icons_and_health_are_served(server: str) -> None:
    page = httpx.get(f"{server}taskpane.html", timeout=30)
    assert f'<script src="{server}functions.js"></script>' in page.text
    assert "<code>=TESTPRICER.ADD(a, b)</code> Adds two numbers" in page.text
    for size in (32, 80):
        icon = httpx.get(f"{server}icon-{size}.png", timeout=30)
        assert icon.content.startswith(b"\x89PNG\r\n\x1a\n")
        assert int.from_bytes(icon.content[16:20], "big") == size
    assert httpx.get(f"{server}health", timeout=30).text == "ok"


def test_it_answers_below_its_base_path_too(server: str) -> None:
    """A proxy that forwards the path below ``/apps/<name>`` reaches it as well, and
    the URLs it hands Excel carry the prefix the proxy names."""
    root = server.removesuffix(BASE_PATH + "/")
    assert httpx.get(f"{root}/health", timeout=30).text == "ok"
    assert _post(root + "/", "add", {"args": [1, 2]}).json() == {"result": 3.0}
    headers = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "conveyor.example.org",
        "X-Forwarded-Prefix": "/apps/pricer",
    }
    text = httpx.get(f"{root}/manifest.xml", headers=headers, timeout=30).text
    assert 'DefaultValue="https://conveyor.example.org/apps/pricer/functions.json"' in text
    bare = httpx.get(f"{root}/functions.js", timeout=30).text
    assert f'var BASE = "{root}/";' in bare


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


SERVE_WORKLOAD = (
    "import sys; from conveyor.execution.addin_server import serve_addin; "
    "from examples.excel_addin import pricer; serve_addin(pricer, int(sys.argv[1]))"
)


@pytest.mark.parametrize("how", ["command", "workload"])
def test_the_example_addin_is_served_by_its_own_process(how: str) -> None:
    port = _free_port()
    if how == "command":
        launch = addin_command("examples.excel_addin:addin", port, BASE_PATH, sys.executable)
        assert launch.argv[1:3] == ["-m", "conveyor.execution.addin_server"]
        argv = launch.argv
    else:
        argv = [sys.executable, "-c", SERVE_WORKLOAD, str(port)]
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}{BASE_PATH}/"
    try:

        def healthy() -> bool:
            if process.poll() is not None:
                raise AssertionError(process.stderr.read().decode() if process.stderr else "")
            try:
                return httpx.get(f"{base}health", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, 60, "the example add-in to answer")
        price = _post(base, "black_scholes", {"args": [100, 100, 0.2, 0.0, 1]}).json()["result"]
        assert price == pytest.approx(7.9656, abs=1e-3)
        bad = _post(base, "black_scholes", {"args": [100, "high", 0.2, 0.0, 1]})
        assert bad.status_code == 422
        assert "argument strike wants float, got str" in bad.json()["error"]
        with _ws(base) as ws:
            ws.send(json.dumps({"id": 1, "function": "walk", "args": [100, 3]}))
            kinds = [_receive(ws)["type"] for _ in range(4)]
        assert kinds == ["value", "value", "value", "end"]
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
        if process.stderr:
            process.stderr.close()


def test_an_excel_addin_entrypoint_that_is_not_an_addin() -> None:
    ports: list[int] = []
    serve_addin(ExcelAddin("own", ports.append), 4321)  # Datatailr's style: it serves itself
    assert ports == [4321]
    with pytest.raises(ConfigError, match="entrypoint 'no_such_module_zz:addin' cannot be loaded"):
        serve_addin(ExcelAddin("missing", "no_such_module_zz:addin"), 1)
    with pytest.raises(ConfigError, match="is neither an Addin nor a function of the port"):
        serve_addin(ExcelAddin("odd", "tests.execution.test_addin:BASE_PATH"), 1)
