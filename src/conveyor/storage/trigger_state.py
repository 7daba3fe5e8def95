"""Timed triggers and sensors switched off and on by hand, shared by every daemon.

A trigger is named by its owner (the job, or the sensor) and the trigger as
the job's list spells it (``str(trigger)``: ``every:5m``,
``schedule:0 6 * * *``); a sensor's is ``sensor:<name>`` (``sensor_trigger``),
as its ticks are. Only the triggers ever switched have a row, so the daemon
reads the whole table, a few rows, once per pass. A trigger switched back on
fires from that moment: the ticks it missed while off are not fired.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select

from conveyor.errors import ConfigError
from conveyor.storage.db import Database
from conveyor.storage.schema import trigger_state
from conveyor.storage.upsert import insert_or_update


@dataclass(frozen=True, slots=True)
class TriggerState:
    """Whether a trigger is on, and since when (UTC epoch seconds)."""

    enabled: bool
    changed_at: float


def sensor_trigger(sensor_name: str) -> str:
    """The trigger of sensor ``sensor_name``, as ``set_enabled`` takes it with the sensor's
    name as owner."""
    return f"sensor:{sensor_name}"


class TriggerStateStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def set_enabled(
        self, owner: str, trigger: str, enabled: bool, *, at: float | None = None
    ) -> None:
        """Switch ``owner``'s ``trigger`` on or off, as of ``at`` (default now).

        Raises:
            ConfigError: ``owner`` or ``trigger`` is empty, or ``enabled`` is not a bool.
        """
        for name, value in (("owner", owner), ("trigger", trigger)):
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{name} {value!r}: give the job (or sensor) and its trigger")
        if not isinstance(enabled, bool):
            raise ConfigError(f"enabled={enabled!r}: give True or False")
        row = {
            "owner": owner,
            "trigger": trigger,
            "enabled": enabled,
            "changed_at": time.time() if at is None else float(at),
        }
        with self.db.write() as conn:
            conn.execute(
                insert_or_update(
                    conn, trigger_state, ["owner", "trigger"], ["enabled", "changed_at"]
                ),
                row,
            )

    def states(self) -> dict[tuple[str, str], TriggerState]:
        """Every trigger ever switched, by (owner, trigger): one query."""
        with self.db.read() as conn:
            rows = conn.execute(select(trigger_state)).all()
        return {
            (r.owner, r.trigger): TriggerState(bool(r.enabled), float(r.changed_at)) for r in rows
        }

    def disabled(self) -> set[tuple[str, str]]:
        """The (owner, trigger) of every trigger switched off."""
        q = select(trigger_state.c.owner, trigger_state.c.trigger).where(
            trigger_state.c.enabled.is_(False)
        )
        with self.db.read() as conn:
            return {(r.owner, r.trigger) for r in conn.execute(q)}

    def is_enabled(self, owner: str, trigger: str) -> bool:
        """Whether ``owner``'s ``trigger`` is on (every trigger is until switched off)."""
        q = select(trigger_state.c.enabled).where(
            trigger_state.c.owner == owner, trigger_state.c.trigger == trigger
        )
        with self.db.read() as conn:
            value = conn.execute(q).scalar()
        return value is None or bool(value)
