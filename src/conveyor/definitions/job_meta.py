"""What a job says about itself for people: Dagster's job ``metadata=`` and ``owners=``.

Neither changes how a job runs; both are shown on the job's page, returned by
the API and written into its manifest. The rules are small on purpose, so
that every value is plain JSON:

- ``metadata`` maps non-empty string keys to a ``str``, ``int``, ``float``,
  ``bool`` or ``None``; a string that starts with ``http://`` or ``https://``
  is shown as a link (Dagster's ``MetadataValue.url``).
- ``owners`` is a list of strings, each a team (``"team:data-platform"``),
  an email address (``"alice@example.com"``) or a user name (``"alice"``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from conveyor.errors import DefinitionError

MetadataValue = str | int | float | bool | None

_NAME = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"
_TEAM = re.compile(rf"team:{_NAME}")
_EMAIL = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.+\-]*@{_NAME}\.[A-Za-z]{{2,}}")
_USER = re.compile(_NAME)


def is_link(value: object) -> bool:
    """Whether a metadata value is shown as a link: a string starting with http(s)://."""
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def parse_metadata(value: object, owner: str) -> dict[str, MetadataValue]:
    """``metadata=`` checked: string keys, plain values (see the module docstring).

    Raises:
        DefinitionError: not a dict, a key that is not a non-empty string, or a
            value that is not a str, int, float, bool or None.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise DefinitionError(
            f"{owner}: metadata= must be a dict such as {{'docs': 'https://...'}}, "
            f"got {type(value).__name__}"
        )
    out: dict[str, MetadataValue] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise DefinitionError(f"{owner}: metadata keys must be non-empty strings, got {key!r}")
        if item is not None and not isinstance(item, str | int | float | bool):
            raise DefinitionError(
                f"{owner}: metadata[{key!r}]={item!r} must be a str, int, float, bool or "
                f"None; give a link as a string starting with https:// (shown as a link)"
            )
        out[key] = item
    return out


def parse_owners(value: object, owner: str) -> tuple[str, ...]:
    """``owners=`` checked: a list of teams, emails or user names, duplicates dropped.

    Raises:
        DefinitionError: a single string or not a list, or an item that is none
            of ``team:<name>``, an email address or a user name.
    """
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise DefinitionError(
            f"{owner}: owners= must be a list such as ['team:data-platform', "
            f"'alice@example.com'], got {value!r}"
        )
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not (
            _TEAM.fullmatch(item) or _EMAIL.fullmatch(item) or _USER.fullmatch(item)
        ):
            raise DefinitionError(
                f"{owner}: owner {item!r} must be a team ('team:data-platform'), an email "
                f"address ('alice@example.com') or a user name ('alice')"
            )
        if item not in out:
            out.append(item)
    return tuple(out)


def owner_kind(owner: str) -> str:
    """``"team"``, ``"email"`` or ``"user"``: how an owner is shown."""
    if owner.startswith("team:"):
        return "team"
    return "email" if "@" in owner else "user"
