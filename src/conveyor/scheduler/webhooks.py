"""Webhook triggers: one run per webhook call for each job with the trigger
``webhook:<path>``, the calls read in the order of their ids (``cursor``)."""

from __future__ import annotations

import json
from typing import Any

from conveyor.definitions.job import Job
from conveyor.scheduler.cursor import OrderedCursor, StoredCursor
from conveyor.scheduler.firing import Scope

# Where the daemons keep how far they have read the webhook calls.
WEBHOOK_CURSOR = "conveyor/webhooks"


class Webhooks:
    """The daemon's step: fire a tick per new webhook call and hooked job, keyed by the call."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        instance = scope.instance
        self.cursor: StoredCursor[dict[str, Any]] = StoredCursor(
            WEBHOOK_CURSOR,
            instance.sensor_store,
            OrderedCursor(
                after=instance.webhook_calls_after,
                among=instance.webhook_calls_among,
                id_of=_call_id,
            ),
            # The first daemon of an instance fires the calls made since it started.
            first=lambda: instance.last_webhook_call_id(before=scope.started),
            before=instance.last_webhook_call_id,
        )

    def __call__(self, now: float) -> None:
        hooked: dict[str, list[Job]] = {}
        for job in self.scope.jobs.values():
            for trigger in job.triggers:
                if trigger.type == "webhook":
                    hooked.setdefault(trigger.expr, []).append(job)
        if not hooked:
            return
        batch = self.cursor.read()
        for call in batch.rows:
            for job in hooked.get(call["path"], []):
                payload = json.dumps(call["payload"]) if call["payload"] is not None else ""
                self.scope.ticks.add(
                    job,
                    f"{job.name}/webhook:{call['path']}@{call['id']}",
                    f"webhook:{call['path']}",
                    call["at"],
                    tags={
                        "webhook_call": str(call["id"]),
                        **({"webhook_payload": payload[:2000]} if payload else {}),
                    },
                )
        self.scope.ticks.flush()
        self.cursor.commit(batch, now)


def _call_id(call: dict[str, Any]) -> int:
    return int(call["id"])
