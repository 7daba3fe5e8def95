"""Sensor state: each sensor's cursor and last evaluation, shared by every daemon."""

from __future__ import annotations

from sqlalchemy import select

from conveyor.storage.db import Database
from conveyor.storage.schema import sensor_state
from conveyor.storage.upsert import insert_or_update


class SensorStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, name: str) -> tuple[str | None, float | None]:
        """The sensor's cursor and when it was last evaluated (``None`` if never)."""
        with self.db.read() as conn:
            row = conn.execute(select(sensor_state).where(sensor_state.c.name == name)).first()
        return (None, None) if row is None else (row.cursor, float(row.evaluated_at))

    def save(self, name: str, cursor: str | None, evaluated_at: float) -> None:
        """Keep ``cursor`` and ``evaluated_at`` as the sensor's, in place of what was there."""
        with self.db.write() as conn:
            conn.execute(
                insert_or_update(conn, sensor_state, ["name"], ["cursor", "evaluated_at"]),
                {"name": name, "cursor": cursor, "evaluated_at": evaluated_at},
            )
