"""Why a scheduler pass failed, how loudly to say so, and how long to wait.

The daemon passes ten times a second. When its database went away for 15 s,
every pass failed the same way and logged its traceback: 300 tracebacks (a
megabyte) hid the one line that mattered. Here a database that cannot be
reached is told apart from a bug: the outage is logged once when it starts and
once when it ends, and passes back off meanwhile; a bug's traceback is logged
the first time, then only counted.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

# The longest wait between passes while the database is unreachable (seconds).
MAX_BACKOFF = 5.0
# The shortest, for a daemon polling (nearly) without pause.
MIN_BACKOFF = 0.05
# How often a failure that keeps repeating is counted in the log (seconds).
REPEAT_EVERY = 60.0
# How many different failures are remembered (the least recent is forgotten).
REMEMBERED = 100
# SQLSTATEs of a connection refused or lost: class 08, and the server shutting
# down (57P01, 57P02) or not yet accepting connections (57P03).
CONNECTION_STATES = ("08", "57P01", "57P02", "57P03")
# SQLite's errors for a database file that cannot be opened or read.
SQLITE_UNREACHABLE = ("SQLITE_CANTOPEN", "SQLITE_IOERR")


def unreachable(error: BaseException) -> str | None:
    """The first line of why the database could not be reached, when that is what
    ``error`` (or an error it was raised from) says; None for any other error.

    Only connection problems count: a deadlock, a statement timeout or a
    constraint violation is an answer from the database, not its absence.
    """
    current: BaseException | None = error
    for _ in range(10):  # a cause chain is short; this bounds a cyclic one
        if current is None:
            return None
        if isinstance(current, DBAPIError) and _connection_failed(current):
            orig = current.orig if current.orig is not None else current
            return _first_line(orig) or type(orig).__name__
        current = current.__cause__
    return None


def _connection_failed(error: DBAPIError) -> bool:
    if error.connection_invalidated:
        return True  # SQLAlchemy's dialect saw the connection break
    orig = error.orig
    if isinstance(orig, sqlite3.Error):
        return str(getattr(orig, "sqlite_errorname", "")).startswith(SQLITE_UNREACHABLE)
    if not isinstance(error, OperationalError | InterfaceError):
        return False
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    # No SQLSTATE: the client failed before a server answered (refused, reset, timed out).
    return state is None or str(state).startswith(CONNECTION_STATES)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0].strip()[:300] if lines else ""


@dataclass(slots=True)
class _Repeats:
    """A failure seen before: when it was last put in the log, and how often since."""

    reported: float
    count: int = 0
    last: str = ""
    # What failed: "scheduler pass", or "scheduler step <name>".
    what: str = "scheduler pass"


class PassFailures:
    """Logs the failures of a loop's passes without repeating itself.

    ``failed`` is called with each pass's error and says how long to wait
    before the next pass; ``passed`` after each pass that succeeded.

    A database that cannot be reached logs one warning; the wait doubles
    from the poll interval up to ``MAX_BACKOFF`` while it stays away, and the
    first pass that succeeds logs how long it was. Any other failure logs its
    traceback the first time; when the same failure (same type, raised from the
    same lines) comes back, one line counts it at most every ``REPEAT_EVERY``.
    """

    def __init__(
        self,
        database: str,
        poll: float,
        log: logging.Logger,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_backoff: float = MAX_BACKOFF,
        repeat_every: float = REPEAT_EVERY,
    ) -> None:
        self.database = database
        self.log = log
        self.clock = clock
        self.first_wait = max(poll, MIN_BACKOFF)
        self.max_backoff = max(max_backoff, self.first_wait)
        self.repeat_every = repeat_every
        # When the database was found unreachable, while it still is.
        self.down_since: float | None = None
        self._wait = self.first_wait
        self._seen: dict[tuple[object, ...], _Repeats] = {}

    def failed(self, error: Exception, *, step: str | None = None) -> float | None:
        """Log ``error`` as its kind deserves; the seconds to wait before the next
        pass, or None to wait the usual poll interval.

        ``step``: the step of the pass that raised it, when the other steps went on.
        """
        reason = unreachable(error)
        if reason is None:
            self._bug(error, step)
            return None
        if self.down_since is None:
            self.down_since = self.clock()
            self._wait = self.first_wait
            self.log.warning(
                "database %s is unreachable: %s; retrying after %gs, backing off to %gs, "
                "and logging again when it is back",
                self.database,
                reason,
                self.first_wait,
                self.max_backoff,
            )
        else:
            self._wait = min(self._wait * 2, self.max_backoff)
        return self._wait

    def passed(self) -> None:
        """A pass succeeded: say the database is back if it was away."""
        if self.down_since is not None:
            self.log.info("database reachable again after %.1fs", self.clock() - self.down_since)
            self.down_since = None
        self._count_repeats()

    def _bug(self, error: Exception, step: str | None = None) -> None:
        key = (step, *_signature(error))
        now = self.clock()
        seen = self._seen.pop(key, None)  # put back last: the dict is oldest first
        if seen is None:
            if step is None:
                self.log.error("scheduler pass failed; trying again", exc_info=error)
            else:
                self.log.error(
                    "scheduler step %s failed; the other steps went on", step, exc_info=error
                )
            seen = _Repeats(
                now, what="scheduler pass" if step is None else f"scheduler step {step}"
            )
            if len(self._seen) >= REMEMBERED:
                del self._seen[next(iter(self._seen))]
        else:
            seen.count += 1
            seen.last = f"{type(error).__name__}: {_first_line(error)}"
        self._seen[key] = seen
        self._count_repeats(now)

    def _count_repeats(self, now: float | None = None) -> None:
        """One line for each failure that came back since it was last logged a while ago."""
        if now is None:
            now = self.clock()
        for seen in self._seen.values():
            if seen.count and now - seen.reported >= self.repeat_every:
                self.log.error(
                    "%s failed %d more times in %.0fs with the error logged before, last: %s",
                    seen.what,
                    seen.count,
                    now - seen.reported,
                    seen.last,
                )
                seen.count = 0
                seen.reported = now


def _signature(error: BaseException) -> tuple[object, ...]:
    """The same failure has the same type and was raised from the same lines.

    The message is left out: it often names a run or a key that changes
    from pass to pass.
    """
    frames = traceback.extract_tb(error.__traceback__)
    return (type(error), *((f.filename, f.lineno) for f in frames))
