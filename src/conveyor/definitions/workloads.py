"""Long-running workloads as the user declares them: a ``Service`` that serves HTTP on
the port it is given, an ``App`` run under its framework's server.

These are pure values, checked when they are made (so a workspace with a bad one
fails to load, naming the workload and the fix); the supervisor in the daemon
runs them and ``spec()`` is what it records in storage.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from conveyor.definitions.access import AccessList, parse_access
from conveyor.definitions.durations import parse_memory
from conveyor.errors import ConfigError, DefinitionError

RESTART_POLICIES = ("always", "on-failure", "never")
FRAMEWORKS = ("streamlit", "dash", "panel", "flask", "fastapi", "asgi", "wsgi")
# A name is part of a URL (/apps/<name>/) and of a folder name (workloads/<name>/).
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
MODULE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")
HEALTH_PATH = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$")


@dataclass(frozen=True, eq=False)
class Workload:
    """A process the supervisor keeps running, reached at ``/apps/<name>/``.

    Attributes:
        name: unique among the workspace's workloads; letters, digits, ``-`` and
            ``_`` (it is part of the URL ``/apps/<name>/``).
        entrypoint: what runs: a callable, or ``"module:attr"`` naming one.
        description: one line shown in the UI and ``conveyor services list``.
        cpu: cores it needs (more than 0), for placement; not enforced.
        memory: its memory limit, as bytes or ``"512Mi"``/``"2g"``: the supervisor
            restarts it when its process tree's RSS goes over it.
        env_vars: added to its environment.
        restart: ``"always"`` (the default), ``"on-failure"`` (not after exit
            code 0) or ``"never"``.
        health: an HTTP path (``"/health"``) that answers 2xx or 3xx when it is
            healthy; ``None``: only whether the process is alive counts.
        access: who may reach it (``{"alice": ["access"], "group:quants": ["read",
            "access"]}``), as ``@job(access=...)``; ``None``: the instance roles.
    """

    kind: ClassVar[str] = "workload"

    name: str
    entrypoint: Callable[..., Any] | str
    description: str | None = field(default=None, kw_only=True)
    cpu: float | None = field(default=None, kw_only=True)
    memory: str | int | None = field(default=None, kw_only=True)
    env_vars: Mapping[str, str] = field(default_factory=dict, kw_only=True)
    restart: str = field(default="always", kw_only=True)
    health: str | None = field(default=None, kw_only=True)
    access: AccessList | Mapping[str, Any] | None = field(default=None, kw_only=True)
    memory_bytes: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        owner = f"{type(self).__name__}({self.name!r})"
        if not isinstance(self.name, str) or NAME.fullmatch(self.name) is None:
            raise DefinitionError(
                f"{type(self).__name__}(name={self.name!r}): a workload name is 1-64 letters, "
                f"digits, '-' or '_', starting with a letter or digit (it is part of its URL)"
            )
        self._check_entrypoint(owner)
        if self.description is not None and not isinstance(self.description, str):
            raise DefinitionError(f"{owner}: description must be a string")
        if self.cpu is not None:
            if isinstance(self.cpu, bool) or not isinstance(self.cpu, int | float):
                raise DefinitionError(f"{owner}: cpu={self.cpu!r} must be a number of cores")
            if not self.cpu > 0:
                raise DefinitionError(f"{owner}: cpu={self.cpu!r} must be more than 0 cores")
        if self.memory is not None:
            try:
                object.__setattr__(self, "memory_bytes", parse_memory(self.memory))
            except ConfigError as e:
                raise DefinitionError(f"{owner}: {e}") from None
        if not isinstance(self.env_vars, Mapping):
            raise DefinitionError(f"{owner}: env_vars must be a dict of names to strings")
        for key, value in self.env_vars.items():
            if not isinstance(key, str) or not key or "=" in key or "\0" in key:
                raise DefinitionError(f"{owner}: env_vars name {key!r} is not a variable name")
            if not isinstance(value, str):
                raise DefinitionError(
                    f"{owner}: env_vars[{key!r}]={value!r} must be a string (write str(...))"
                )
        object.__setattr__(self, "env_vars", dict(self.env_vars))
        if self.restart not in RESTART_POLICIES:
            raise DefinitionError(
                f"{owner}: restart={self.restart!r} must be one of {', '.join(RESTART_POLICIES)}"
            )
        if self.health is not None and (
            not isinstance(self.health, str) or HEALTH_PATH.fullmatch(self.health) is None
        ):
            raise DefinitionError(
                f"{owner}: health={self.health!r} must be an HTTP path such as '/health'"
            )
        if self.access is not None and not isinstance(self.access, AccessList):
            object.__setattr__(self, "access", parse_access(self.access, owner))

    def _check_entrypoint(self, owner: str) -> None:
        entry = self.entrypoint
        if isinstance(entry, str):
            if REFERENCE.fullmatch(entry) is None:
                raise DefinitionError(
                    f"{owner}: entrypoint {entry!r} must be a callable or 'module:attr', "
                    f"such as 'pricing:serve'"
                )
            return
        if not callable(entry):
            raise DefinitionError(
                f"{owner}: entrypoint must be a callable or 'module:attr', "
                f"not {type(entry).__name__}"
            )
        try:
            inspect.signature(entry).bind(0)
        except TypeError:
            raise DefinitionError(
                f"{owner}: entrypoint {_describe(entry)} must take the port as its one argument"
            ) from None
        except ValueError:
            pass  # no signature to read (a builtin): trust it

    @property
    def access_list(self) -> AccessList | None:
        """``access`` as parsed (it is always an ``AccessList`` or ``None`` once made)."""
        return self.access if isinstance(self.access, AccessList) else None

    @property
    def base_path(self) -> str:
        """Where the server's proxy serves it."""
        return f"/apps/{self.name}"

    def entrypoint_ref(self) -> str:
        """``"module:attr"`` for the entrypoint (best effort for a callable)."""
        entry = self.entrypoint
        if isinstance(entry, str):
            return entry
        return _describe(entry)

    def spec(self) -> dict[str, Any]:
        """What storage records of it (JSON)."""
        access = self.access_list
        return {
            "entrypoint": self.entrypoint_ref(),
            "description": self.description,
            "cpu": self.cpu,
            "memory": self.memory_bytes,
            "env_vars": dict(self.env_vars),
            "restart": self.restart,
            "health": self.health,
            "access": access.as_dict() if access is not None else None,
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} ({self.entrypoint_ref()})>"


