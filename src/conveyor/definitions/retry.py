"""Retry policies: how many times a failed task is tried again, and how long to wait."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

from conveyor.definitions.durations import parse_duration
from conveyor.errors import ConfigError

Backoff = Literal["fixed", "linear", "exponential"]
_BACKOFFS = ("fixed", "linear", "exponential")


@dataclass(frozen=True, slots=True, init=False)
class RetryPolicy:
    """When and how often a failed task is tried again.

    Args:
        max_retries: tries after the first one (0 means no retry).
        delay: wait before the first retry: seconds or a duration string.
        backoff: how the wait grows: ``"fixed"`` (always ``delay``), ``"linear"``
            (``delay * n``) or ``"exponential"`` (``delay * 2**(n-1)``) before retry n.
        jitter: a fraction in [0, 1]; each wait is multiplied by a random factor
            in ``[1 - jitter, 1 + jitter]`` so that many retries do not align.
        max_delay: an upper bound on any wait.
        retry_on: exception types that are retried; others fail at once.
    """

    max_retries: int
    delay: float
    backoff: Backoff
    jitter: float
    max_delay: float | None
    retry_on: tuple[type[BaseException], ...] = field(default=(Exception,))

    def __init__(
        self,
        max_retries: int = 1,
        delay: float | str = 0,
        backoff: Backoff = "fixed",
        jitter: float = 0.0,
        max_delay: float | str | None = None,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
    ) -> None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError(
                f"RetryPolicy(max_retries={max_retries!r}): must be a whole number >= 0"
            )
        if backoff not in _BACKOFFS:
            raise ConfigError(
                f"RetryPolicy(backoff={backoff!r}): must be one of {', '.join(_BACKOFFS)}"
            )
        if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not 0 <= jitter <= 1:
            raise ConfigError(f"RetryPolicy(jitter={jitter!r}): must be a fraction from 0 to 1")
        if isinstance(retry_on, type):
            retry_on = (retry_on,)
        if not retry_on or not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in retry_on
        ):
            raise ConfigError(
                f"RetryPolicy(retry_on={retry_on!r}): must be exception classes, "
                f"e.g. (ConnectionError, TimeoutError)"
            )
        set_ = object.__setattr__
        set_(self, "max_retries", max_retries)
        set_(self, "delay", parse_duration(delay, what="retry delay"))
        set_(self, "backoff", backoff)
        set_(self, "jitter", float(jitter))
        set_(
            self,
            "max_delay",
            None if max_delay is None else parse_duration(max_delay, what="retry max_delay"),
        )
        set_(self, "retry_on", tuple(retry_on))

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        """Whether a task that failed ``attempt`` (1-based) with ``error`` is tried again."""
        return attempt <= self.max_retries and isinstance(error, self.retry_on)

    def wait_before(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        if self.backoff == "fixed":
            wait = self.delay
        elif self.backoff == "linear":
            wait = self.delay * retry
        else:
            wait = self.delay * 2 ** (retry - 1)
        if self.jitter:
            wait *= (rng or random).uniform(1 - self.jitter, 1 + self.jitter)
        if self.max_delay is not None:
            wait = min(wait, self.max_delay)
        return wait

    def __repr__(self) -> str:
        return (
            f"RetryPolicy(max_retries={self.max_retries}, delay={self.delay:g}, "
            f"backoff={self.backoff!r})"
        )


NO_RETRY = RetryPolicy(max_retries=0)
