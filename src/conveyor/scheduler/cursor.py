"""Reading an append-only table in the order of its sequence id, without missing a row.

The daemons used to find new run ends and webhook calls by the time they were
written, less a 5 s margin: a row written by a process whose clock was more
than 5 s behind was never read. A database sequence does not depend on any
clock, but on PostgreSQL its ids can become visible out of order: a
transaction that took id 100 may commit after the one that took 101. So the
cursor keeps, besides the highest id read, the ids below it not seen yet (the
gaps) and reads them again each pass; a gap still missing after
``KEEP_GAPS`` seconds is dropped (a transaction that rolled back leaves a gap
for good). Reading a row twice is harmless: what a row fires is keyed by it.

Only how far a cursor got is stored (``StoredCursor``), with the sensor
states, so a restarted daemon goes on from there: the position below the
oldest gap, so that the rows of the gaps are read again after a restart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from conveyor.storage.sensors import SensorStore

log = logging.getLogger("conveyor.daemon")

T = TypeVar("T")

# How long an id missing below the cursor is read again (seconds).
KEEP_GAPS = 60.0
# The most gaps kept (the oldest are dropped first). Ids that commit out of order were
# taken by transactions running at the same time, so close to each other: below a row,
# only this many ids are watched (a jump of a sequence, after a crash or a truncation,
# is no gap).
MAX_GAPS = 1000
# Rows read in one query, and the most queries of one read.
BATCH = 1000
ROUNDS = 10


@dataclass(slots=True)
class Batch(Generic[T]):
    """What one ``read`` found: the rows, oldest first, and where the cursor goes on
    ``commit``."""

    rows: list[T]
    position: int
    gaps: dict[int, float] = field(default_factory=dict)


class OrderedCursor(Generic[T]):
    """The rows of a table, each read once, in the order of their sequence ids.

    ``after(id, limit)`` returns the rows above an id, oldest first;
    ``among(ids)`` the rows of those ids that are there; ``id_of`` a row's id.
    ``read`` finds the new rows without moving; ``commit`` moves past them,
    once what they fire has fired.
    """

    def __init__(
        self,
        *,
        after: Callable[[int, int], Sequence[T]],
        among: Callable[[Sequence[int]], Sequence[T]],
        id_of: Callable[[T], int],
        keep_gaps: float = KEEP_GAPS,
        clock: Callable[[], float] = time.monotonic,
        batch: int = BATCH,
    ) -> None:
        self._after = after
        self._among = among
        self._id_of = id_of
        self.keep_gaps = keep_gaps
        self.clock = clock
        self.batch = batch
        self.position: int | None = None
        # Each id missing below the position, with when it was first missed.
        self.gaps: dict[int, float] = {}

    @property
    def started(self) -> bool:
        return self.position is not None

    def start(self, position: int) -> None:
        """Read from the row after ``position`` on."""
        self.position = position
        self.gaps = {}

    @property
    def settled(self) -> int:
        """The id up to which every row has been read (or given up on)."""
        assert self.position is not None, "start the cursor first"
        return min(self.gaps) - 1 if self.gaps else self.position

    def read(self) -> Batch[T]:
        """The rows not read yet: those of the gaps that showed up, then the new ones."""
        assert self.position is not None, "start the cursor first"
        now = self.clock()
        gaps = {i: t for i, t in self.gaps.items() if now - t < self.keep_gaps}
        if len(gaps) < len(self.gaps):
            log.debug("gave up on %d ids never committed", len(self.gaps) - len(gaps))
        rows: list[T] = []
        if gaps:
            for row in self._among(sorted(gaps)):
                gaps.pop(self._id_of(row), None)
                rows.append(row)
        position = self.position
        for _ in range(ROUNDS):
            new = self._after(position, self.batch)
            for row in new:
                rid = self._id_of(row)
                for missing in range(max(position + 1, rid - MAX_GAPS), rid):
                    gaps[missing] = now
                position = max(position, rid)
                rows.append(row)
            if len(new) < self.batch:
                break
        if len(gaps) > MAX_GAPS:
            for old in sorted(gaps)[: len(gaps) - MAX_GAPS]:
                del gaps[old]
        rows.sort(key=self._id_of)
        return Batch(rows, position, gaps)

    def commit(self, batch: Batch[T]) -> None:
        """Move past the rows of ``batch``."""
        self.position = batch.position
        self.gaps = batch.gaps


class StoredCursor(Generic[T]):
    """An ``OrderedCursor`` whose settled position is kept in storage under ``name``.

    On first use it starts from the stored position; a stored time (the
    cursors of before, which held an epoch time) is turned into the id of the
    last row before it, less a margin, by ``before``; when nothing is stored,
    ``first()`` says where to start.
    """

    def __init__(
        self,
        name: str,
        store: SensorStore,
        cursor: OrderedCursor[T],
        *,
        first: Callable[[], int],
        before: Callable[[float], int],
    ) -> None:
        self.name = name
        self.store = store
        self.cursor = cursor
        self._first = first
        self._before = before
        self._saved: int | None = None

    def read(self) -> Batch[T]:
        if not self.cursor.started:
            self._load()
        return self.cursor.read()

    def commit(self, batch: Batch[T], now: float) -> None:
        """Move past ``batch`` and store how far the cursor got, when that moved."""
        self.cursor.commit(batch)
        settled = self.cursor.settled
        if settled != self._saved:
            self.store.save(self.name, str(settled), now)
            self._saved = settled

    def _load(self) -> None:
        stored, _ = self.store.get(self.name)
        if stored is None or not stored.strip():
            position = self._first()
        elif stored.strip().lstrip("-").isdigit():
            position = int(stored)
            self._saved = position
        else:
            position = self._before(float(stored) - 5.0)  # a time, from before the ids
        self.cursor.start(position)
