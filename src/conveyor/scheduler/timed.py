"""The timed triggers (``schedule:``, ``every:``, ``once:``): each due tick fires once.

Each due tick is recorded with its queued run in one transaction under a
unique key (``firing``). A job with ``incremental_mode="interval"`` is left to
its walk (``incremental``). A trigger switched off (``storage.trigger_state``)
does not fire; switched back on, it fires the ticks due from that moment, not
the ones it missed while off.
"""

from __future__ import annotations

from conveyor.scheduler.firing import Scope
from conveyor.scheduler.intervals import IntervalEnds
from conveyor.scheduler.timing import due, next_after
from conveyor.storage.trigger_state import TriggerState


class TimedTriggers:
    """Fires the due ticks of timed triggers.

    Each trigger's newest tick is read from storage once, then kept here
    with the instant of its next tick, so a pass between ticks costs a
    comparison per trigger. Another daemon firing a tick first is seen
    when this one tries the same tick key.
    """

    def __init__(self, scope: Scope, intervals: IntervalEnds) -> None:
        self.scope = scope
        self.intervals = intervals
        # Per timed trigger (job, trigger): its newest fired tick and when the next is due.
        self.last_tick: dict[tuple[str, str], float | None] = {}
        self.next_tick: dict[tuple[str, str], float] = {}
        # The soonest of next_tick once every timed trigger has its instant there (a pass
        # before it has nothing to fire); -inf until then.
        self.earliest = float("-inf")
        # The switched triggers when last looked at: a switch makes every trigger's next
        # tick be worked out again.
        self.switched: dict[tuple[str, str], TriggerState] = {}

    def __call__(self, now: float) -> None:
        self.intervals.stale()
        try:
            self._fire(now)
            self.scope.ticks.flush()
        except Exception:
            self.forget()  # the ticks did not fire: read the newest from storage again
            raise

    def _fire(self, now: float) -> None:
        scope = self.scope
        switched = scope.trigger_states()
        if switched != self.switched:
            self.forget()
            self.switched = switched
        if now < self.earliest:
            return  # no trigger is due: a quiet pass costs a comparison (and the switches)
        for job in scope.jobs.values():
            if job.incremental_mode == "interval":
                continue  # its periods are queued by its walk
            # A job's interval= bounds its ticks: none before its start or after its end.
            floor = job.interval.start.timestamp() if job.interval else float("-inf")
            until = now
            if job.interval is not None and job.interval.end is not None:
                until = min(now, job.interval.end.timestamp())
            for trigger in job.triggers:
                if not trigger.is_timed:
                    continue
                name = (job.name, str(trigger))
                if now < self.next_tick.get(name, now):
                    continue
                state = switched.get(name)
                if state is not None and not state.enabled:
                    continue  # off: it has no next tick until it is switched on
                if name in self.last_tick:
                    last = self.last_tick[name]
                else:
                    last = scope.instance.tick_store.last(job.name, str(trigger))
                # Switched back on: no tick from before that moment fires.
                start = floor if state is None else max(floor, state.changed_at)
                if last is not None and last < start:
                    last = start
                since = max(scope.started, start)
                ticks = due(trigger, last, since, until, job.catchup)  # type: ignore[arg-type]
                for tick in ticks:
                    scope.ticks.add(
                        job,
                        f"{job.name}/{tick.key}",
                        tick.trigger,
                        tick.at,
                        interval=self.intervals.interval(job, tick.at),
                    )
                    last = tick.at if last is None else max(last, tick.at)
                self.last_tick[name] = last
                if ticks:  # look again next pass: a long catch-up goes on in batches
                    self.next_tick[name] = now
                    continue
                upcoming = next_after(trigger, now)
                if upcoming is None or (until < now and upcoming > until):
                    upcoming = float("inf")  # the trigger, or the job's interval=, is over
                self.next_tick[name] = upcoming
        self.earliest = min(self.next_tick.values(), default=float("inf"))

    def next_due(self) -> float:
        """The instant the next known tick is due (inf if none is known)."""
        if self.earliest > float("-inf"):
            return self.earliest
        return min(self.next_tick.values(), default=float("inf"))

    def forget(self) -> None:
        self.last_tick.clear()
        self.next_tick.clear()
        self.earliest = float("-inf")
