"""Checking the keys of an options dict (``execute=``, ``require=``, ``interval=``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from conveyor.errors import DefinitionError


def check_keys(value: Mapping[Any, Any], known: Iterable[str], owner: str, noun: str) -> None:
    """A ``DefinitionError`` naming the keys of ``value`` that are not ``known``."""
    names = tuple(known)
    unknown = sorted(set(value) - set(names), key=str)
    if unknown:
        raise DefinitionError(
            f"{owner}: unknown {noun}(s) {', '.join(map(repr, unknown))}; known: {', '.join(names)}"
        )
