"""Interactive jobs as declared: ``@interactive`` and ``Interactive`` check their options when
they are made, naming the job and the fix, and a workspace collects them as workloads."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from conveyor import DefinitionError, Interactive, InteractiveContext, interactive
from conveyor.definitions.interactive import Expose
from conveyor.workspace import load_file


def board(context: InteractiveContext) -> None:
    pass


def test_the_decorator_makes_an_interactive_job_with_its_options_in_its_spec() -> None:
    @interactive(
        interface="mcp",
        idle_timeout="30m",
        execute={"timeout": "8h"},
        expose={"tags": ["pricing"], "starred": True},
        env_vars={"MODEL": "v2"},
    )
    def tools(context: InteractiveContext) -> None:
        """Pricing tools for agents.

        More text that is not the description.
        """

    assert isinstance(tools, Interactive)
    assert tools.kind == "interactive"
    assert tools.name == "tools"
    assert tools.base_path == "/apps/tools"
    assert tools.description == "Pricing tools for agents."
    assert tools.restart == "never"
    assert (tools.idle_seconds, tools.timeout_seconds) == (1800.0, 28800.0)
    assert tools.exposed == Expose(tags=("pricing",), starred=True, manual=True)
    spec = tools.spec()
    assert spec["interface"] == "mcp"
    assert spec["idle_timeout"] == 1800.0
    assert spec["timeout"] == 28800.0
    assert spec["expose"] == {"tags": ["pricing"], "starred": True, "manual": True}
    assert spec["env_vars"] == {"MODEL": "v2"}
    assert repr(tools).startswith("<Interactive tools (")


def test_defaults_a_gui_that_runs_until_stopped_and_calling_it_calls_the_function() -> None:
    seen: list[Any] = []

    @interactive
    def page(context: InteractiveContext) -> str:
        seen.append(context)
        return "served"

    assert (page.interface, page.idle_seconds, page.timeout_seconds) == ("gui", None, None)
    assert page.exposed == Expose()
    context = InteractiveContext("page", None, 8000, "/apps/page", "gui")
    assert page(context) == "served"
    assert seen == [context]
    assert context.url == "http://127.0.0.1:8000/apps/page/"


@pytest.mark.parametrize(
    "entrypoint", ["notebook.py", "tools_module", "pkg.tools:server", "dashboards/board.py"]
)
def test_a_module_a_file_or_a_reference_may_be_named_directly(entrypoint: str) -> None:
    job = Interactive("named", entrypoint, idle_timeout=60)
    assert job.entrypoint == entrypoint
    assert job.idle_seconds == 60
    with pytest.raises(TypeError, match="its entrypoint is not a function"):
        job()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"interface": "web"}, r"interface='web' must be one of gui, rest_api, mcp"),
        (
            {"idle_timeout": "3 parsecs"},
            r"invalid idle_timeout '3 parsecs': unknown unit 'parsecs'",
        ),
        ({"idle_timeout": -1}, r"invalid idle_timeout -1: must be a finite number of seconds >= 0"),
        ({"idle_timeout": 0}, r"idle_timeout=0 must be more than 0 \(leave it out"),
        ({"restart": "always"}, r"restart='always': an interactive job is not restarted"),
        ({"execute": {"concurrency": 2}}, r"execute concurrency=2: one copy .* runs at a time"),
        ({"execute": {"retries": 3}}, r"execute retries: .* not by retries"),
        ({"execute": {"timeout": "soon"}}, r"invalid execute timeout 'soon'"),
        ({"execute": {"tiemout": "1h"}}, r"unknown execute option\(s\) 'tiemout'"),
        ({"expose": {"colour": "red"}}, r"unknown expose option\(s\) 'colour'; known: tags"),
        ({"expose": ["pricing"]}, r"expose must be a dict"),
        ({"expose": {"tags": "pricing"}}, r"expose tags='pricing' must be a list of strings"),
        ({"expose": {"tags": ["ok", ""]}}, r"expose tag '' must be a non-empty string"),
        ({"expose": {"starred": "yes"}}, r"expose starred='yes' must be True or False"),
        ({"expose": {"manual": 1}}, r"expose manual=1 must be True or False"),
    ],
)
def test_bad_options_are_refused_naming_the_job_and_the_fix(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(DefinitionError, match=r"Interactive\('board'\): " + message):
        Interactive("board", board, **options)


def test_a_function_taking_two_required_parameters_is_refused() -> None:
    def two(context: InteractiveContext, other: int) -> None: ...

    with pytest.raises(DefinitionError, match=r"takes \(context, other\); .* run_context alone"):
        interactive(two)

    def keyword(*, context: InteractiveContext) -> None: ...

    with pytest.raises(DefinitionError, match=r"takes \(context\)"):
        interactive(keyword)

    def optional(context: InteractiveContext, retries: int = 3, *rest: Any) -> None: ...

    def nothing() -> None: ...

    assert interactive(optional).name == "optional"
    assert interactive(nothing).name == "nothing"


@pytest.mark.parametrize(
    ("entrypoint", "message"),
    [
        (42, "not 42"),
        (None, "not None"),
        ("not a module!", "must be 'module:attr', a module name, a .py file, or a function"),
        (".py", "must be 'module:attr', a module name, a .py file, or a function"),
    ],
)
def test_bad_entrypoints_are_refused(entrypoint: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        Interactive("x", entrypoint)


def test_decorating_something_that_is_not_a_function_is_refused() -> None:
    with pytest.raises(DefinitionError, match="decorates a function, not 42"):
        interactive(name="x")(42)  # type: ignore[arg-type]


def test_a_bad_name_is_refused_as_for_every_workload() -> None:
    with pytest.raises(DefinitionError, match="a workload name is 1-64 letters"):
        Interactive("no spaces", board)


def test_a_workspace_collects_interactive_jobs_as_workloads(tmp_path: Path) -> None:
    file = tmp_path / "ws.py"
    file.write_text(
        textwrap.dedent(
            """
            from conveyor import Interactive, interactive

            @interactive(interface="rest_api", idle_timeout="1h")
            def api(context):
                pass

            notebook = Interactive("notebook", "notebook.py", expose={"tags": ["research"]})
            """
        )
    )
    ws = load_file(file)
    assert sorted(ws.workloads) == ["api", "notebook"]
    api = ws.workload("api")
    assert isinstance(api, Interactive)
    assert (api.interface, api.idle_seconds) == ("rest_api", 3600.0)
    notebook = ws.workload("notebook")
    assert isinstance(notebook, Interactive)
    assert notebook.exposed.tags == ("research",)
