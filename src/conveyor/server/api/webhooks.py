"""``POST /api/webhooks/{path}``: call the ``webhook:<path>`` triggers of the workspace's jobs.

The call is recorded (``Instance.webhook``) and its runs are queued at once, one
per hooked job (per partition key for a partitioned job), under the same tick
keys the daemon's webhook step uses, so the daemon, reading the call later,
queues nothing twice; the answer names the runs queued.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, Field

from conveyor.errors import NotFoundError
from conveyor.scheduler.firing import Ticks
from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow

router = APIRouter(tags=["webhooks"], dependencies=[Depends(allow(Action.WEBHOOK))])


class QueuedRun(BaseModel):
    run_id: str
    job_name: str
    partition: str | None


class WebhookCall(BaseModel):
    """What a webhook call did."""

    call_id: int
    path: str
    jobs: list[str] = Field(description="the jobs with the trigger webhook:<path>")
    queued: list[QueuedRun] = Field(description="the runs queued for the call")


@router.post("/webhooks/{path:path}", status_code=202)
def call_webhook(
    request: Request,
    path: str,
    payload: Annotated[dict[str, Any] | None, Body(description="any JSON object")] = None,
) -> WebhookCall:
    """Run every job with the trigger ``webhook:<path>`` once for this call; the payload
    goes with each run as its ``webhook_payload`` tag."""
    state = state_of(request)
    wanted = path.strip()
    jobs = state.workspace.jobs
    hooked = [
        job
        for name, job in sorted(jobs.items())
        if any(t.type == "webhook" and t.expr == wanted for t in job.triggers)
    ]
    if not hooked:
        known = sorted({t.expr for j in jobs.values() for t in j.triggers if t.type == "webhook"})
        listed = ", ".join(known) or "none (give a job trigger='webhook:<path>')"
        raise NotFoundError(
            f"no job has the trigger webhook:{wanted}; the webhook paths are: {listed}"
        )
    instance = state.instance
    call_id = instance.webhook(wanted, payload)
    [call] = instance.webhook_calls_among([call_id])
    ws = state.workspace.workspace
    ticks = Ticks(instance, dict(ws.origin) if ws is not None else {})
    text = json.dumps(payload) if payload is not None else ""
    for job in hooked:
        ticks.add(
            job,
            f"{job.name}/webhook:{wanted}@{call_id}",
            f"webhook:{wanted}",
            float(call["at"]),
            tags={
                "webhook_call": str(call_id),
                **({"webhook_payload": text[:2000]} if text else {}),
            },
        )
    pending, ticks.pending = ticks.pending, []
    fired = instance.tick_store.fire_many(pending)
    queued = [
        QueuedRun(run_id=rid, job_name=t.job_name, partition=t.run.get("partition"))
        for t, rid in zip(pending, fired, strict=True)
        if rid is not None
    ]
    return WebhookCall(call_id=call_id, path=wanted, jobs=[j.name for j in hooked], queued=queued)
