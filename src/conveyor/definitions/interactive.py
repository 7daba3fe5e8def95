"""Interactive jobs (dlt's ``@interactive``): a GUI, a REST API or an MCP server that
starts when its URL is first requested and stops after ``idle_timeout`` without
traffic.

``@interactive`` turns a function into an ``Interactive`` workload. The function
gets an ``InteractiveContext`` (its ``port`` and ``base_path``) and either serves
on the port itself until it is stopped, or returns what Conveyor serves for it: a
FastMCP server (at ``<base_path>/mcp``) or an ASGI app. ``Interactive(name,
"notebook.py")`` names a module directly: a marimo notebook, a Streamlit script,
or a module holding a FastMCP server.

Each start is a run of its own (trigger ``request`` or ``manual``), with the
process's output as its logs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, overload

from conveyor.definitions.durations import parse_duration
from conveyor.definitions.execute import ExecuteOptions
from conveyor.definitions.keys import check_keys
from conveyor.definitions.workloads import Workload, check_named_entrypoint
from conveyor.errors import ConfigError, DefinitionError

INTERFACES = ("gui", "rest_api", "mcp")
_EXPOSE_KEYS = ("tags", "starred", "manual")


@dataclass(frozen=True, slots=True)
class InteractiveContext:
    """What an interactive job's function is given when it starts.

    Attributes:
        name: the workload's name.
        run_id: the run this start is.
        port: the loopback port to serve on (``127.0.0.1``).
        base_path: where the proxy serves it (``/apps/<name>``); requests arrive
            with this prefix on their path.
        interface: ``gui``, ``rest_api`` or ``mcp``.
        host: the address to bind: always ``127.0.0.1``.
    """

    name: str
    run_id: str | None
    port: int
    base_path: str
    interface: str
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        """Where the job serves, as its own process reaches it."""
        return f"http://{self.host}:{self.port}{self.base_path}/"


@dataclass(frozen=True, slots=True)
class Expose:
    """How an interactive job is shown (dlt's ``expose=``).

    Attributes:
        tags: labels to group it by in the UI.
        starred: shown first.
        manual: whether a person may start it from the UI or the CLI (a request
            to its URL always starts it).
    """

    tags: tuple[str, ...] = ()
    starred: bool = False
    manual: bool = True

    @classmethod
    def parse(cls, value: Mapping[str, Any] | None, owner: str) -> Expose:
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise DefinitionError(f"{owner}: expose must be a dict, e.g. {{'tags': ['pricing']}}")
        check_keys(value, _EXPOSE_KEYS, owner, "expose option")
        tags = value.get("tags", ())
        if isinstance(tags, str) or not isinstance(tags, Sequence):
            raise DefinitionError(f"{owner}: expose tags={tags!r} must be a list of strings")
        for tag in tags:
            if not isinstance(tag, str) or not tag.strip():
                raise DefinitionError(f"{owner}: expose tag {tag!r} must be a non-empty string")
        for key in ("starred", "manual"):
            if key in value and not isinstance(value[key], bool):
                raise DefinitionError(f"{owner}: expose {key}={value[key]!r} must be True or False")
        return cls(
            tags=tuple(tags),
            starred=bool(value.get("starred", False)),
            manual=bool(value.get("manual", True)),
        )

    def as_dict(self) -> dict[str, Any]:
        return {"tags": list(self.tags), "starred": self.starred, "manual": self.manual}


@dataclass(frozen=True, eq=False, repr=False)
class Interactive(Workload):
    """An interactive job: started on demand at ``/apps/<name>/``, stopped when idle.

    Attributes:
        entrypoint: a function taking an ``InteractiveContext`` (or nothing),
            ``"module:attr"`` naming one, a FastMCP server or an ASGI app, or a
            module name or ``.py`` file (a marimo notebook, a Streamlit script, a
            module holding a FastMCP server).
        interface: ``"gui"`` (a page for people), ``"rest_api"`` or ``"mcp"``
            (an MCP server for agents, at ``/apps/<name>/mcp``).
        idle_timeout: stopped after this long without a request (seconds or
            ``"30m"``); ``None``: it runs until stopped.
        execute: ``{"timeout": "8h"}``: the longest one start may run, busy or
            not. Only one copy runs at a time (``concurrency`` is 1).
        expose: ``{"tags": [...], "starred": bool, "manual": bool}``.
    """

    kind: ClassVar[str] = "interactive"

    entrypoint: Any
    restart: str = field(default="never", kw_only=True)
    interface: str = field(default="gui", kw_only=True)
    idle_timeout: float | str | None = field(default=None, kw_only=True)
    execute: Mapping[str, Any] | None = field(default=None, kw_only=True)
    expose: Mapping[str, Any] | Expose | None = field(default=None, kw_only=True)
    idle_seconds: float | None = field(default=None, init=False)
    timeout_seconds: float | None = field(default=None, init=False)
    exposed: Expose = field(default_factory=Expose, init=False)

    def __post_init__(self) -> None:
        owner = f"Interactive({self.name!r})"
        if self.restart != "never":
            raise DefinitionError(
                f"{owner}: restart={self.restart!r}: an interactive job is not restarted; "
                f"it starts again on its next request (leave restart out)"
            )
        super().__post_init__()
        if self.interface not in INTERFACES:
            raise DefinitionError(
                f"{owner}: interface={self.interface!r} must be one of {', '.join(INTERFACES)}"
            )
        if self.idle_timeout is not None:
            try:
                idle = parse_duration(self.idle_timeout, what="idle_timeout")
            except ConfigError as e:
                raise DefinitionError(f"{owner}: {e}") from None
            if idle <= 0:
                raise DefinitionError(
                    f"{owner}: idle_timeout={self.idle_timeout!r} must be more than 0 "
                    f"(leave it out to keep it running)"
                )
            object.__setattr__(self, "idle_seconds", idle)
        options = ExecuteOptions.parse(self.execute, owner)
        if options.concurrency != 1:
            raise DefinitionError(
                f"{owner}: execute concurrency={options.concurrency!r}: one copy of an "
                f"interactive job runs at a time (leave concurrency out)"
            )
        if options.retries:
            raise DefinitionError(
                f"{owner}: execute retries: an interactive job starts again on its next "
                f"request, not by retries (leave retries out)"
            )
        object.__setattr__(self, "timeout_seconds", options.timeout)
        exposed = (
            self.expose if isinstance(self.expose, Expose) else Expose.parse(self.expose, owner)
        )
        object.__setattr__(self, "exposed", exposed)

    def _check_entrypoint(self, owner: str) -> None:
        entry = self.entrypoint
        check_named_entrypoint(entry, owner, "a function")
        if isinstance(entry, str):
            return
        if inspect.isfunction(entry) or inspect.ismethod(entry):
            try:
                params = list(inspect.signature(entry).parameters.values())
            except ValueError:
                return
            required = [
                p
                for p in params
                if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            ]
            if len(required) > 1 or any(p.kind is p.KEYWORD_ONLY for p in required):
                names = ", ".join(p.name for p in required)
                raise DefinitionError(
                    f"{owner}: the function takes ({names}); an interactive job's function "
                    f"takes its run_context alone, or nothing"
                )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function itself (as in a test), when the entrypoint is one."""
        if not callable(self.entrypoint) or isinstance(self.entrypoint, str):
            raise TypeError(f"Interactive({self.name!r}): its entrypoint is not a function")
        return self.entrypoint(*args, **kwargs)

    def spec(self) -> dict[str, Any]:
        return {
            **super().spec(),
            "interface": self.interface,
            "idle_timeout": self.idle_seconds,
            "timeout": self.timeout_seconds,
            "expose": self.exposed.as_dict(),
        }


@overload
def interactive(func: Callable[..., Any], /) -> Interactive: ...


@overload
def interactive(
    func: None = None,
    /,
    *,
    name: str | None = None,
    interface: str = "gui",
    idle_timeout: float | str | None = None,
    execute: Mapping[str, Any] | None = None,
    expose: Mapping[str, Any] | None = None,
    description: str | None = None,
    cpu: float | None = None,
    memory: str | int | None = None,
    env_vars: Mapping[str, str] | None = None,
    health: str | None = None,
    access: Any = None,
) -> Callable[[Callable[..., Any]], Interactive]: ...


def interactive(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    interface: str = "gui",
    idle_timeout: float | str | None = None,
    execute: Mapping[str, Any] | None = None,
    expose: Mapping[str, Any] | None = None,
    description: str | None = None,
    cpu: float | None = None,
    memory: str | int | None = None,
    env_vars: Mapping[str, str] | None = None,
    health: str | None = None,
    access: Any = None,
) -> Interactive | Callable[[Callable[..., Any]], Interactive]:
    """Make a function an interactive job (dlt's ``@interactive``).

    The function gets an ``InteractiveContext`` and serves on ``context.port``
    until it is stopped, or returns a FastMCP server or an ASGI app for Conveyor
    to serve. The job is not running until its URL (``/apps/<name>/``) is first
    requested, or it is started from the UI or ``conveyor services start``; it is
    stopped after ``idle_timeout`` without a request.
    """

    def make(fn: Callable[..., Any]) -> Interactive:
        if not callable(fn):
            raise DefinitionError(f"@interactive decorates a function, not {fn!r}")
        doc = inspect.getdoc(fn)
        return Interactive(
            name or str(getattr(fn, "__name__", "")),
            fn,
            interface=interface,
            idle_timeout=idle_timeout,
            execute=execute,
            expose=expose,
            description=description or (doc.splitlines()[0] if doc else None),
            cpu=cpu,
            memory=memory,
            env_vars=dict(env_vars or {}),
            health=health,
            access=access,
        )

    if func is not None:
        return make(func)
    return make
