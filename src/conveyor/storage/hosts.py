"""Which process is responsible for a run, and whether that process is still there.

A run records the host and process that own it: the starter while it is
``starting``, then its run worker. The judge of dead runs asks the kernel
about that process when it is on the judge's own host: that is evidence,
where a silent heartbeat is only a guess. A process id can be reused, so the
process's start time is recorded with it.
"""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass

import psutil


@functools.cache
def host_id() -> str:
    """This machine: its name and its boot, so that a reboot is another host."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()[:8]
    except OSError:
        boot = f"{psutil.boot_time():.0f}"
    return f"{socket.gethostname()}/{boot}"[:255]


@dataclass(frozen=True, slots=True)
class ProcessRef:
    """A process on a host, as a run records its owner."""

    host: str
    pid: int
    started: float

    def columns(self) -> dict[str, object]:
        return {"host": self.host, "pid": self.pid, "pid_started": self.started}


_this: ProcessRef | None = None


def this_process() -> ProcessRef:
    """The calling process (read again after a fork)."""
    global _this
    pid = os.getpid()
    if _this is None or _this.pid != pid:
        _this = ProcessRef(host_id(), pid, process_started(pid) or 0.0)
    return _this


def process_started(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def is_gone(host: str | None, pid: int | None, started: float | None) -> bool | None:
    """True if that process has ended (or is a zombie), False if it runs, None if this
    host cannot tell (another host, or nothing recorded)."""
    if host is None or pid is None or host != host_id():
        return None
    try:
        proc = psutil.Process(pid)
        if started and abs(proc.create_time() - started) > 1.0:
            return True  # the id was reused by another process
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:
        return False
