"""The judge of dead runs: any daemon ends any dead run of its instance, on evidence.

A run is dead when

- its host says so: the process responsible for it (its worker's
  supervisor, or the process running it in-process) is gone from this
  machine, which the kernel can tell at once; or
- it is on a machine this daemon cannot ask, and its heartbeat has not
  moved for ``lease`` seconds **by the database's clock, watched by this
  daemon while it could reach the database**. After the daemon could not
  read the database (an outage, a pause of the daemon itself) it starts
  watching afresh, so runs that could not heartbeat during an outage get a
  whole lease period to do so once it is over.

A process on this machine that is alive is never judged dead by its
silence: a task holding the GIL, a process stopped with SIGSTOP, or one
waiting for the database keeps its run (and its slots) until it ends.

A run still ``starting`` goes back to the queue, not to ``failure``, when
its starter is gone before a worker began it, or when no worker began it
within ``start_timeout``: its start was lost, not its work. A worker that
comes for the old start later is refused by the run's fencing token.

A run that ended with task runs still open (running or pending: its end
should have closed them) has them closed: the judge looks at every run that
ends (``run_ends``), and at its first pass at all ended runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from conveyor.scheduler.cursor import OrderedCursor
from conveyor.storage.hosts import is_gone
from conveyor.storage.instance import Instance
from conveyor.storage.runs import RunEnd, run_lease
from conveyor.storage.states import RunStatus

log = logging.getLogger("conveyor.daemon")

# A run left starting this long (watched the same way) never got a worker: it is requeued.
START_TIMEOUT = 60.0
# A start given this many times without a worker beginning it fails instead.
MAX_STARTS = 5
# A judge that could not read the database for longer than this starts watching afresh.
MAX_GAP = 5.0


@dataclass(slots=True)
class _Seen:
    # What the judge last saw of a run (its start, status and heartbeat) and since when
    # (database time) it has seen exactly that.
    sign: tuple[object, ...]
    since: float


@dataclass(frozen=True, slots=True)
class Verdict:
    run_id: str
    job_name: str
    action: str  # "ended" or "requeued"
    reason: str


class RunJudge:
    """Finds dead runs and ends them (``judge``), one pass at a time."""

    def __init__(
        self,
        instance: Instance,
        *,
        lease: float | None = None,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.instance = instance
        self.lease = lease if lease is not None else run_lease()
        self.start_timeout = start_timeout
        self._seen: dict[str, _Seen] = {}
        self._last_read: float | None = None
        store = instance.run_store
        self._ends: OrderedCursor[RunEnd] = OrderedCursor(
            after=store.ends_after, among=store.ends_among, id_of=lambda end: end.id
        )

    def judge(self) -> list[Verdict]:
        """One pass over every active run of the instance; returns what it did."""
        try:
            now, rows = self.instance.run_store.active()
        except Exception:
            self._last_read = None  # watch afresh once the database answers again
            raise
        if self._last_read is None or now - self._last_read > MAX_GAP:
            self._seen.clear()
        self._last_read = now
        verdicts = []
        active = set()
        for row in rows:
            active.add(row.id)
            sign = (row.token, row.status, row.heartbeat_at)
            seen = self._seen.get(row.id)
            if seen is None or seen.sign != sign:
                seen = self._seen[row.id] = _Seen(sign, now)
            verdict = self._verdict(row, now - seen.since)
            if verdict is not None:
                verdicts.append(verdict)
        for gone in set(self._seen) - active:
            del self._seen[gone]
        return verdicts + self._close_open_tasks()

    def _close_open_tasks(self) -> list[Verdict]:
        """Close the task runs left open in runs that ended (see the module's docstring)."""
        tasks = self.instance.task_run_store
        if not self._ends.started:
            self._ends.start(self.instance.run_store.last_end_id())
            found = tasks.open_in_ended()
        else:
            batch = self._ends.read()
            found = tasks.open_in_ended([e.run_id for e in batch.rows]) if batch.rows else {}
            self._ends.commit(batch)
        verdicts = []
        for run_id, status in found.items():
            canceled = status == RunStatus.CANCELED
            why = f"the run ended {status} with them still open"
            tasks.end_unfinished(run_id, why, canceled=canceled)
            job = self.instance.run_store.get(run_id).job_name
            verdicts.append(Verdict(run_id, job, "had its open tasks closed", why))
        return verdicts

    def _verdict(self, row: Any, silent: float) -> Verdict | None:
        run_id: str = row.id
        job: str = row.job_name
        status = RunStatus(row.status)
        token: int = row.token
        host, pid = row.host, row.pid
        gone = is_gone(host, pid, row.pid_started)
        if status is RunStatus.STARTING:
            if gone:
                why = f"its starter (process {pid}) ended before a worker began it"
            elif silent > self.start_timeout:
                why = f"no worker began it within {self.start_timeout:g}s"
            else:
                return None
            return self._requeue(run_id, job, token, why)
        if gone:
            why = f"its process {pid} on {host} is gone (killed, or it crashed)"
        elif gone is None and silent > self.lease:
            why = (
                f"its worker sent no heartbeat for {silent:.0f}s, watched while the database "
                f"answered (its process on {host or 'an unknown host'} died or is cut off)"
            )
        else:
            return None
        status_now = self.instance.end_lost_run(run_id, why, token)
        if not status_now.is_terminal:
            return None
        self._seen.pop(run_id, None)
        return Verdict(run_id, job, f"ended {status_now}", why)

    def _requeue(self, run_id: str, job: str, token: int, why: str) -> Verdict | None:
        store = self.instance.run_store
        if token >= MAX_STARTS:
            why = f"{why}; it was started {token} times without a worker beginning it"
            end = self.instance.end_lost_run
            status = end(run_id, f"{why} (see the worker logs in CONVEYOR_HOME/workers)", token)
            return Verdict(run_id, job, f"ended {status}", why) if status.is_terminal else None
        if not store.requeue(run_id, token):
            return None
        self._seen.pop(run_id, None)
        self.instance.event_store.add(run_id, "requeued", f"back in the queue: {why}")
        return Verdict(run_id, job, "requeued", why)
