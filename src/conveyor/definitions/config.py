"""Typed run config: the ``Config`` base and the errors that name a value's full path."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from conveyor.errors import ConfigError


class Config(BaseModel):
    """Base for typed run config.

    A task or job parameter annotated with a subclass is filled from the run
    config under ``tasks.<task key>.config`` (for a task) or ``config`` (for a
    ``@job`` body). Unknown fields are errors, so a typo never passes silently.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


def validation_error(prefix: str, error: ValidationError) -> ConfigError:
    """Turn a pydantic error into a ``ConfigError`` whose lines name full paths.

    ``prefix`` is where the model sits in the run config, e.g.
    ``"tasks.extract.config"``; an error on field ``limit`` then reads
    ``tasks.extract.config.limit: input should be a valid integer``.
    """
    lines = []
    for err in error.errors():
        path = (
            ".".join([prefix, *(str(p) for p in err["loc"])])
            if prefix
            else ".".join(str(p) for p in err["loc"])
        )
        msg = err["msg"]
        msg = msg[:1].lower() + msg[1:]
        if err["type"] == "extra_forbidden":
            msg = "unknown field; remove it or check its spelling"
        lines.append(f"{path or '(config)'}: {msg}")
    return ConfigError("; ".join(lines))


def validate_model(model: type[BaseModel], data: Any, prefix: str) -> BaseModel:
    """Validate ``data`` as ``model``, raising a ``ConfigError`` with full paths."""
    if data is None:
        data = {}
    if isinstance(data, model):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix}: expected a mapping of fields, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise validation_error(prefix, e) from None
