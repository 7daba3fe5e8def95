"""The seam that gives a task call its meaning.

Calling a task does one of three things: outside any workflow or run it is a
plain function call; while a ``@workflow`` body is composing it adds a node
and returns a handle; inside a running ``@job`` body it runs as a recorded
step. The active *frame* decides; definitions compose, execution runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from conveyor.definitions.task import Task


class CallFrame(Protocol):
    """What a task call is routed to while a workflow composes or a job runs."""

    def call(self, task: Task[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any: ...

    def submit(self, task: Task[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any: ...

    def map(self, task: Task[Any], items: Iterable[Any], kwargs: dict[str, Any]) -> Any: ...


current_frame: ContextVar[CallFrame | None] = ContextVar("conveyor_frame", default=None)
