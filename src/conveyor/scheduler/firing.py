"""What the daemon's steps share: the workspace, the instance, the clock, and the ticks
they collect to fire.

A step collects the ticks it means to fire (``Ticks.add``) and fires them
(``Ticks.flush``) before it stores how far it got, so that a failure leaves
its cursor behind the ticks that did not fire. Each tick is recorded with its
queued run in one transaction under a unique key: whichever daemon fires a key
first queues the run, and every other try is a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from conveyor.definitions.job import Job
from conveyor.definitions.triggers import CHAIN_TYPES, TIMED
from conveyor.storage.instance import Instance
from conveyor.storage.records import RunRecord
from conveyor.storage.ticks import TickSpec
from conveyor.storage.trigger_state import TriggerState
from conveyor.workspace import Workspace

log = logging.getLogger("conveyor.daemon")

# The most ticks fired in one transaction.
FIRE_BATCH = 500


def trigger_kind(trigger: str) -> str:
    """What a run fired by ``trigger`` records as its launcher: ``schedule`` (timed
    triggers and interval walks), ``chain``, ``sensor``, ``webhook``, ``retry``..."""
    kind = trigger.split(":", 1)[0]
    if kind in TIMED or kind == "interval":
        return "schedule"
    if kind in CHAIN_TYPES:
        return "chain"
    return kind


class Ticks:
    """Ticks collected by a step, fired by ``flush`` in batches of one transaction each."""

    def __init__(
        self,
        instance: Instance,
        origin: dict[str, Any],
        pins: Mapping[str, Any] | None = None,
    ) -> None:
        self.instance = instance
        self.origin = origin
        # The deployed code of each job of a daemon of environments (``environments.Pin``).
        self.pins: Mapping[str, Any] = pins if pins is not None else {}
        self.pending: list[TickSpec] = []

    def add(
        self,
        job: Job,
        key: str,
        trigger: str,
        at: float,
        *,
        tags: dict[str, str] | None = None,
        parent: RunRecord | None = None,
        interval: tuple[float, float] | None = None,
        run_config: dict[str, Any] | None = None,
        partition: str | None = None,
    ) -> None:
        """Collect tick ``key`` with its queued run; a partitioned job gets one run per key.

        The run takes ``partition`` when given (or its parent's), else one run
        is queued per key of the job's partitions (of time partitions, the most
        recent period complete at ``at``), each under its own tick key.
        The run records the kind of ``trigger`` as who launched it (``launched_by``).
        """
        pin = self.pins.get(job.name)
        run: dict[str, Any] = {
            "job_version": job.version,
            "tags": {**job.run_tags, **(tags or {})},
            "origin": {**(self.origin if pin is None else pin.origin), "job": job.name},
            "interval": interval,
            "run_config": run_config,
            "launched_by": trigger_kind(trigger),
        }
        if pin is not None:  # the run is pinned to the version active when it was queued
            run.update(deployed_version=pin.version, environment=pin.environment)
        if parent is not None:
            run.update(
                run_config=parent.run_config,
                selection=parent.selection,
                parent_run_id=parent.id,
                root_run_id=parent.root_run_id or parent.id,
            )
            partition = parent.partition_key
            if parent.deployed_version is not None and parent.origin:
                # A retry runs the code its failed run ran, whatever is active now.
                run.update(
                    origin={**parent.origin, "job": job.name},
                    deployed_version=parent.deployed_version,
                    environment=parent.environment,
                )
            if parent.interval_start and parent.interval_end:
                run["interval"] = (
                    parent.interval_start.timestamp(),
                    parent.interval_end.timestamp(),
                )
        keys: list[str | None] = [partition]
        if partition is None and job.partitions is not None:
            # Static keys all; time partitions the period just completed (per static key).
            keys = list(job.partitions.keys_for_tick(at))
        for part in keys:
            self.pending.append(
                TickSpec(
                    key if part is None else f"{key}#{part}",
                    job.name,
                    trigger,
                    at,
                    {**run, "partition": part},
                )
            )

    def flush(self) -> None:
        """Fire the collected ticks."""
        pending, self.pending = self.pending, []
        for i in range(0, len(pending), FIRE_BATCH):
            batch = pending[i : i + FIRE_BATCH]
            for tick, rid in zip(batch, self.instance.tick_store.fire_many(batch), strict=True):
                if rid is not None:
                    part = tick.run.get("partition")
                    where = tick.job_name if part is None else f"{tick.job_name}[{part}]"
                    log.info("%s fired %s: run %s queued", tick.trigger, where, rid[:8])

    def discard(self) -> None:
        """Drop the ticks of a step that failed (its cursor did not move past them)."""
        self.pending.clear()


@dataclass(slots=True)
class Scope:
    """What every step of a daemon works with."""

    workspace: Workspace
    instance: Instance
    clock: Callable[[], float]
    # When the daemon started (by its clock): timed triggers fire from here on, and the
    # first daemon of an instance reads webhook calls from here (chains start where a
    # daemon first saw them, ``storage.chains``).
    started: float
    # The code each job runs, in a daemon of environments (``environments.Pin``).
    pins: dict[str, Any] = field(default_factory=dict)
    ticks: Ticks = field(init=False)
    # The triggers switched off or back on, read once per pass (``trigger_states``).
    _in_pass: bool = field(default=False, init=False)
    _states: dict[tuple[str, str], TriggerState] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.ticks = Ticks(self.instance, self.workspace.origin, self.pins)

    def begin_pass(self) -> None:
        """The steps until ``end_pass`` are one pass: they share one read of the switches."""
        self._in_pass, self._states = True, None

    def end_pass(self) -> None:
        self._in_pass, self._states = False, None

    def trigger_states(self) -> dict[tuple[str, str], TriggerState]:
        """The timed triggers and sensors ever switched off or on (``storage.trigger_state``),
        by (job or sensor, trigger): read once per pass, a few rows."""
        if self._states is not None:
            return self._states
        states = self.instance.trigger_states.states()
        if self._in_pass:
            self._states = states
        return states

    @property
    def jobs(self) -> dict[str, Job]:
        return self.workspace.jobs


def same_partition(job: Job, upstream: RunRecord) -> str | None:
    """A chained run processes its upstream run's partition when the job has that key too."""
    key = upstream.partition_key
    return key if key is not None and job.partitions is not None and key in job.partitions else None
