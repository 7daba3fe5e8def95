"""How much a step grew the run's own process: ``memory=`` for steps that run in-process.

A step in the run's process cannot be stopped when it passes its
``memory=`` (nothing is raised into a running thread), and its memory is
the process's. While it runs, a thread samples the process's resident
size, and the process's peak resident size catches a spike between two
samples (a step that allocates and frees within one call, holding the GIL
all along). On Linux the peak is reset when the step starts
(``/proc/self/clear_refs``) and read from ``VmHWM`` when it ends, so a higher
peak that an earlier step set does not hide this one's; elsewhere the
lifetime peak (``getrusage``) counts when the step sets a new one. A step
that grew the process by more than its limit fails when it returns, as a
step past its timeout does in-process. The in-process executor runs one
step at a time, so the growth is that step's (or its own threads').
"""

from __future__ import annotations

import resource
import sys
import threading
from types import TracebackType

import psutil

# Seconds between two samples of the process's resident size.
SAMPLE_EVERY = 0.01


class Growth:
    """A context that measures how far the process's resident size rose above its start."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.start = 0
        self.peak = 0

    @property
    def grew(self) -> int:
        """Bytes by which the process's resident size rose above its size at the start."""
        return max(0, self.peak - self.start)

    def __enter__(self) -> Growth:
        self._reset = _reset_peak()
        self.start = self.peak = self._rss()
        self._peak_before = _lifetime_peak()
        self._thread = threading.Thread(target=self._sample, name="conveyor-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, self._rss())
        since_start = _peak_since_reset() if self._reset else None
        if since_start is not None:
            self.peak = max(self.peak, since_start)
            return
        lifetime = _lifetime_peak()
        if lifetime > self._peak_before:
            self.peak = max(self.peak, lifetime)  # a new peak was set while the step ran

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            self.peak = max(self.peak, self._rss())

    def _rss(self) -> int:
        try:
            return int(self._process.memory_info().rss)
        except psutil.Error:
            return self.peak


def _lifetime_peak() -> int:
    """The process's peak resident size in bytes (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _reset_peak() -> bool:
    """Reset the process's peak resident size (Linux: ``5`` into ``/proc/self/clear_refs``);
    False where that cannot be done."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _peak_since_reset() -> int | None:
    """The process's peak resident size since the last reset (``VmHWM``), in bytes."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
