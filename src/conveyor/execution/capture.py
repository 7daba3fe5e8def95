"""Per-task capture of stdout, stderr and ``context.log``.

While a run executes, ``sys.stdout``/``sys.stderr`` are routers: a write goes
to the capture of the task running in the writer's context (a context
variable, so threads started with the context, as the executors do, route
correctly) and, when the run echoes, to the original stream as well. Writes
from outside any task pass straight through.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO

from conveyor.definitions.context import RunContext


class Capture:
    """What one task attempt wrote."""

    __slots__ = ("echo", "err", "out")

    def __init__(self, echo: bool) -> None:
        self.echo = echo
        self.out: list[str] = []
        self.err: list[str] = []

    def data(self, stream: str) -> bytes:
        parts = self.out if stream == "stdout" else self.err
        return "".join(parts).encode("utf-8", "replace")


current_capture: ContextVar[Capture | None] = ContextVar("conveyor_capture", default=None)


class _Router(io.TextIOBase):
    """Stands in for ``sys.stdout`` or ``sys.stderr`` while runs execute."""

    def __init__(self, original: TextIO, stream: str) -> None:
        self.original = original
        self.stream = stream

    def write(self, s: str) -> int:
        cap = current_capture.get()
        if cap is None:
            return self.original.write(s)
        (cap.out if self.stream == "stdout" else cap.err).append(s)
        if cap.echo:
            self.original.write(s)
        return len(s)

    def flush(self) -> None:
        self.original.flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.original, "encoding", "utf-8") or "utf-8"

    def fileno(self) -> int:
        return self.original.fileno()


_install_lock = threading.Lock()
_installed = 0


@contextmanager
def routed_streams() -> Iterator[None]:
    """Install the stream routers for the duration of a run (re-entrant)."""
    global _installed
    with _install_lock:
        if _installed == 0:
            sys.stdout = _Router(sys.stdout, "stdout")
            sys.stderr = _Router(sys.stderr, "stderr")
        _installed += 1
    try:
        yield
    finally:
        with _install_lock:
            _installed -= 1
            if _installed == 0:
                for name in ("stdout", "stderr"):
                    stream = getattr(sys, name)
                    if isinstance(stream, _Router):
                        setattr(sys, name, stream.original)


class _CaptureHandler(logging.Handler):
    """Writes ``context.log`` records into the current task's stdout capture."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(_Formatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
        except Exception:
            self.handleError(record)
            return
        cap = current_capture.get()
        if cap is None:
            sys.__stderr__.write(line) if sys.__stderr__ else None
            return
        cap.out.append(line)
        if cap.echo:
            original = sys.stderr.original if isinstance(sys.stderr, _Router) else sys.stderr
            original.write(line)


class _Formatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        t = time.gmtime(record.created)
        return f"{time.strftime('%Y-%m-%d %H:%M:%S', t)}.{int(record.msecs):03d}Z"

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(message)s")


_run_logger = logging.getLogger("conveyor.run")
_run_logger.setLevel(logging.DEBUG)
_run_logger.propagate = False
_run_logger.addHandler(_CaptureHandler())


def make_logger(ctx: RunContext) -> logging.LoggerAdapter[logging.Logger]:
    """The ``context.log`` of a run or task context."""
    extra: dict[str, Any] = {"run_id": ctx.run_id, "task_key": ctx.task_key}
    return logging.LoggerAdapter(_run_logger, extra)
