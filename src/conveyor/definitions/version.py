"""Stable version hashes of definitions: the same definition always hashes the same."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Iterable
from typing import Any


def function_fingerprint(fn: Callable[..., Any]) -> str:
    """The source of ``fn``, or its code object's bytes where no source exists (a REPL)."""
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        if code is None:
            return repr(fn)
        return f"{code.co_code.hex()}|{code.co_consts!r}|{code.co_names!r}"


def stable_repr(value: Any) -> str:
    """A repr that does not change between processes for common values.

    Objects whose repr holds a memory address fall back to their type's name.
    """
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{stable_repr(k)}: {stable_repr(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list | tuple):
        return f"{type(value).__name__}(" + ", ".join(stable_repr(v) for v in value) + ")"
    if isinstance(value, set | frozenset):
        return "{" + ", ".join(sorted(stable_repr(v) for v in value)) + "}"
    text = repr(value)
    if " at 0x" in text:
        return f"<{type(value).__module__}.{type(value).__qualname__}>"
    return text


def digest(parts: Iterable[str]) -> str:
    """A short hex digest of the parts, in order."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:16]
