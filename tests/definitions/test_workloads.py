"""Service and App: their options are checked when they are made, and a workspace
collects them."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conveyor import App, DefinitionError, Service, WorkspaceError
from conveyor.definitions.access import Permission
from conveyor.workspace import load_file, load_folder


def serve(port: int) -> None:
    pass


def test_a_service_records_its_options_as_a_json_spec() -> None:
    s = Service(
        "pricer",
        serve,
        description="prices",
        cpu=0.5,
        memory="512Mi",
        env_vars={"MODEL": "v2"},
        restart="on-failure",
        health="/health",
        access={"alice": ["access"], "group:quants": "read,access"},
    )
    assert s.kind == "service"
    assert s.base_path == "/apps/pricer"
    assert s.memory_bytes == 512 * 2**20
    assert s.access_list is not None
    assert s.access_list.permissions("bob", ["quants"]) == {Permission.READ, Permission.ACCESS}
    assert s.spec() == {
        "entrypoint": f"{__name__}:serve",
        "description": "prices",
        "cpu": 0.5,
        "memory": 512 * 2**20,
        "env_vars": {"MODEL": "v2"},
        "restart": "on-failure",
        "health": "/health",
        "access": {"group:quants": ["access", "read"], "user:alice": ["access"]},
    }
    assert repr(s) == f"<Service pricer ({__name__}:serve)>"
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.name = "other"  # type: ignore[misc]


def test_defaults_and_a_string_entrypoint() -> None:
    s = Service("api", "pricing.app:serve")
    assert (s.restart, s.health, s.memory_bytes, s.access, s.env_vars) == (
        "always",
        None,
        None,
        None,
        {},
    )
    assert s.spec()["entrypoint"] == "pricing.app:serve"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"restart": "sometimes"}, "restart='sometimes' must be one of always, on-failure, never"),
        ({"memory": "12XB"}, "invalid memory '12XB'"),
        ({"memory": 0}, "must be more than 0 bytes"),
        ({"memory": "lots"}, "invalid memory 'lots'"),
        ({"cpu": -1}, "cpu=-1 must be more than 0 cores"),
        ({"cpu": 0}, "cpu=0 must be more than 0 cores"),
        ({"cpu": "2"}, "cpu='2' must be a number of cores"),
        ({"cpu": True}, "cpu=True must be a number of cores"),
        ({"health": "health"}, "health='health' must be an HTTP path such as '/health'"),
        ({"health": "/he alth"}, "must be an HTTP path"),
        ({"health": "http://x/health"}, "must be an HTTP path"),
        ({"env_vars": {"A": 1}}, r"env_vars\['A'\]=1 must be a string"),
        ({"env_vars": {"A=B": "1"}}, "env_vars name 'A=B' is not a variable name"),
        ({"env_vars": ["A"]}, "env_vars must be a dict"),
        ({"access": {"alice": ["fly"]}}, "unknown permission 'fly'"),
        ({"access": ["alice"]}, "access must be a dict"),
        ({"description": 3}, "description must be a string"),
    ],
)
def test_bad_options_are_refused_naming_the_service_and_the_fix(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(DefinitionError, match=message) as e:
        Service("pricer", serve, **options)
    assert "Service('pricer')" in str(e.value)


@pytest.mark.parametrize(
    ("name", "entrypoint", "message"),
    [
        ("bad name", serve, "a workload name is 1-64 letters"),
        ("", serve, "a workload name"),
        ("../etc", serve, "a workload name"),
        ("a/b", serve, "a workload name"),
        ("x" * 65, serve, "a workload name"),
        (3, serve, "a workload name"),
        ("ok", 3, "entrypoint must be a callable or 'module:attr', not int"),
        ("ok", "pricing", "entrypoint 'pricing' must be a callable or 'module:attr'"),
        ("ok", "pricing:", "must be a callable or 'module:attr'"),
        ("ok", "1x:serve", "must be a callable or 'module:attr'"),
        ("ok", lambda: None, "must take the port as its one argument"),
        ("ok", lambda a, b: None, "must take the port as its one argument"),
    ],
)
def test_bad_names_and_entrypoints_are_refused(name: Any, entrypoint: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        Service(name, entrypoint)


def test_an_entrypoint_that_takes_the_port_among_defaults_is_fine() -> None:
    Service("ok", lambda port, host="127.0.0.1": None)
    Service("ok2", print)  # no signature to read: trusted


def test_an_app_takes_a_framework_and_other_kinds_of_entrypoint() -> None:
    a = App("board", "dashboards/board.py", framework="streamlit")
    assert a.kind == "app"
    assert a.spec()["framework"] == "streamlit"
    assert App("flaskapp", "web.app:app").framework is None
    assert App("mod", "web.board").entrypoint == "web.board"

    class Dash:  # an app object that is not callable
        pass

    assert App("obj", Dash()).spec()["entrypoint"].endswith("Dash")
    with pytest.raises(DefinitionError, match="framework='django' must be one of streamlit"):
        App("x", "web:app", framework="django")
    with pytest.raises(DefinitionError, match=r"must be 'module:attr', a module name, a \.py"):
        App("x", "not a module")
    with pytest.raises(DefinitionError, match="must be the app object"):
        App("x", None)
    with pytest.raises(DefinitionError, match="restart='no'"):
        App("x", "web:app", restart="no")


def test_a_workspace_collects_its_services_and_apps(tmp_path: Path) -> None:
    (tmp_path / "svc.py").write_text(
        textwrap.dedent(
            """
            from conveyor import App, Service, job

            def serve(port):
                pass

            pricer = Service("pricer", serve)
            alias = pricer
            board = App("board", "board.py")

            @job
            def nightly():
                return 1
            """
        )
    )
    ws = load_file(tmp_path / "svc.py")
    assert sorted(ws.workloads) == ["board", "pricer"]
    assert list(ws.jobs) == ["nightly"]
    assert ws.workload("pricer").kind == "service"
    with pytest.raises(LookupError, match="no service or app 'nope'; its workloads: board, pricer"):
        ws.workload("nope")


def test_two_workloads_with_one_name_are_refused(tmp_path: Path) -> None:
    body = "from conveyor import Service\n{var} = Service('pricer', 'm:serve')\n"
    (tmp_path / "one.py").write_text(body.format(var="a") + body.format(var="b"))
    with pytest.raises(WorkspaceError, match="two workloads are named 'pricer'"):
        load_file(tmp_path / "one.py")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.py").write_text(body.format(var="a"))
    (folder / "b.py").write_text(body.format(var="b").replace("m:serve", "other:serve"))
    with pytest.raises(WorkspaceError, match="two workloads are named 'pricer'"):
        load_folder(folder)


def test_a_folder_workspace_counts_an_imported_workload_once(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("from conveyor import Service\nsvc = Service('s', 'm:serve')\n")
    (tmp_path / "b.py").write_text("from a import svc\n")
    ws = load_folder(tmp_path)
    assert list(ws.workloads) == ["s"]


def test_a_folder_workspace_counts_a_workload_imported_with_a_callable_once(
    tmp_path: Path,
) -> None:
    (tmp_path / "c.py").write_text(
        "from conveyor import Service\ndef serve(port):\n    pass\nsvc = Service('s2', serve)\n"
    )
    (tmp_path / "d.py").write_text("from c import svc\n")
    ws = load_folder(tmp_path)
    assert list(ws.workloads) == ["s2"]
