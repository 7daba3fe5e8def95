"""Where state lives: SQL tables and migrations, run/task/event stores, log and result blobs."""

from __future__ import annotations

from conveyor.storage.instance import Instance
from conveyor.storage.records import EventRecord, RunDetails, RunRecord, TaskDetails, TaskRunRecord
from conveyor.storage.states import RunStatus, TaskStatus

__all__ = [
    "EventRecord",
    "Instance",
    "RunDetails",
    "RunRecord",
    "RunStatus",
    "TaskDetails",
    "TaskRunRecord",
    "TaskStatus",
]
