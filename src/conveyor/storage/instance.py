"""``Instance``: where runs, events, logs and results live, and how to read them back."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from conveyor.errors import ConfigError, ConveyorError, NotFoundError, StorageError
from conveyor.storage import journal
from conveyor.storage.access import AccessStore
from conveyor.storage.audit import AuditStore
from conveyor.storage.backfills import BackfillStore
from conveyor.storage.blob_url import blob_store_from_env
from conveyor.storage.blobs import BlobStore, DirectoryBlobStore, MemoryBlobStore
from conveyor.storage.daemon_status import DaemonStatusStore
from conveyor.storage.db import Database, check_database_url
from conveyor.storage.deletion import Deleted, RunDeletion, epoch
from conveyor.storage.deployments import DeploymentStore
from conveyor.storage.events import EventStore
from conveyor.storage.hosts import is_gone
from conveyor.storage.identity import IdentityStore
from conveyor.storage.leases import LeaseStore
from conveyor.storage.logs import LogStore
from conveyor.storage.pools import PoolStore
from conveyor.storage.recorder import RunRecorder
from conveyor.storage.records import RunDetails, RunRecord, group_attempts
from conveyor.storage.results import ResultStore
from conveyor.storage.run_queries import RunFilter, RunPage, RunQueries
from conveyor.storage.runs import RunStore
from conveyor.storage.secrets import SecretStore
from conveyor.storage.sensors import SensorStore
from conveyor.storage.signals import SignalStore
from conveyor.storage.states import RunStatus
from conveyor.storage.task_runs import TaskRunStore
from conveyor.storage.ticks import TickStore
from conveyor.storage.trigger_state import TriggerStateStore
from conveyor.storage.workloads import WorkloadStore

ENV_HOME = "CONVEYOR_HOME"
ENV_DATABASE_URL = "CONVEYOR_DATABASE_URL"
DEFAULT_HOME = "~/.conveyor"

_default_lock = threading.Lock()
_default: tuple[tuple[str | None, str | None], Instance] | None = None


class Instance:
    """A database plus a blob store for logs and results.

    Make one with ``Instance.ephemeral()`` (in memory, gone with the process),
    ``Instance.at(home)`` (an SQLite file and a directory), or
    ``Instance.from_env()`` (``CONVEYOR_HOME``, ``CONVEYOR_DATABASE_URL``).
    """

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        *,
        home: Path | None = None,
        migrate: bool | None = True,
    ) -> None:
        self.db = db
        self.home = home
        self.blobs = blobs
        if migrate:
            db.migrate()
        elif migrate is False:
            db.check_schema()
        self.run_store = RunStore(db)
        self.task_run_store = TaskRunStore(db)
        self.event_store = EventStore(db)
        self.log_store = LogStore(db, blobs)
        self.result_store = ResultStore(db, blobs, home)  # signed with the instance's key
        self.tick_store = TickStore(db)
        self.lease_store = LeaseStore(db)
        self.signal_store = SignalStore(db)
        self.pool_store = PoolStore(db)
        self.sensor_store = SensorStore(db)
        self.run_deletion = RunDeletion(db, blobs, home)
        self.run_queries = RunQueries(db)
        # Timed triggers and sensors switched off and on (storage.trigger_state).
        self.trigger_states = TriggerStateStore(db)
        # Each scheduler daemon's last pass and error (storage.daemon_status).
        self.daemon_status = DaemonStatusStore(db)
        # Backfills with the runs each queued (storage.backfills).
        self.backfills = BackfillStore(db, self.cancel_run)
        # Users, groups, API tokens and sessions; access lists as an admin changed
        # them; the audit log (storage.identity, storage.access, storage.audit).
        self.identity = IdentityStore(db)
        self.access = AccessStore(db)
        self.audit = AuditStore(db)
        # Services, apps, interactive jobs and Excel add-ins (storage.workloads).
        self.workloads = WorkloadStore(db)
        self.secrets = SecretStore(db, self.audit, home)  # encrypted (storage.secrets)
        # Deployed versions and the version active in each environment.
        self.deployments = DeploymentStore(db)

    @classmethod
    def ephemeral(cls) -> Instance:
        """An instance in memory: runs are recorded, and gone when the process ends."""
        return cls(Database("sqlite://"), MemoryBlobStore())

    @classmethod
    def at(cls, home: str | os.PathLike[str], database_url: str | None = None) -> Instance:
        """An instance whose files live in ``home``, on SQLite there unless a URL is given.

        ``database_url`` is ``postgresql://...`` (``postgres://`` and
        ``postgresql+psycopg://`` work too) or an SQLite URL. ``ConfigError`` if
        ``home`` cannot be a folder or the URL is not one of those.
        """
        return cls._open(home, database_url, "home", "database_url")

    @classmethod
    def from_env(cls, *, migrate: bool | None = True) -> Instance:
        """The instance named by ``CONVEYOR_HOME`` (default ``~/.conveyor``) and
        ``CONVEYOR_DATABASE_URL`` (default: SQLite in the home), its blobs where
        ``CONVEYOR_BLOB_URL`` says (default: the home; ``storage.blob_url``).

        ``ConfigError``, naming the variable, if either is set but empty or unusable.
        With ``migrate=False`` an old schema is an error (``conveyor db upgrade``
        brings it up) rather than upgraded; with ``None`` it is left as it is.
        """
        home, url = os.environ.get(ENV_HOME), os.environ.get(ENV_DATABASE_URL)
        if home is not None and not home.strip():
            raise ConfigError(
                f"{ENV_HOME} is set but empty; set it to the folder for Conveyor's database, "
                f"logs and results (such as {DEFAULT_HOME}), or unset it to use {DEFAULT_HOME}"
            )
        if url is not None and not url.strip():
            raise ConfigError(
                f"{ENV_DATABASE_URL} is set but empty; set it to a PostgreSQL URL "
                f"(postgresql://USER:PASSWORD@HOST:PORT/DATABASE), or unset it to keep runs "
                f"in SQLite in {ENV_HOME}"
            )
        return cls._open(home or DEFAULT_HOME, url, ENV_HOME, ENV_DATABASE_URL, migrate=migrate)

    @classmethod
    def _open(
        cls,
        home: str | os.PathLike[str],
        database_url: str | None,
        home_name: str,
        url_name: str,
        *,
        migrate: bool | None = True,
    ) -> Instance:
        """``at(home, database_url)``, its errors naming the values ``home_name`` and
        ``url_name`` (an argument or an environment variable)."""
        url = None if database_url is None else check_database_url(database_url, url_name)
        path = _make_home(home, home_name)
        url = url or f"sqlite:///{path / 'conveyor.db'}"
        # Blobs (results, logs, code) in the store CONVEYOR_BLOB_URL names, else in the home.
        blobs: BlobStore = blob_store_from_env() or DirectoryBlobStore(path)
        return cls(Database(url), blobs, home=path, migrate=migrate)

    @classmethod
    def default(cls) -> Instance:
        """The instance ``job.run()`` uses when none is given, shared by the process.

        ``from_env()`` when ``CONVEYOR_HOME`` or ``CONVEYOR_DATABASE_URL`` is set,
        else one ephemeral instance, so ``job.runs()`` sees the runs made before.
        """
        global _default
        key = (os.environ.get(ENV_HOME), os.environ.get(ENV_DATABASE_URL))
        with _default_lock:
            if _default is None or _default[0] != key:
                inst = cls.from_env() if key != (None, None) else cls.ephemeral()
                _default = (key, inst)
            return _default[1]

    def recorder(self, run_id: str, token: int | None = None) -> RunRecorder:
        """The write path of run ``run_id``'s process; with ``token``, fenced by it."""
        return RunRecorder(
            self.db,
            self.log_store,
            self.result_store,
            run_id,
            token=token,
            journal=self.journal_path(run_id),
        )

    def journal_path(self, run_id: str) -> Path | None:
        """Where run ``run_id`` keeps what it could not write (None in memory)."""
        return journal.journal_path(self.home, run_id) if self.home is not None else None

    def close(self) -> None:
        self.db.dispose()

    def __repr__(self) -> str:
        where = self.home if self.home is not None else "memory"
        return f"<Instance {self.db.safe_url} ({where})>"

    # -- inspection ----------------------------------------------------------------------------

    def runs(
        self,
        job_name: str | None = None,
        *,
        limit: int = 20,
        status: str | None = None,
        before: str | None = None,
    ) -> list[RunRecord]:
        """Runs newest first, of one job or all; ``before``: only runs older than that run
        (a run id or its first characters), for the next page."""
        cursor = None
        if before is not None:
            cursor = self.run_store.get(self.run_store.resolve_id(before)).cursor
        return self.run_store.list(job_name=job_name, status=status, limit=limit, before=cursor)

    def query_runs(
        self, filter: RunFilter, *, limit: int = 50, cursor: str | None = None
    ) -> RunPage:
        """A page of the runs that match ``filter``, newest first; pass its ``next_cursor``
        as ``cursor`` for the next page. ``ConfigError`` for a cursor this did not give."""
        return self.run_queries.page(filter, limit=limit, cursor=cursor)

    def run_status_counts(self, filter: RunFilter) -> dict[str, int]:
        """How many runs that match ``filter`` are in each status."""
        return self.run_queries.status_counts(filter)

    def pool_holders(self, name: str) -> list[str]:
        """The runs that hold slots of pool ``name`` now (a run whose tasks hold slots of
        it counts once), in slot order."""
        holders = self.lease_store.held(f"pool:{name}")
        return list(dict.fromkeys(h.split("/", 1)[0] for h in holders))

    def run(self, run_id: str, *, job_name: str | None = None) -> RunRecord:
        run = self.run_store.get(run_id)
        if job_name is not None and run.job_name != job_name:
            raise NotFoundError(f"run {run_id} is a run of job {run.job_name!r}, not {job_name!r}")
        return run

    def run_details(self, run_id: str, *, job_name: str | None = None) -> RunDetails:
        """The run with its tasks (state, attempts, times, dependencies) and events."""
        run = self.run(run_id, job_name=job_name)
        tasks = group_attempts(self.task_run_store.for_run(run_id))
        return RunDetails(run=run, tasks=tasks, events=self.event_store.for_run(run_id))

    def _task_keys(self, run_id: str) -> list[str]:
        return [t.key for t in group_attempts(self.task_run_store.for_run(run_id))]

    def _check_task(self, run_id: str, task_key: str) -> None:
        keys = self._task_keys(run_id)
        if task_key not in keys:
            raise NotFoundError(
                f"run {run_id} has no task {task_key!r} (tasks: {', '.join(keys) or 'none'})"
            )

    def logs(
        self,
        run_id: str,
        task_name: str,
        *,
        stderr: bool = False,
        lines: int = 5000,
        job_name: str | None = None,
    ) -> str:
        """The last ``lines`` lines task ``task_name`` wrote to stdout (or stderr) in a run
        (``environment``: the output of building the virtual environment of its version)."""
        self.run(run_id, job_name=job_name)
        if task_name != "environment":
            self._check_task(run_id, task_name)
        return self.log_store.read(
            run_id, task_name, stream="stderr" if stderr else "stdout", lines=lines
        )

    def webhook(self, path: str, payload: dict[str, Any] | None = None) -> int:
        """Record a call of webhook ``path``; the daemon runs every job with the trigger
        ``webhook:<path>`` once for it. Returns the call's id."""
        from sqlalchemy import insert

        from conveyor.storage.schema import webhook_calls

        if not isinstance(path, str) or not path.strip():
            raise ConfigError(f"webhook path {path!r}: give the path of a webhook: trigger")
        with self.db.write() as conn:
            result = conn.execute(
                insert(webhook_calls).values(path=path.strip(), payload=payload, at=time.time())
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def webhook_calls_since(self, since: float) -> list[dict[str, Any]]:
        """Webhook calls recorded at or after ``since``, oldest first."""
        from sqlalchemy import select

        from conveyor.storage.schema import webhook_calls

        with self.db.read() as conn:
            rows = conn.execute(
                select(webhook_calls)
                .where(webhook_calls.c.at >= since)
                .order_by(webhook_calls.c.id)
            ).all()
        return [dict(r._mapping) for r in rows]

    def webhook_calls_after(self, after: int, limit: int) -> list[dict[str, Any]]:
        """Webhook calls with an id above ``after``, oldest first, at most ``limit``."""
        from sqlalchemy import select

        from conveyor.storage.schema import webhook_calls

        q = (
            select(webhook_calls)
            .where(webhook_calls.c.id > after)
            .order_by(webhook_calls.c.id)
            .limit(limit)
        )
        with self.db.read() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def webhook_calls_among(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        """The webhook calls of ``ids`` that are there (committed), oldest first."""
        from sqlalchemy import select

        from conveyor.storage.runs import IN_CHUNK
        from conveyor.storage.schema import webhook_calls

        wanted = sorted(ids)
        found: list[dict[str, Any]] = []
        with self.db.read() as conn:
            for i in range(0, len(wanted), IN_CHUNK):
                q = select(webhook_calls).where(webhook_calls.c.id.in_(wanted[i : i + IN_CHUNK]))
                found += [dict(r._mapping) for r in conn.execute(q)]
        return sorted(found, key=lambda c: int(c["id"]))

    def last_webhook_call_id(self, before: float | None = None) -> int:
        """The newest webhook call's id (of those made before ``before``); 0 if none."""
        from sqlalchemy import func, select

        from conveyor.storage.schema import webhook_calls

        q = select(func.max(webhook_calls.c.id))
        if before is not None:
            q = q.where(webhook_calls.c.at < before)
        with self.db.read() as conn:
            return int(conn.execute(q).scalar() or 0)

    def cancel_run(self, run_id: str) -> RunStatus:
        """Ask a run to stop (see ``RunStore.request_cancel``); returns its status now.

        A running run ends ``canceled`` once its process has stopped its tasks,
        within a couple of seconds; one whose process is gone (as this machine
        can tell) is ended ``canceled`` at once.
        """
        status = self.run_store.request_cancel(run_id)
        if status is RunStatus.CANCELING:
            run = self.run_store.get(run_id)
            if is_gone(run.host, run.pid, run.pid_started):
                self.end_lost_run(run_id, "canceled; its process was already gone", run.token)
                status = self.run_store.get(run_id).status
        return status

    def end_lost_run(self, run_id: str, reason: str, token: int | None = None) -> RunStatus:
        """End a run whose process is gone: first the records its journal kept (if it left
        one on this machine), then its unfinished tasks closed, the run ``failure`` (or
        ``canceled`` if it was being canceled) and its slots freed, in one transaction.

        With ``token`` (the start the caller judged), nothing happens if the run
        has been started again since. Returns the run's status afterwards.
        """
        path = self.journal_path(run_id)
        if path is not None and path.exists():
            try:
                self.recover(run_id)
            except ConveyorError as e:
                reason = f"{reason}; its journal could not be applied: {e}"
        with self.db.write() as conn:
            row = self.run_store.get_in(conn, run_id, lock=True)
            if token is not None and row.token != token:
                return row.status
            if not row.status.is_terminal:
                to = RunStatus.CANCELED if row.status is RunStatus.CANCELING else RunStatus.FAILURE
                TaskRunStore.end_unfinished_in(
                    conn, run_id, reason, canceled=to is RunStatus.CANCELED
                )
                self.run_store.set_status_in(conn, run_id, to, error=reason)
            LeaseStore.release_in(conn, run_id)
            return self.run_store.get_in(conn, run_id).status

    def recover(self, run_id: str) -> str:
        """Write the records run ``run_id`` kept in its journal on this machine.

        Returns what was written. Raises ``NotFoundError`` if there is no
        journal, ``LeaseLostError`` if the run has moved on (started again,
        or ended) so its journal can no longer be applied: the file stays.
        """
        path = self.journal_path(run_id)
        batches = journal.load(path) if path is not None else None
        if batches is None or path is None:
            raise NotFoundError(f"run {run_id} left no journal in {self.home}")
        written = []
        for batch in batches:
            with self.db.write() as conn:
                if batch.write(conn):
                    written.append(batch)
        journal.remove(path)
        ends = [b.run_status for b in written if b.run_status]
        ended = f", and its end ({ends[-1]})" if ends else ""
        counts = {
            "task record": sum(len(b.inserts) + len(b.updates) for b in written),
            "event": sum(len(b.events) for b in written),
            "log": sum(len(b.logs) for b in written),
            "result": sum(len(b.results) for b in written),
        }
        said = [f"{n} {noun}{'' if n == 1 else 's'}" for noun, n in counts.items()]
        return f"{', '.join(said[:-1])} and {said[-1]}{ended}"

    def delete_runs(
        self,
        run_ids: Iterable[str] | None = None,
        *,
        job_name: str | None = None,
        before: datetime | str | float | None = None,
    ) -> Deleted:
        """Delete ended runs with their tasks, events, logs and results, files included.

        Args:
            run_ids: these runs (full ids). Each must exist and have ended, or
                nothing is deleted.
            job_name: the ended runs of this job.
            before: the ended runs created before this moment: a ``datetime``,
                an ISO date or datetime (UTC unless it says), or epoch seconds.

        ``job_name`` and ``before`` together delete the runs that match both;
        runs that have not ended are left. Returns what was deleted.

        Raises:
            NotFoundError: a run of ``run_ids`` does not exist.
            StorageError: a run of ``run_ids`` has not ended (cancel it first),
                or no runs are named at all.
        """
        deletion = self.run_deletion
        if run_ids is not None:
            if job_name is not None or before is not None:
                raise StorageError("delete_runs: give run ids, or job_name and/or before, not both")
            ids = list(dict.fromkeys(run_ids))
            self.check_deletable(ids)
            return deletion.delete(ids)
        if job_name is None and before is None:
            raise StorageError(
                "delete_runs: name the runs to delete: run ids, job_name, or before (a date)"
            )
        return deletion.delete(deletion.ended(job_name=job_name, before=epoch(before, "before")))

    def check_deletable(self, run_ids: Iterable[str]) -> None:
        """Raise unless every run of ``run_ids`` exists and has ended (see ``delete_runs``)."""
        ids = list(run_ids)
        statuses = self.run_deletion.statuses(ids)
        missing = [rid for rid in ids if rid not in statuses]
        if missing:
            raise NotFoundError(f"no run {missing[0]!r} in this instance")
        active = [rid for rid in ids if not RunStatus(statuses[rid]).is_terminal]
        if active:
            shown = ", ".join(f"{rid[:8]} ({statuses[rid]})" for rid in active[:10])
            raise StorageError(
                f"cannot delete runs that have not ended: {shown}; cancel them first "
                f"(conveyor runs cancel RUN, or Instance.cancel_run) and delete them once "
                f"they have ended"
            )

    def result(self, run_id: str, task_name: str, *, job_name: str | None = None) -> Any:
        """The stored output of task ``task_name`` in a run."""
        self.run(run_id, job_name=job_name)
        self._check_task(run_id, task_name)
        return self.result_store.get(run_id, task_name)


def _make_home(home: str | os.PathLike[str], name: str) -> Path:
    """The folder ``home``, made if missing; ``ConfigError`` naming ``name`` if it cannot be."""
    if not os.fspath(home).strip():  # Path("") is the working directory
        raise ConfigError(f"{name} is empty; give the folder for Conveyor's database and files")
    try:
        path = Path(home).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
    except (OSError, RuntimeError) as e:
        raise ConfigError(
            f"{name}={os.fspath(home)!r}: {_why_not_a_folder(Path(home), e)}; set it to a folder "
            f"Conveyor may create and write (such as {DEFAULT_HOME})"
        ) from None
    return path


def _why_not_a_folder(home: Path, error: OSError | RuntimeError) -> str:
    if isinstance(error, RuntimeError):  # expanduser: "~someone" with no such user
        return f"cannot expand {str(home)!r} ({error})"
    path = home.expanduser().absolute()
    for p in (path, *path.parents):
        if p.exists() and not p.is_dir():
            return f"{p} is a file, not a folder"
    if isinstance(error, PermissionError):
        return f"no permission to create {error.filename or path}"
    return f"cannot create it ({error.strerror or error})"
