"""Read-side values: what storage returns about runs, task runs and events."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from conveyor.storage.states import RunStatus, TaskStatus


def to_datetime(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


@dataclass(frozen=True, slots=True, repr=False)
class RunRecord:
    """One run as stored."""

    def __repr__(self) -> str:
        return f"<RunRecord {self.id[:8]} {self.job_name} {self.status}>"

    id: str
    job_name: str
    job_version: str
    status: RunStatus
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    updated_at: datetime
    tags: dict[str, str]
    run_config: dict[str, Any]
    selection: list[str] | None
    trigger: str
    origin: dict[str, Any] | None
    parent_run_id: str | None
    root_run_id: str | None
    error: str | None
    # The stored creation time, exactly: the cursor for paging through runs.
    created_ts: float = field(default=0.0, compare=False)

    @property
    def cursor(self) -> tuple[float, str]:
        """Pass as ``before=`` to list the runs after this one."""
        return (self.created_ts, self.id)

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (or to now while running)."""
        if self.started_at is None:
            return None
        end = self.ended_at or datetime.now(UTC)
        return (end - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = _jsonable(asdict(self))
        del d["created_ts"]
        d["duration"] = self.duration
        return d

    @classmethod
    def from_row(cls, row: Any) -> RunRecord:
        m = row._mapping
        return cls(
            id=m["id"],
            job_name=m["job_name"],
            job_version=m["job_version"],
            status=RunStatus(m["status"]),
            created_at=datetime.fromtimestamp(m["created_at"], UTC),
            started_at=to_datetime(m["started_at"]),
            ended_at=to_datetime(m["ended_at"]),
            updated_at=datetime.fromtimestamp(m["updated_at"], UTC),
            tags=m["tags"] or {},
            run_config=m["run_config"] or {},
            selection=m["selection"],
            trigger=m["trigger"],
            origin=m["origin"],
            parent_run_id=m["parent_run_id"],
            root_run_id=m["root_run_id"],
            error=m["error"],
            created_ts=m["created_at"],
        )


@dataclass(frozen=True, slots=True, repr=False)
class TaskRunRecord:
    """One attempt of one task in a run."""

    def __repr__(self) -> str:
        return f"<TaskRunRecord {self.task_key} attempt {self.attempt} {self.status}>"

    run_id: str
    task_key: str
    attempt: int
    task_name: str
    status: TaskStatus
    started_at: datetime | None
    ended_at: datetime | None
    depends_on: list[str]
    error_type: str | None
    error_message: str | None
    error_traceback: str | None
    retry_wait: float | None

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = _jsonable(asdict(self))
        d["duration"] = self.duration
        return d

    @classmethod
    def from_row(cls, row: Any) -> TaskRunRecord:
        m = row._mapping
        return cls(
            run_id=m["run_id"],
            task_key=m["task_key"],
            attempt=m["attempt"],
            task_name=m["task_name"],
            status=TaskStatus(m["status"]),
            started_at=to_datetime(m["started_at"]),
            ended_at=to_datetime(m["ended_at"]),
            depends_on=list(m["depends_on"] or []),
            error_type=m["error_type"],
            error_message=m["error_message"],
            error_traceback=m["error_traceback"],
            retry_wait=m["retry_wait"],
        )


@dataclass(frozen=True, slots=True, repr=False)
class EventRecord:
    """Something that happened in a run: a failure, a retry, a hook error..."""

    def __repr__(self) -> str:
        return f"<EventRecord {self.kind} {self.task_key or ''} {self.message[:40]!r}>"

    id: int
    run_id: str
    task_key: str | None
    attempt: int | None
    at: datetime
    kind: str
    message: str
    data: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = _jsonable(asdict(self))
        return d

    @classmethod
    def from_row(cls, row: Any) -> EventRecord:
        m = row._mapping
        return cls(
            id=m["id"],
            run_id=m["run_id"],
            task_key=m["task_key"],
            attempt=m["attempt"],
            at=datetime.fromtimestamp(m["at"], UTC),
            kind=m["kind"],
            message=m["message"],
            data=m["data"],
        )


@dataclass(frozen=True, slots=True, repr=False)
class TaskDetails:
    """A task in a run with all of its attempts; ``status`` is the latest attempt's."""

    def __repr__(self) -> str:
        return f"<TaskDetails {self.key} {self.status} ({len(self.attempts)} attempts)>"

    key: str
    task_name: str
    status: TaskStatus
    depends_on: list[str]
    attempts: list[TaskRunRecord]
    started_at: datetime | None
    ended_at: datetime | None

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "task_name": self.task_name,
            "status": str(self.status),
            "depends_on": self.depends_on,
            "attempts": [a.to_dict() for a in self.attempts],
            "started_at": _jsonable(self.started_at),
            "ended_at": _jsonable(self.ended_at),
            "duration": self.duration,
        }


@dataclass(frozen=True, slots=True, repr=False)
class RunDetails:
    """A run with its tasks and events."""

    def __repr__(self) -> str:
        return f"<RunDetails {self.run.id[:8]} {self.run.job_name} {self.run.status}>"

    run: RunRecord
    tasks: list[TaskDetails]
    events: list[EventRecord] = field(default_factory=list)

    def task(self, key: str) -> TaskDetails:
        for t in self.tasks:
            if t.key == key:
                return t
        from conveyor.errors import NotFoundError

        raise NotFoundError(
            f"run {self.run.id} has no task {key!r} (tasks: {', '.join(t.key for t in self.tasks)})"
        )

    def __getattr__(self, name: str) -> Any:
        # The run's own fields read through: details.status, details.job_name...
        return getattr(self.run, name)

    def to_dict(self) -> dict[str, Any]:
        d = self.run.to_dict()
        d["tasks"] = [t.to_dict() for t in self.tasks]
        d["events"] = [e.to_dict() for e in self.events]
        return d


def group_attempts(rows: list[TaskRunRecord]) -> list[TaskDetails]:
    """Group attempt rows (ordered by first appearance) into per-task details."""
    by_key: dict[str, list[TaskRunRecord]] = {}
    for r in rows:
        by_key.setdefault(r.task_key, []).append(r)
    out = []
    for key, attempts in by_key.items():
        attempts.sort(key=lambda a: a.attempt)
        last = attempts[-1]
        starts = [a.started_at for a in attempts if a.started_at is not None]
        out.append(
            TaskDetails(
                key=key,
                task_name=last.task_name,
                status=last.status,
                depends_on=attempts[0].depends_on,
                attempts=attempts,
                started_at=min(starts) if starts else None,
                ended_at=last.ended_at,
            )
        )
    return out
