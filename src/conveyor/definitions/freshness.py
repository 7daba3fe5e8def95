"""Freshness gates: a job's run may start only when its upstream jobs are fresh.

``freshness=[up.is_fresh, other.is_matching_interval_fresh]`` on a job. A
gate is a condition, not a trigger: a run waits in the queue until it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from conveyor.errors import DefinitionError

FreshnessKind = Literal["is_fresh", "is_matching_interval_fresh"]
RefreshPolicy = Literal["auto", "always", "block"]
REFRESH_POLICIES = ("auto", "always", "block")


@dataclass(frozen=True, slots=True)
class FreshnessGate:
    """``kind`` of freshness required of job ``upstream``."""

    kind: FreshnessKind
    upstream: str

    def __str__(self) -> str:
        return f"job.{self.kind}:{self.upstream}"


def parse_freshness(value: object, job_name: str) -> tuple[FreshnessGate, ...]:
    """Parse ``freshness=``: a gate string (``up.is_fresh``) or a list of them."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Sequence):
        raise DefinitionError(
            f"Invalid freshness {value!r}: expected a list such as [upstream.is_fresh]"
        )
    gates = []
    for item in items:
        text = item if isinstance(item, str) else repr(item)
        kind, _, upstream = text.partition(":")
        kind = kind.removeprefix("job.")
        if kind not in ("is_fresh", "is_matching_interval_fresh") or not upstream:
            raise DefinitionError(
                f"Invalid freshness {text!r}: use an upstream job's .is_fresh or "
                f".is_matching_interval_fresh (e.g. freshness=[etl.is_fresh])"
            )
        if upstream == job_name:
            raise DefinitionError(
                f"Invalid freshness {text!r}: job {job_name!r} cannot wait for itself"
            )
        gates.append(FreshnessGate(kind, upstream))  # type: ignore[arg-type]
    return tuple(gates)
