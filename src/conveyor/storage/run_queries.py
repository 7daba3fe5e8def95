"""Lists and counts of runs for the web UI and the REST API, fast on a million runs.

A page is read by its key, never by ``OFFSET``: runs newest first by
``(created_at, id)``, each page starting after the last row of the one before
(an opaque cursor). Every filter is one the indexes of the ``runs`` table
serve, or narrows a walk down one of them: job and status by their own
indexes, a trigger by ``(trigger, created_at)``, a start time by
``started_at``, and tags by a GIN index on PostgreSQL (``tags @> {...}``). On
SQLite a tag is read with ``json_extract`` while walking the runs newest first.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    cast,
    exists,
    func,
    literal,
    select,
    tuple_,
    union_all,
)

from conveyor.errors import ConfigError
from conveyor.storage.db import Database
from conveyor.storage.records import RunRecord
from conveyor.storage.schema import runs
from conveyor.storage.states import RunStatus

# The most runs in one page.
MAX_LIMIT = 1000
# The most jobs whose runs a page merges job by job (past it, one walk of all runs).
MAX_MERGED_JOBS = 50


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Which runs to list or count: every field given must match (empty: any).

    ``job_names`` and ``statuses`` match any one of theirs; each of ``tags``
    (key, value) must be among the run's tags. Times are UTC epoch seconds:
    ``*_after`` includes its instant, ``*_before`` does not. The runs of
    ``hidden_jobs`` are left out whatever else matches (the jobs the caller may
    not read: no list, page or count shows them).
    """

    job_names: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    trigger: str | None = None
    created_after: float | None = None
    created_before: float | None = None
    started_after: float | None = None
    started_before: float | None = None
    hidden_jobs: tuple[str, ...] = ()


@dataclass(slots=True)
class RunPage:
    """One page of runs, newest first; ``next_cursor`` reads the next (None: the last)."""

    runs: list[RunRecord]
    next_cursor: str | None


