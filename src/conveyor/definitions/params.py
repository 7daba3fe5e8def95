"""How a task's or job's parameters are filled: upstream data, config, resources or context."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from conveyor.definitions.config import Config
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


def _resolved_signature(fn: Callable[..., Any]) -> inspect.Signature:
    try:
        return inspect.signature(fn, eval_str=True)
    except Exception:
        # Annotations that name local classes cannot be evaluated; fall back to
        # the raw strings and recognise the context types by name below.
        return inspect.signature(fn)


def _is_context(name: str, annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, RunContext):
        return True
    if isinstance(annotation, str) and annotation.rsplit(".", 1)[-1] in (
        "RunContext",
        "TaskContext",
    ):
        return True
    return name == "context" and annotation is inspect.Parameter.empty


def classify_params(fn: Callable[..., Any], owner: str) -> tuple[Param, ...]:
    """Classify the parameters of ``fn``; ``owner`` names it in errors."""
    params = []
    config_params = []
    for p in _resolved_signature(fn).parameters.values():
        variadic = p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        annotation = p.annotation
        if _is_context(p.name, annotation):
            kind = ParamKind.CONTEXT
        elif isinstance(annotation, type) and issubclass(annotation, Config):
            kind = ParamKind.CONFIG
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
