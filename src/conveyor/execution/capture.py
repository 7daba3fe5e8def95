"""Per-task capture of stdout, stderr and ``context.log``.

While a run executes, ``sys.stdout``/``sys.stderr`` are routers: a write goes
to the capture of the task running in the writer's context (a context
variable, so threads started with the context, as the executors do, route
correctly) and, when the run echoes, to the original stream as well. Writes
from outside any task pass straight through.

A capture also writes each line, as it is completed, to the attempt's live
file (``storage.logs``) when the run has a home: a process killed in the
middle of a task (its timeout, a cancel, a memory limit, SIGKILL) leaves every
line it wrote there, and ``conveyor logs`` reads them while the task runs.

With the run's ``Redactor``, its secret values read ``***`` in all of it: the
live files, the text stored, and what is echoed. The live files and the echo
then go a whole line at a time, so that a value written in pieces is masked.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO

from conveyor.definitions.context import RunContext
from conveyor.storage.logs import live_file
from conveyor.storage.redact import Redactor


class Capture:
    """What one task attempt wrote: kept in memory, and line by line in its live files.

    ``live`` is the folder of the run's live files (None: memory only);
    ``ident`` (run id, task key, attempt) lets the run's process find the
    capture of an attempt it stops (``written``) when the task runs here.
    """

    __slots__ = ("_echoing", "_fds", "_pending", "echo", "err", "ident", "live", "out", "redactor")

    def __init__(
        self,
        echo: bool,
        live: str | None = None,
        ident: tuple[str, str, int] | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.echo = echo
        self.redactor = redactor
        self.out: list[str] = []
        self.err: list[str] = []
        self.live = live
        self.ident = ident
        self._fds: dict[str, int] = {}
        self._pending: dict[str, list[str]] = {"stdout": [], "stderr": []}
        # What is echoed to each stream, held to the end of its line while redacting.
        self._echoing: dict[str, tuple[TextIO, str]] = {}
        if ident is not None:
            _open[ident] = self

    def write(self, stream: str, s: str) -> None:
        (self.out if stream == "stdout" else self.err).append(s)
        if self.live is not None:
            pending = self._pending[stream]
            pending.append(s)
            if "\n" in s:
                self._flush(stream, whole=False)

    def text(self, stream: str) -> str:
        text = "".join(self.out if stream == "stdout" else self.err)
        return self.redactor.text(text) if self.redactor else text

    def shown(self, s: str) -> str:
        """A whole line ``s`` as it is echoed: masked."""
        return self.redactor.text(s) if self.redactor else s

    def echo_to(self, stream: str, original: TextIO, s: str) -> None:
        """Echo a write to ``original``; while redacting, a line at a time, so that a
        value written in pieces is masked whole."""
        if not self.redactor:
            original.write(s)
            return
        _, held = self._echoing.get(stream, (original, ""))
        text = held + s
        cut = text.rfind("\n") + 1
        if cut:
            original.write(self.redactor.text(text[:cut]))
        self._echoing[stream] = (original, text[cut:])

    def _end_echo(self) -> None:
        for original, held in self._echoing.values():
            if held and self.redactor:
                with contextlib.suppress(Exception):
                    original.write(self.redactor.text(held))
        self._echoing.clear()

    def close(self, *, keep: bool = False) -> None:
        """Write the rest to the live files and close them; with ``keep``, the run's process
        can still find the capture (``written``): the task was stopped by a ``BaseException``."""
        self._end_echo()
        if self.live is not None:
            for stream in self._pending:
                if self._pending[stream]:
                    self._flush(stream)
            for fd in self._fds.values():
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._fds.clear()
            self.live = None
        if self.ident is not None and not keep:
            _open.pop(self.ident, None)

    def _flush(self, stream: str, *, whole: bool = True) -> None:
        pending = self._pending[stream]
        text = "".join(pending)
        pending.clear()
        if self.redactor:
            if not whole:
                # The line being written stays until it is complete: a value written
                # in pieces is then masked whole.
                cut = text.rfind("\n") + 1
                if cut < len(text):
                    pending.append(text[cut:])
                text = text[:cut]
            text = self.redactor.text(text)
        data = text.encode("utf-8", "replace")
        fd = self._fds.get(stream)
        try:
            if fd is None:
                fd = self._fds[stream] = self._open_file(stream)
            while data:
                data = data[os.write(fd, data) :]
        except OSError:
            # The live file cannot be written (no room, no home on this machine): the
            # output is still kept in memory and stored when the attempt ends.
            self.live = None

    def _open_file(self, stream: str) -> int:
        assert self.live is not None
        assert self.ident is not None
        path = live_file(self.live, self.ident[1], self.ident[2], stream)
        try:
            return os.open(path, _LIVE_FLAGS, 0o666)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(path, _LIVE_FLAGS, 0o666)


_LIVE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
# The captures of attempts running in this process (and of those a BaseException stopped).
_open: dict[tuple[str, str, int], Capture] = {}


def written(run_id: str, key: str, attempt: int, stream: str, live: str | None) -> str:
    """What an attempt wrote to ``stream`` so far: from its capture if it runs (or ran) in
    this process, else from its live file (another process ran it, and may be dead)."""
    cap = _open.pop((run_id, key, attempt), None)
    if cap is not None:
        return cap.text(stream)
    if live is None:
        return ""
    try:
        return live_file(live, key, attempt, stream).read_bytes().decode("utf-8", "replace")
    except OSError:
        return ""


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
        cap.write(self.stream, s)
        if cap.echo:
            cap.echo_to(self.stream, self.original, s)
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
        cap.write("stdout", line)
        if cap.echo:
            original = sys.stderr.original if isinstance(sys.stderr, _Router) else sys.stderr
            original.write(cap.shown(line))


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
