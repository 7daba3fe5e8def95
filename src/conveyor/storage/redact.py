"""Redaction: a run's secret values replaced by ``***`` in everything it writes.

A run knows the values of the secrets it resolved (and of its ``SecretStr``
fields); its recorder and its task captures pass what they write through the
run's ``Redactor``, so task logs, live log files, events and errors hold
``***`` in the database, the files and every reader (API, UI, CLI). It lives in
storage because the recorder, the lowest writer, uses it; the captures in
execution use the same one.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

MASK = "***"
# Shorter values are not redacted: masking every "a" or "on" in a log hides the log
# and protects nothing a guess would not find.
MIN_LENGTH = 4


class Redactor:
    """Replaces known secret values by ``***`` in text, bytes and JSON-like values."""

    __slots__ = ("_lock", "_pattern", "_values")

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._values: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        """Redact ``values`` from now on too (those shorter than ``MIN_LENGTH`` are not)."""
        new = {v for v in values if isinstance(v, str) and len(v) >= MIN_LENGTH}
        with self._lock:
            if new <= self._values:
                return
            self._values = self._values | new
            self._pattern = _pattern(tuple(sorted(self._values)))

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(sorted(self._values))

    def __bool__(self) -> bool:
        return bool(self._values)

    def __repr__(self) -> str:
        return f"<Redactor of {len(self._values)} value(s)>"

    def text(self, s: str) -> str:
        pattern = self._pattern
        if pattern is None or not s:
            return s
        return pattern.sub(MASK, s)

    def bytes(self, data: bytes) -> bytes:
        if self._pattern is None or not data:
            return data
        text = data.decode("utf-8", "surrogateescape")
        redacted = self.text(text)
        return data if redacted == text else redacted.encode("utf-8", "surrogateescape")

    def tree(self, value: Any) -> Any:
        """``value`` (strings in dicts, lists and tuples, as events' data hold) redacted."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.tree(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.tree(v) for v in value)
        return value


@lru_cache(maxsize=64)
def _pattern(values: tuple[str, ...]) -> re.Pattern[str]:
    # Longest first, so that a value containing another is masked whole.
    ordered = sorted(values, key=len, reverse=True)
    return re.compile("|".join(re.escape(v) for v in ordered))


@lru_cache(maxsize=64)
def redactor_of(values: tuple[str, ...]) -> Redactor:
    """The redactor of ``values`` (shared: a worker builds one per run, not per task)."""
    return Redactor(values)
