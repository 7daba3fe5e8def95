"""Backfills as records: what was asked for and the runs it queued, to list, watch and cancel.

``scheduler.backfill`` records each backfill with the runs it queued, so the
command line and the API make the same record. A backfill is ``requested``
while any of its runs has not ended, then ``done`` (worked out when read, so
nothing has to watch for it), or ``canceled`` once canceled: canceling it
cancels its runs that have not ended.
"""

from __future__ import annotations

import builtins
import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, exists, func, insert, select, update

from conveyor.errors import ConfigError, InvalidTransitionError, NotFoundError
from conveyor.storage.db import Database
from conveyor.storage.records import RunRecord, to_datetime
from conveyor.storage.runs import ACTIVE
from conveyor.storage.schema import backfill_runs, backfills, runs
from conveyor.storage.states import RunStatus

REQUESTED, CANCELED, DONE = "requested", "canceled", "done"
# The statuses of a run that has not ended, and is not being canceled already.
UNENDED = tuple(s for s in (str(RunStatus.QUEUED), *ACTIVE) if s != RunStatus.CANCELING)


@dataclass(frozen=True, slots=True)
class BackfillRecord:
    """One backfill: its job, when it was made, its status (requested, canceled or done),
    what was asked for (``spec``) and how many runs it queued."""

    id: str
    job_name: str
    created_at: datetime
    status: str
    spec: dict[str, Any]
    run_count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "job_name": self.job_name,
            "created_at": self.created_at.isoformat(),
            "status": self.status,
            "spec": self.spec,
            "run_count": self.run_count,
        }

    def __repr__(self) -> str:
        return f"<BackfillRecord {self.id[:8]} {self.job_name} {self.status}>"