@dataclass(frozen=True, eq=False, repr=False)
class Service(Workload):
    """An HTTP service: ``entrypoint(port)`` serves on ``127.0.0.1:port`` until stopped.

    It is also given ``PORT`` and ``CONVEYOR_BASE_PATH`` (``/apps/<name>``) in its
    environment; other code finds it with ``conveyor.services.url(name)``.
    """

    kind: ClassVar[str] = "service"


@dataclass(frozen=True, eq=False, repr=False)
class App(Workload):
    """A web app run under its framework's server, behind the proxy at ``/apps/<name>/``.

    Attributes:
        entrypoint: ``"module:attr"`` naming the app object (Flask, Dash, FastAPI,
            any WSGI or ASGI app), a module name or a ``.py`` file (a Streamlit or
            Panel script), or the app object itself.
        framework: one of streamlit, dash, panel, flask, fastapi, asgi, wsgi;
            ``None``: inferred from the entrypoint module's imports.
    """

    kind: ClassVar[str] = "app"

    entrypoint: Any
    framework: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.framework is not None and self.framework not in FRAMEWORKS:
            raise DefinitionError(
                f"App({self.name!r}): framework={self.framework!r} must be one of "
                f"{', '.join(FRAMEWORKS)}, or None to infer it"
            )

    def _check_entrypoint(self, owner: str) -> None:
        check_named_entrypoint(self.entrypoint, owner, "the app object")

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "framework": self.framework}


def check_named_entrypoint(entry: Any, owner: str, objects: str) -> None:
    """Check an entrypoint that may be ``'module:attr'``, a module name, a ``.py`` file
    or an object (``objects`` says which, for the message); DefinitionError if not."""
    if isinstance(entry, str):
        text = entry.strip()
        if (
            REFERENCE.fullmatch(text) is None
            and MODULE.fullmatch(text) is None
            and not (text.endswith(".py") and len(text) > 3 and "\0" not in text)
        ):
            raise DefinitionError(
                f"{owner}: entrypoint {entry!r} must be 'module:attr', a module name, "
                f"a .py file, or {objects}"
            )
        return
    if entry is None or isinstance(entry, int | float | bool | bytes):
        raise DefinitionError(
            f"{owner}: entrypoint must be {objects}, 'module:attr', a module name "
            f"or a .py file, not {entry!r}"
        )


def _describe(entry: Any) -> str:
    module = getattr(entry, "__module__", None) or "?"
    name = getattr(entry, "__qualname__", None) or getattr(entry, "__name__", None)
    return f"{module}:{name or type(entry).__name__}"
