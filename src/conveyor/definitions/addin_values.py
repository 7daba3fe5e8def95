"""The values Excel passes to an add-in's functions and gets back: ``int``, ``float``,
``str``, ``bool`` and lists of them (a range), each argument converted to the type
its function declares or refused with ``Mismatch`` saying where in a range and why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SCALARS: tuple[type, ...] = (int, float, str, bool)
_EXCEL_TYPES: Mapping[type, str] = {int: "number", float: "number", str: "string", bool: "boolean"}


@dataclass(frozen=True, slots=True)
class ValueType:
    """The type of one argument or result: a scalar, or a list (of ``item``)."""

    base: type
    item: ValueType | None = None

    @property
    def excel_type(self) -> str:
        """The custom functions metadata type: number, string, boolean or any."""
        return _EXCEL_TYPES.get(self.base, "any")

    @property
    def dimensionality(self) -> str:
        """``matrix`` for a list (an Excel range), else ``scalar``."""
        return "matrix" if self.base is list else "scalar"

    def describe(self) -> str:
        if self.base is list and self.item is not None:
            return f"list[{self.item.describe()}]"
        return self.base.__name__

    def convert(self, value: Any) -> Any:
        """``value`` as this type, or ``Mismatch`` saying why it is not one.

        JSON (and Excel) numbers have no int/float split, so a whole float is an
        acceptable ``int`` and an int an acceptable ``float``; a bool is neither.
        """
        if self.base is bool:
            if isinstance(value, bool):
                return value
        elif self.base is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
        elif self.base is float:
            if isinstance(value, int | float) and not isinstance(value, bool):
                if not math.isfinite(value):  # JSON has no NaN or infinity to carry it
                    raise Mismatch("", "a finite float", repr(value))
                return float(value)
        elif self.base is str:
            if isinstance(value, str):
                return value
        elif isinstance(value, list):
            converted = []
            for index, item in enumerate(value):
                try:
                    converted.append(_plain(item) if self.item is None else self.item.convert(item))
                except Mismatch as e:
                    raise Mismatch(f"[{index}]{e.where}", e.wanted, e.got) from None
            return converted
        raise Mismatch("", self.describe(), kind_of(value))


class Mismatch(TypeError):
    """A value is not of the type wanted; ``where`` is its place in a range (``[0][2]``)."""

    def __init__(self, where: str, wanted: str, got: str) -> None:
        super().__init__(f"{where} wants {wanted}, got {got}".strip())
        self.where, self.wanted, self.got = where, wanted, got


def _plain(value: Any) -> Any:
    """A bare ``list`` holds JSON scalars or lists of them (a range), nothing else."""
    if isinstance(value, list):
        return ValueType(list).convert(value)
    if value is None or isinstance(value, SCALARS):
        return value
    raise Mismatch("", "int, float, str, bool or a list", kind_of(value))


def kind_of(value: Any) -> str:
    """What JSON value ``value`` is, in words (null, list, object, or its type)."""
    if value is None:
        return "null"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
