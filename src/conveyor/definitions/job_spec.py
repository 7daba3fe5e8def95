"""dlt's ``spec=``: a config class as the config model of a ``@job`` body.

In dlt, ``@job(spec=ApiSpec)`` names the configuration class whose fields the job's
function receives: its parameters are resolved as the spec's fields, and the config
providers fill them. Conveyor does the same when the body has no ``Config``
parameter of its own: the spec validates ``run_config["config"]``, the providers
(environment, ``.conveyor/*.toml``) fill its fields under the job's keys, a body
parameter named as a field receives the field's value, and ``context.config`` is the
spec instance. A body parameter that is not a field is added to the model as a field
of its own (its annotation and default), so no parameter is left without a value.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, create_model

from conveyor.definitions.params import Param
from conveyor.errors import DefinitionError

__all__ = ["spec_config_model"]


def spec_config_model(name: str, spec: type, plain: Sequence[Param], owner: str) -> type[BaseModel]:
    """The config model of a body with ``spec=`` and the plain parameters ``plain``.

    The spec itself when every parameter is one of its fields, else a subclass of it
    named ``<name>_config`` with the other parameters as fields (so a ``spec``
    instance is still what the body's fields come from).

    Raises:
        DefinitionError: a parameter's annotation or default cannot be a field.
    """
    assert issubclass(spec, BaseModel)  # job_options checked it
    extra = {p.name: p for p in plain if p.name not in spec.model_fields}
    if not extra:
        return spec
    fields: dict[str, Any] = {
        p.name: (
            Any if p.annotation is inspect.Parameter.empty else p.annotation,
            ... if p.required else p.default,
        )
        for p in extra.values()
    }
    try:
        return create_model(f"{name}_config", __base__=spec, **fields)
    except Exception as e:
        raise DefinitionError(
            f"{owner}: parameters {', '.join(extra)} are not fields of spec "
            f"{spec.__name__} and cannot be added to it as config ({e}); add them to "
            f"{spec.__name__} or give them a type pydantic can validate"
        ) from e
