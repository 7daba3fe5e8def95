"""Retention: the daemon deletes ended runs older than ``CONVEYOR_RETENTION_DAYS``.

Runs keep their logs and results for ever unless someone deletes them, and
``results/`` grows with every large result. With the setting, each daemon
deletes, about once an hour, the ended runs created more than that many days
ago, with their tasks, events, logs, results and run-worker logs
(``storage.deletion``); runs that have not ended are never touched. It is
off by default: deleting what a user may still want is theirs to ask for.
"""

from __future__ import annotations

import logging
import os
import re

from conveyor.errors import ConfigError
from conveyor.storage.instance import Instance

log = logging.getLogger("conveyor.daemon")

ENV_RETENTION = "CONVEYOR_RETENTION_DAYS"
DAY = 86400.0
# How often the daemon looks for runs past their retention (seconds).
EVERY = 3600.0
# Runs deleted in one pass; more wait for the next pass, so that one pass stays short.
PASS_LIMIT = 500

_WHOLE = re.compile(r"[0-9]+")


def retention_days(value: str | None) -> int | None:
    """The setting's value as a number of days; None when it is unset or empty (off).

    Raises:
        ConfigError: the value is not a whole number of days of at least 1.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not _WHOLE.fullmatch(text) or int(text) < 1:
        raise ConfigError(
            f"{ENV_RETENTION}={value!r}: give a whole number of days of at least 1, e.g. "
            f"{ENV_RETENTION}=30 to delete ended runs older than 30 days, or unset it to "
            f"keep runs for ever"
        )
    return int(text)


class Retention:
    """The daemon's step that deletes ended runs past their retention.

    Args:
        instance: the instance whose runs are deleted.
        days: runs created more than this many days ago are deleted; ``None``
            reads ``CONVEYOR_RETENTION_DAYS`` (unset: off).
        every: seconds between two looks, while nothing is left over.
    """

    def __init__(
        self, instance: Instance, days: int | None = None, *, every: float = EVERY
    ) -> None:
        self.instance = instance
        self.days = days if days is not None else retention_days(os.environ.get(ENV_RETENTION))
        if self.days is not None and (isinstance(self.days, bool) or self.days < 1):
            raise ConfigError(f"Retention(days={days!r}): give a whole number of days >= 1")
        self.every = every
        self._due = float("-inf")

    def __call__(self, now: float) -> None:
        if self.days is None or now < self._due:
            return
        from conveyor.execution.runner import prune_worker_logs

        max_age = self.days * DAY
        deletion = self.instance.run_deletion
        ids = deletion.ended(before=now - max_age, limit=PASS_LIMIT)
        if ids:
            done = deletion.delete(ids)
            log.info(
                "retention: deleted %d runs older than %d days (%d files, %.1f MB)",
                len(done.run_ids),
                self.days,
                done.files,
                done.bytes / 1e6,
            )
        prune_worker_logs(self.instance, max_age)
        # A full pass leaves runs over: the next pass goes on with them.
        self._due = now if len(ids) == PASS_LIMIT else now + self.every

    def __repr__(self) -> str:
        return f"Retention(days={self.days})"
