"""The scheduler daemon: triggers, the run queue and concurrency slots, the run monitor."""

from __future__ import annotations

from conveyor.scheduler.daemon import Daemon

__all__ = ["Daemon"]
