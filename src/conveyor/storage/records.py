"""Read-side values: what storage returns about runs, task runs and events.

Each record is built from its table row by one helper, with a converter per
column that is not stored as it is read (statuses, epoch times).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from conveyor.errors import NotFoundError
from conveyor.storage.states import RunStatus, TaskStatus

R = TypeVar("R")


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


def record_from_row(
    cls: type[R],
    row: Any,
    convert: Mapping[str, Callable[[Any], Any]],
    source: Mapping[str, str] | None = None,
) -> R:
    """Build ``cls`` from a row: each field from its column (or ``source[field]``)."""
    m = row._mapping if hasattr(row, "_mapping") else row
    kwargs = {}
    for f in fields(cls):  # type: ignore[arg-type]
        value = m[(source or {}).get(f.name, f.name)]
        conv = convert.get(f.name)
        kwargs[f.name] = value if conv is None else conv(value)
    return cls(**kwargs)


def _span(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else (end - start).total_seconds()


def _to_dict(record: Any, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    d: dict[str, Any] = _jsonable(asdict(record))
    for name in drop:
        del d[name]
    d["duration"] = record.duration
    return d


@dataclass(frozen=True, slots=True, repr=False)
class RunRecord:
    """One run as stored."""

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
    heartbeat_at: datetime | None = None
    interval_start: datetime | None = None
    interval_end: datetime | None = None
    partition_key: str | None = None
    # The fencing token of the run's current start, and the process responsible for it.
    token: int = 0
    host: str | None = None
    pid: int | None = None
    pid_started: float | None = None
    # Who or what started the run (a user, a token, ``local:<OS user>``, or the
    # trigger kind: ``schedule``, ``chain``, ``sensor``, ``webhook``, ``backfill``).
    launched_by: str | None = None
    # The deployed version whose code ran, and its environment (``None``: the files).
    deployed_version: int | None = None
    environment: str | None = None
    # The stored creation time, exactly: the cursor for paging through runs.
    created_ts: float = field(default=0.0, compare=False)

    _CONVERT: ClassVar[Mapping[str, Callable[[Any], Any]]] = {
        "status": RunStatus,
        "created_at": to_datetime,
        "started_at": to_datetime,
        "ended_at": to_datetime,
        "updated_at": to_datetime,
        "heartbeat_at": to_datetime,
        "interval_start": to_datetime,
        "interval_end": to_datetime,
        "tags": lambda v: v or {},
        "run_config": lambda v: v or {},
    }

    @classmethod
    def from_row(cls, row: Any) -> RunRecord:
        return record_from_row(cls, row, cls._CONVERT, {"created_ts": "created_at"})

    @property
    def cursor(self) -> tuple[float, str]:
        """Pass as ``before=`` to list the runs after this one."""
        return (self.created_ts, self.id)

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (or to now while running)."""
        if self.started_at is None:
            return None
        return _span(self.started_at, self.ended_at or datetime.now(UTC))

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self, drop=("created_ts",))

    def __repr__(self) -> str:
        return f"<RunRecord {self.id[:8]} {self.job_name} {self.status}>"


@dataclass(frozen=True, slots=True, repr=False)
class TaskRunRecord:
    """One attempt of one task in a run."""

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
    cpu: float | None = None
    memory: int | None = None

    _CONVERT: ClassVar[Mapping[str, Callable[[Any], Any]]] = {
        "status": TaskStatus,
        "started_at": to_datetime,
        "ended_at": to_datetime,
        "depends_on": lambda v: list(v or []),
    }

    @classmethod
    def from_row(cls, row: Any) -> TaskRunRecord:
        return record_from_row(cls, row, cls._CONVERT)

    @property
    def duration(self) -> float | None:
        return _span(self.started_at, self.ended_at)

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    def __repr__(self) -> str:
        return f"<TaskRunRecord {self.task_key} attempt {self.attempt} {self.status}>"


@dataclass(frozen=True, slots=True, repr=False)
class EventRecord:
    """Something that happened in a run: a failure, a retry, a hook error..."""

    id: int
    run_id: str
    task_key: str | None
    attempt: int | None
    at: datetime
    kind: str
    message: str
    data: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: Any) -> EventRecord:
        return record_from_row(cls, row, {"at": to_datetime})

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = _jsonable(asdict(self))
        return d

    def __repr__(self) -> str:
        return f"<EventRecord {self.kind} {self.task_key or ''} {self.message[:40]!r}>"


@dataclass(frozen=True, slots=True)
class TaskResources:
    """What a task ran with (Datatailr's ``Resources``).

    Attributes:
        cpu: the cores it asked for.
        memory: its memory limit in bytes (``None``: no limit).
    """

    cpu: float
    memory: int | None

    def __repr__(self) -> str:
        return f"Resources(memory={self.memory!r}, cpu={self.cpu!r})"


@dataclass(frozen=True, slots=True, repr=False)
class TaskDetails:
    """A task in a run with all of its attempts; ``status`` is the latest attempt's."""

    key: str
    task_name: str
    status: TaskStatus
    depends_on: list[str]
    attempts: list[TaskRunRecord]
    started_at: datetime | None
    ended_at: datetime | None

    @property
    def duration(self) -> float | None:
        return _span(self.started_at, self.ended_at)

    @property
    def resources(self) -> TaskResources | None:
        """The cpu and memory its latest attempt that started ran with, as recorded
        then (a call's ``.set_resources()`` included); ``None`` if it never started or
        its run was recorded before sizes were."""
        for a in reversed(self.attempts):
            if a.cpu is not None:
                return TaskResources(cpu=a.cpu, memory=a.memory)
        return None

    def to_dict(self) -> dict[str, Any]:
        d = _to_dict(self)
        d["attempts"] = [a.to_dict() for a in self.attempts]
        r = self.resources
        d["resources"] = None if r is None else {"cpu": r.cpu, "memory": r.memory}
        return d

    def __repr__(self) -> str:
        n = len(self.attempts)
        return f"<TaskDetails {self.key} {self.status} ({n} attempt{'' if n == 1 else 's'})>"


@dataclass(frozen=True, slots=True, repr=False)
class RunDetails:
    """A run with its tasks and events; the run's own fields read through
    (``details.status``, ``details.job_name``...)."""

    run: RunRecord
    tasks: list[TaskDetails]
    events: list[EventRecord] = field(default_factory=list)

    def task(self, key: str) -> TaskDetails:
        for t in self.tasks:
            if t.key == key:
                return t
        raise NotFoundError(
            f"run {self.run.id} has no task {key!r} (tasks: {', '.join(t.key for t in self.tasks)})"
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.run, name)

    def to_dict(self) -> dict[str, Any]:
        d = self.run.to_dict()
        d["tasks"] = [t.to_dict() for t in self.tasks]
        d["events"] = [e.to_dict() for e in self.events]
        return d

    def __repr__(self) -> str:
        return f"<RunDetails {self.run.id[:8]} {self.run.job_name} {self.run.status}>"


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