class RunQueries:
    def __init__(self, db: Database) -> None:
        self.db = db

    def page(self, filter: RunFilter, *, limit: int = 50, cursor: str | None = None) -> RunPage:
        """The runs that match ``filter``, newest first, after ``cursor`` (a ``next_cursor``).

        Raises:
            ConfigError: ``limit`` is not 1 to ``MAX_LIMIT``, ``cursor`` is not one
                this gave, or ``filter`` names a status that does not exist.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise ConfigError(f"limit={limit!r}: must be a whole number from 1 to {MAX_LIMIT}")
        after = [] if cursor is None else [_before(runs, decode_cursor(cursor))]
        hidden = set(_strings(filter.hidden_jobs, "hidden_jobs"))
        names = [n for n in _strings(filter.job_names, "job_names") if n not in hidden]
        if filter.job_names and not names:
            return RunPage([], None)
        if 1 < len(names) <= MAX_MERGED_JOBS:
            # Newest first within each job, by its (job_name, created_at) index, then merged:
            # one walk of all runs would skip past the other jobs' runs, and sorting all runs
            # of the jobs costs as many rows as they have.
            rest = self._conditions(replace(filter, job_names=()))
            arms = [
                _newest(select(runs).where(runs.c.job_name == name, *rest, *after), runs, limit)
                for name in dict.fromkeys(names)
            ]
            merged = union_all(*(select(a.subquery()) for a in arms)).subquery()
            q = _newest(select(merged), merged, limit)
        else:
            q = _newest(select(runs).where(*self._conditions(filter), *after), runs, limit)
        with self.db.read() as conn:
            found = [RunRecord.from_row(r) for r in conn.execute(q)]
        more = len(found) > limit
        found = found[:limit]
        return RunPage(found, encode_cursor(*found[-1].cursor) if more else None)

    def status_counts(self, filter: RunFilter) -> dict[str, int]:
        """How many runs that match ``filter`` are in each status (every status the filter
        allows is a key, 0 when none is in it)."""
        q = (
            select(runs.c.status, func.count())
            .where(*self._conditions(filter))
            .group_by(runs.c.status)
        )
        wanted = _statuses(filter.statuses) or [str(s) for s in RunStatus]
        counts = dict.fromkeys(wanted, 0)
        with self.db.read() as conn:
            for status, n in conn.execute(q):
                counts[str(status)] = int(n)
        return counts

    def _conditions(self, f: RunFilter) -> list[ColumnElement[bool]]:
        c = runs.c
        out: list[ColumnElement[bool]] = []
        if f.job_names:
            out.append(c.job_name.in_(_strings(f.job_names, "job_names")))
        if f.hidden_jobs:
            out.append(c.job_name.not_in(_strings(f.hidden_jobs, "hidden_jobs")))
        if f.statuses:
            out.append(c.status.in_(_statuses(f.statuses)))
        if f.trigger is not None:
            out.append(c.trigger == f.trigger)
        bounds = [
            (c.created_at, f.created_after, f.created_before, "created"),
            (c.started_at, f.started_after, f.started_before, "started"),
        ]
        for column, after, before, name in bounds:
            if after is not None:
                out.append(column >= _moment(after, f"{name}_after"))
            if before is not None:
                out.append(column < _moment(before, f"{name}_before"))
        for k, v in _tag_pairs(f.tags):
            out.append(self._has_tag(k, v))
        return out

    def _has_tag(self, key: str, value: str) -> ColumnElement[bool]:
        if not self.db.is_sqlite:
            from sqlalchemy.dialects.postgresql import JSONB

            # ``@>`` on the JSONB cast is what the GIN index ix_runs_tags serves.
            wanted = cast(literal(json.dumps({key: value}), String), JSONB)
            return cast(runs.c.tags, JSONB).op("@>")(wanted)
        if '"' not in key:
            path = f'$."{key}"'
            return func.json_extract(runs.c.tags, path) == value
        # A quote cannot be spelt in an SQLite JSON path: look through the tags instead.
        each = func.json_each(runs.c.tags).table_valued("key", "value")
        return exists(select(1).select_from(each).where(each.c.key == key, each.c.value == value))


def _before(table: Any, key: tuple[float, str]) -> ColumnElement[bool]:
    """The rows of ``table`` after the one keyed ``key`` in the order newest first."""
    return tuple_(table.c.created_at, table.c.id) < tuple_(literal(key[0]), literal(key[1]))


def _newest(q: Select[Any], table: Any, limit: int) -> Select[Any]:
    """``q`` newest first, one more row than a page (to tell whether a page follows)."""
    return q.order_by(table.c.created_at.desc(), table.c.id.desc()).limit(limit + 1)


def encode_cursor(created_at: float, run_id: str) -> str:
    """The opaque cursor of the page after the run keyed ``(created_at, run_id)``."""
    raw = json.dumps([created_at, run_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The key ``(created_at, run id)`` a cursor holds; ``ConfigError`` if it holds none."""

    def bad(why: str) -> ConfigError:
        return ConfigError(
            f"cursor {cursor!r} is not a cursor of a list of runs ({why}); pass the "
            f"next_cursor of the page before, or no cursor for the first page"
        )

    if not isinstance(cursor, str) or not cursor or len(cursor) > 200:
        raise bad("empty or too long" if isinstance(cursor, str) else "not a string")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value: Any = json.loads(raw)
    except (binascii.Error, ValueError):
        raise bad("it does not decode") from None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or isinstance(value[0], bool)
        or not isinstance(value[0], int | float)
        or not math.isfinite(value[0])
        or not isinstance(value[1], str)
        or not value[1]
    ):
        raise bad("it holds no run's time and id")
    return float(value[0]), value[1]


def _strings(values: tuple[str, ...], name: str) -> list[str]:
    if isinstance(values, str) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{name}={values!r}: give a tuple of names")
    return list(values)


def _statuses(values: tuple[str, ...]) -> list[str]:
    out = []
    for v in _strings(values, "statuses"):
        try:
            out.append(str(RunStatus(v)))
        except ValueError:
            raise ConfigError(
                f"status {v!r}: must be one of {', '.join(s.value for s in RunStatus)}"
            ) from None
    return list(dict.fromkeys(out))


def _moment(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{name}={value!r}: give a time in UTC epoch seconds")
    return float(value)


def _tag_pairs(tags: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    pairs = []
    for pair in tags:
        if (
            not isinstance(pair, tuple | list)
            or len(pair) != 2
            or not all(isinstance(x, str) for x in pair)
        ):
            raise ConfigError(f"tag {pair!r}: give each tag as a (key, value) pair of strings")
        pairs.append((pair[0], pair[1]))
    return pairs
