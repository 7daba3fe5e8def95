"""Parsing of the durations and memory sizes users write in options.

Durations accept seconds as numbers or strings (``90``, ``"2s"``, ``"30m"``,
``"1.5h"``, ``"4 h"``, ``"1d"``, ``"1h30m"``, ``"1h 30m"``); memory accepts bytes
as an integer or strings with decimal (``"512m"``, ``"2g"``, ``"1.5GB"``) or
binary (``"512Mi"``, ``"2GiB"``) units, read by pydantic's ``ByteSize``.
"""

from __future__ import annotations

import functools
import math
import re

from pydantic import ByteSize, TypeAdapter, ValidationError

from conveyor.errors import ConfigError

_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
    "w": 604800.0,
    "week": 604800.0,
    "weeks": 604800.0,
}
_NUMBER = r"\d+(?:\.\d*)?|\.\d+"
_DURATION_PART = re.compile(rf"\s*({_NUMBER})\s*([a-z]*)\s*")
_DURATION_EXAMPLES = "'90', '2s', '30m', '1.5h', '1d' or '1h30m'"


def parse_duration(value: object, *, what: str = "duration") -> float:
    """Return ``value`` as a number of seconds.

    Args:
        value: seconds as an ``int``/``float``, or a string such as ``"1h30m"``.
        what: how to name the value in an error (``"timeout"``, ``"delay"``).

    Raises:
        ConfigError: the value is not a duration, or is negative; the message
            quotes the input.
    """
    if isinstance(value, bool):
        raise ConfigError(
            f"invalid {what} {value!r}: expected seconds or a string like {_DURATION_EXAMPLES}"
        )
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_duration_string(value, what)
    else:
        raise ConfigError(
            f"invalid {what} {value!r}: expected seconds or a string like {_DURATION_EXAMPLES}"
        )
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ConfigError(f"invalid {what} {value!r}: must be a finite number of seconds >= 0")
    return seconds


def _parse_duration_string(text: str, what: str) -> float:
    s = text.strip().lower()
    if not s:
        raise ConfigError(f"invalid {what} {text!r}: empty; write e.g. {_DURATION_EXAMPLES}")
    pos = 0
    total = 0.0
    parts = 0
    last_unit: str | None = None
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None or m.end() == pos:
            raise ConfigError(
                f"invalid {what} {text!r}: cannot read {s[pos:]!r}; write e.g. {_DURATION_EXAMPLES}"
            )
        number, unit = m.group(1), m.group(2)
        if unit == "":
            if parts or m.end() != len(s):
                raise ConfigError(
                    f"invalid {what} {text!r}: {number!r} has no unit; units are ms, s, m, h, d, w"
                )
            unit = "s"
        if unit not in _UNIT_SECONDS:
            raise ConfigError(
                f"invalid {what} {text!r}: unknown unit {unit!r}; units are ms, s, m, h, d, w"
            )
        if last_unit is not None and _UNIT_SECONDS[unit] >= _UNIT_SECONDS[last_unit]:
            raise ConfigError(
                f"invalid {what} {text!r}: units must go from largest to smallest, as in '1h30m'"
            )
        total += float(number) * _UNIT_SECONDS[unit]
        last_unit = unit
        parts += 1
        pos = m.end()
    return total


_MEMORY_EXAMPLES = "'512m', '2g', '512Mi' or '2GiB'"
_MEMORY_UNITS = (
    "k, m, g, t (powers of 1000) and Ki, Mi, Gi, Ti (powers of 1024), each with or without a B"
)


def parse_memory(value: object) -> int:
    """Return a memory size in bytes.

    pydantic's ``ByteSize`` reads the size; the Kubernetes-style ``Mi``/``Gi``
    suffixes are accepted too, as ``MiB``/``GiB``.

    Args:
        value: bytes as an ``int``, or a string such as ``"512m"``, ``"2g"``,
            ``"512Mi"`` or ``"1.5GiB"`` (k/m/g/t are powers of 1000, Ki/Mi/Gi/Ti
            of 1024; case does not matter).

    Raises:
        ConfigError: the value is not a positive memory size; the message
            quotes the input.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(
            f"invalid memory {value!r}: expected bytes as an integer or a string like "
            f"{_MEMORY_EXAMPLES}"
        )
    size = value if isinstance(value, int) else _parse_memory_string(value)
    if size <= 0:
        raise ConfigError(f"invalid memory {value!r}: must be more than 0 bytes")
    return size


def _parse_memory_string(text: str) -> int:
    s = text.strip()
    # ByteSize reads a leading size and ignores what follows it: refuse "2g of RAM" here.
    if ByteSize.byte_string_re.fullmatch(s) is None:
        raise ConfigError(
            f"invalid memory {text!r}: write a number and a unit, such as {_MEMORY_EXAMPLES}; "
            f"units are {_MEMORY_UNITS}"
        )
    unit = s.lstrip("0123456789. ")
    # ByteSize also knows bits; a memory size in bits is a slip, not a wish.
    if unit.lower().endswith("bit"):
        raise ConfigError(
            f"invalid memory {text!r}: unknown unit {unit!r}; units are {_MEMORY_UNITS}"
        )
    if unit[-1:] in ("i", "I"):
        s += "B"
    try:
        return int(_byte_size().validate_python(s))
    except ValidationError as e:
        known = e.errors()[0]["type"] != "byte_size_unit"
        reason = "cannot read it as a size" if known else f"unknown unit {unit!r}"
        raise ConfigError(f"invalid memory {text!r}: {reason}; units are {_MEMORY_UNITS}") from None


@functools.cache
def _byte_size() -> TypeAdapter[ByteSize]:
    # Built on first use: a TypeAdapter costs milliseconds that `import conveyor` need not pay.
    return TypeAdapter(ByteSize)


def format_duration(seconds: float) -> str:
    """Return a short human form of ``seconds`` (``"1.2s"``, ``"3m 05s"``)."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
