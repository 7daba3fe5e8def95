"""Stopping an in-process task that runs past its timeout.

In the main thread a ``SIGALRM`` timer interrupts the task, even in a blocking
call such as ``time.sleep``. In other threads, a watchdog raises into the
thread between bytecodes, which cannot interrupt a blocking C call; the
multiprocess executor stops such tasks by killing their process.

The interrupt is a ``BaseException`` so that user code catching ``Exception``
does not swallow it; the step runner turns it into ``TaskTimeoutError``.
"""

from __future__ import annotations

import ctypes
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class TaskInterrupt(BaseException):
    """Raised inside a task to stop it; never escapes the step runner."""


class RunCanceled(BaseException):
    """Raised in a run's thread when someone asked to cancel the run."""


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Interrupt the enclosed code with ``TaskInterrupt`` after ``seconds``."""
    if seconds is None:
        yield
    elif threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        with _alarm(seconds):
            yield
    else:
        with _watchdog(seconds):
            yield


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    armed = True

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        if armed:
            raise TaskInterrupt()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    outer_remaining, _ = signal.getitimer(signal.ITIMER_REAL)
    started = time.monotonic()
    if outer_remaining and outer_remaining < seconds:
        seconds = outer_remaining
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_remaining:
            left = outer_remaining - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))


@contextmanager
def _watchdog(seconds: float) -> Iterator[None]:
    target = threading.get_ident()
    done = threading.Event()
    lock = threading.Lock()
    fired = False

    def fire() -> None:
        nonlocal fired
        if done.wait(seconds):
            return
        with lock:
            if not done.is_set():
                fired = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(target), ctypes.py_object(TaskInterrupt)
                )

    watcher = threading.Thread(target=fire, name="conveyor-timeout", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        with lock:
            done.set()
            if fired:
                # The interrupt may still be pending if the code finished first.
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target), None)
