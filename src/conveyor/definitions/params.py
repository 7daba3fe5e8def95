"""How a task's or job's parameters are filled: upstream data, config, resources or context."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from conveyor.definitions.config import Config, RawConfig
from conveyor.definitions.context import RunContext
from conveyor.errors import DefinitionError


class ParamKind(StrEnum):
    """What fills a parameter when nothing is passed for it explicitly."""

    VALUE = "value"  # an upstream output, a constant, a resource, or job config
    CONFIG = "config"  # a Config subclass filled from run config
    CONTEXT = "context"  # the RunContext / TaskContext


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a user function, classified once at decoration time."""

    name: str
    kind: ParamKind
    annotation: Any
    default: Any
    variadic: bool

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty and not self.variadic


def definition_locals() -> dict[str, Any]:
    """The local names where the user's decorator call stands.

    With ``from __future__ import annotations`` an annotation is a string; a
    class defined inside a function (a test, a factory) is found only among
    that function's locals, so the decorators pass them on.
    """
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("conveyor."):
        frame = frame.f_back  # type: ignore[assignment]
    return dict(frame.f_locals) if frame is not None else {}


def _resolve(annotation: Any, fn: Callable[..., Any], localns: dict[str, Any]) -> Any:
    if not isinstance(annotation, str):
        return annotation
    try:
        return eval(annotation, getattr(fn, "__globals__", {}), localns)
    except Exception:
        # Unresolvable names stay strings; context types are still found by name.
        return annotation


def _is_context(name: str, annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, RunContext):
        return True
    if isinstance(annotation, str) and annotation.rsplit(".", 1)[-1] in (
        "RunContext",
        "TaskContext",
    ):
        return True
    return name == "context" and annotation is inspect.Parameter.empty


def _is_plain_dict(annotation: Any) -> bool:
    """``dict``, ``dict[str, Any]``, ``Mapping[str, Any]`` (or their names as strings)."""
    import typing
    from collections.abc import Mapping

    origin = typing.get_origin(annotation) or annotation
    if isinstance(origin, str):
        return origin.split("[", 1)[0].rsplit(".", 1)[-1] in ("dict", "Dict", "Mapping")
    return origin in (dict, Mapping, typing.Dict, typing.Mapping)  # noqa: UP006


def classify_params(
    fn: Callable[..., Any], owner: str, localns: dict[str, Any] | None = None
) -> tuple[Param, ...]:
    """Classify the parameters of ``fn``; ``owner`` names it in errors."""
    params = []
    config_params = []
    for p in inspect.signature(fn).parameters.values():
        variadic = p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        annotation = _resolve(p.annotation, fn, localns or {})
        if _is_context(p.name, annotation):
            kind = ParamKind.CONTEXT
        elif isinstance(annotation, type) and issubclass(annotation, Config):
            kind = ParamKind.CONFIG
            config_params.append(p.name)
        elif p.name == "config" and _is_plain_dict(annotation):
            # Dagster's untyped ``config: dict``: any fields, handed over as a dict.
            kind, annotation = ParamKind.CONFIG, RawConfig
            config_params.append(p.name)
        else:
            kind = ParamKind.VALUE
        params.append(Param(p.name, kind, annotation, p.default, variadic))
    if len(config_params) > 1:
        raise DefinitionError(
            f"{owner} has {len(config_params)} Config parameters ({', '.join(config_params)}); "
            f"use one Config class with nested models instead"
        )
    return tuple(params)


def config_param(params: tuple[Param, ...]) -> Param | None:
    """The parameter filled from run config, if any."""
    for p in params:
        if p.kind is ParamKind.CONFIG:
            return p
    return None