class BackfillStore:
    def __init__(self, db: Database, cancel_run: Callable[[str], RunStatus]) -> None:
        self.db = db
        self._cancel_run = cancel_run

    def create(self, job_name: str, spec: Mapping[str, Any], run_ids: Iterable[str]) -> str:
        """Record a backfill of ``job_name`` that queued ``run_ids``; returns its id.

        Raises:
            ConfigError: ``job_name`` is empty or ``spec`` is not a JSON object.
        """
        if not isinstance(job_name, str) or not job_name.strip():
            raise ConfigError(f"backfill job name {job_name!r}: give the job's name")
        try:
            json.dumps(spec)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"backfill spec of {job_name!r}: not JSON ({e})") from None
        if not isinstance(spec, Mapping):
            raise ConfigError(f"backfill spec of {job_name!r}: give a dict, not {spec!r}")
        bid = uuid.uuid4().hex
        ids = list(dict.fromkeys(run_ids))
        with self.db.write() as conn:
            conn.execute(
                insert(backfills).values(
                    id=bid,
                    job_name=job_name,
                    created_at=time.time(),
                    status=REQUESTED,
                    spec=dict(spec),
                )
            )
            if ids:
                conn.execute(
                    insert(backfill_runs), [{"backfill_id": bid, "run_id": rid} for rid in ids]
                )
        return bid

    def list(self, job_name: str | None = None, limit: int = 50) -> builtins.list[BackfillRecord]:
        """Backfills newest first, of one job or all."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigError(f"limit={limit!r}: must be a whole number >= 1")
        q = _SELECT.order_by(backfills.c.created_at.desc(), backfills.c.id.desc()).limit(limit)
        if job_name is not None:
            q = q.where(backfills.c.job_name == job_name)
        with self.db.read() as conn:
            return [_record(r) for r in conn.execute(q)]

    def get(self, backfill_id: str) -> BackfillRecord:
        """The backfill ``backfill_id``; ``NotFoundError`` if there is none."""
        with self.db.read() as conn:
            row = conn.execute(_SELECT.where(backfills.c.id == backfill_id)).first()
        if row is None:
            raise _missing(backfill_id)
        return _record(row)

    def progress(self, backfill_id: str) -> dict[str, int]:
        """How many of the backfill's runs are in each status (every status a key)."""
        q = (
            select(runs.c.status, func.count())
            .select_from(backfill_runs.join(runs, runs.c.id == backfill_runs.c.run_id))
            .where(backfill_runs.c.backfill_id == backfill_id)
            .group_by(runs.c.status)
        )
        with self.db.read() as conn:
            self._check(conn, backfill_id)
            counts = dict.fromkeys((str(s) for s in RunStatus), 0)
            for status, n in conn.execute(q):
                counts[str(status)] = int(n)
        return counts

    def runs(self, backfill_id: str) -> builtins.list[RunRecord]:
        """The backfill's runs, in the order they were queued."""
        q = (
            select(runs)
            .select_from(backfill_runs.join(runs, runs.c.id == backfill_runs.c.run_id))
            .where(backfill_runs.c.backfill_id == backfill_id)
            .order_by(runs.c.created_at, runs.c.id)
        )
        with self.db.read() as conn:
            self._check(conn, backfill_id)
            return [RunRecord.from_row(r) for r in conn.execute(q)]

    def cancel(self, backfill_id: str) -> int:
        """Mark the backfill canceled and cancel its runs that have not ended (as
        ``Instance.cancel_run``); returns how many runs were asked to stop (not counting
        those being canceled already). A backfill whose runs have all ended is done,
        and stays so."""
        with self.db.write() as conn:
            self._check(conn, backfill_id)
            unended = [
                r.id
                for r in conn.execute(
                    select(runs.c.id)
                    .select_from(backfill_runs.join(runs, runs.c.id == backfill_runs.c.run_id))
                    .where(
                        backfill_runs.c.backfill_id == backfill_id,
                        runs.c.status.in_(UNENDED),
                    )
                    .order_by(runs.c.created_at, runs.c.id)
                )
            ]
            if unended:  # one whose runs all ended is done, and stays so
                conn.execute(
                    update(backfills)
                    .where(backfills.c.id == backfill_id, backfills.c.status == REQUESTED)
                    .values(status=CANCELED)
                )
        canceled = 0
        for rid in unended:
            try:
                status = self._cancel_run(rid)
            except (InvalidTransitionError, NotFoundError):
                continue  # it ended, or was deleted, meanwhile
            if status in (RunStatus.CANCELED, RunStatus.CANCELING):
                canceled += 1
        return canceled

    @staticmethod
    def _check(conn: Any, backfill_id: str) -> None:
        if (
            conn.execute(select(backfills.c.id).where(backfills.c.id == backfill_id)).first()
            is None
        ):
            raise _missing(backfill_id)


def _missing(backfill_id: str) -> NotFoundError:
    return NotFoundError(f"no backfill {backfill_id!r} in this instance")


_ONE_OF_OURS = backfill_runs.c.backfill_id == backfills.c.id
_UNENDED_RUN = exists(
    select(1)
    .select_from(backfill_runs.join(runs, runs.c.id == backfill_runs.c.run_id))
    .where(_ONE_OF_OURS, runs.c.status.in_((str(RunStatus.QUEUED), *ACTIVE)))
)
_SELECT = select(
    backfills.c.id,
    backfills.c.job_name,
    backfills.c.created_at,
    case(
        (and_(backfills.c.status == REQUESTED, ~_UNENDED_RUN), DONE),
        else_=backfills.c.status,
    ).label("status"),
    backfills.c.spec,
    select(func.count())
    .select_from(backfill_runs)
    .where(_ONE_OF_OURS)
    .scalar_subquery()
    .label("run_count"),
)


def _record(r: Any) -> BackfillRecord:
    created = to_datetime(r.created_at)
    assert created is not None
    return BackfillRecord(
        id=r.id,
        job_name=r.job_name,
        created_at=created,
        status=str(r.status),
        spec=dict(r.spec or {}),
        run_count=int(r.run_count),
    )
