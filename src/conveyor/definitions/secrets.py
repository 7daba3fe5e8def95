"""``Secret("name")``: a reference to a value kept encrypted in the instance, not in code.

A ``Secret`` is a string that reads ``Secret("name")``, so it fits any ``str`` or
``SecretStr`` field of a resource or a config model, survives pickling, JSON and
a YAML run config as that text, and is replaced by the secret's value only in
the process that runs the run (``execution.secrets``). Nothing here reads the
value: this module is pure data.
"""

from __future__ import annotations

import re
from typing import Any

from conveyor.errors import ConfigError

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,254}$")
# The text of a reference, as it is written in a run config (JSON, YAML) too.
REFERENCE = re.compile(r'^Secret\("([A-Za-z0-9_][A-Za-z0-9_./-]{0,254})"\)$')


def check_secret_name(name: object) -> str:
    """``name`` if it can name a secret; ``ConfigError`` saying what a name may hold."""
    if (
        not isinstance(name, str)
        or not NAME.match(name)
        or name.endswith("/")
        or "//" in name
        or any(part in (".", "..") for part in name.split("/"))
    ):
        raise ConfigError(
            f"secret name {name!r}: use letters, digits and _ . - / (up to 255), starting "
            f"with a letter, digit or _, such as warehouse_password or webhook/deploy"
        )
    return name


class Secret(str):
    """A secret of the instance, by name: ``Secret("warehouse_password")``.

    Give it as a value of a resource's or a config model's field (a ``str`` or
    a pydantic ``SecretStr``), or in a run config. When a run starts, its process
    reads the value from the instance's secret store (set it with
    ``conveyor secrets set warehouse_password``), and every place the run writes
    (task logs, events, errors) shows ``***`` for it. The stored run config
    keeps the reference, never the value.

    In a run config file, write the reference as text: ``Secret("warehouse_password")``.
    """

    __slots__ = ()

    def __new__(cls, name: str) -> Secret:
        return super().__new__(cls, f'Secret("{check_secret_name(name)}")')

    @property
    def name(self) -> str:
        """The secret's name."""
        return self[len('Secret("') : -len('")')]

    def __repr__(self) -> str:
        return str.__str__(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Secret, (self.name,))


def secret_name(value: object) -> str | None:
    """The name ``value`` refers to, when it is a reference ``Secret("name")`` (also as
    plain text, as it comes back from JSON or a pydantic ``str`` field); else None."""
    if isinstance(value, str) and value.startswith('Secret("'):
        match = REFERENCE.match(value)
        if match is not None:
            return match.group(1)
    return None
