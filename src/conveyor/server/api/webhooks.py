"""``POST /api/webhooks/{path}``: call the ``webhook:<path>`` triggers of the workspace's jobs.

The call is recorded (``Instance.webhook``) and its runs are queued at once, one
per hooked job (per partition key for a partitioned job), under the same tick
keys the daemon's webhook step uses, so the daemon, reading the call later,
queues nothing twice; the answer names the runs queued.

A webhook is called by other systems, not by users, so it proves itself with
its own secret, ``webhook/<path>`` in the instance's secret store: the header
``X-Conveyor-Signature: sha256=<hex HMAC-SHA256 of the raw body under the
secret>`` (as GitHub signs its hooks) or ``Authorization: Bearer <secret>``,
compared in constant time. On a server that asks who is calling (login mode)
every call must carry one, and a webhook without a secret takes no calls; on
``conveyor dev`` (local mode) calls are open, but a signature sent is checked.
Each accepted call is in the audit log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from conveyor.definitions.secrets import check_secret_name
from conveyor.errors import ConfigError, NotFoundError
from conveyor.scheduler.firing import Ticks
from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow, audit_as, login_required, principal_of

SIGNATURE_HEADER = "X-Conveyor-Signature"


async def _raw_body(request: Request) -> bytes:
    """The body as sent: what a signature is computed over."""
    return await request.body()


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
    body: Annotated[bytes, Depends(_raw_body)],
    payload: Annotated[dict[str, Any] | None, Body(description="any JSON object")] = None,
) -> WebhookCall:
    """Run every job with the trigger ``webhook:<path>`` once for this call; the payload
    goes with each run as its ``webhook_payload`` tag.

    Authenticated by the webhook's secret ``webhook/<path>``: send the header
    ``X-Conveyor-Signature: sha256=<hex HMAC-SHA256 of the body>`` or
    ``Authorization: Bearer <secret>``. Required on a server with login; on
    ``conveyor dev`` only a signature sent is checked."""
    state = state_of(request)
    wanted = path.strip()
    actor = _authenticate(request, wanted, body)
    jobs = state.workspace.jobs
    hooked = [
        job
        for name, job in sorted(jobs.items())
        if any(t.type == "webhook" and t.expr == wanted for t in job.triggers)
    ]
    if not hooked:
        if login_required(request):
            # Whoever holds one webhook's secret learns nothing of the others.
            raise NotFoundError(f"no job has the trigger webhook:{wanted}")
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
    audit_as(request, actor, "webhook", wanted, call_id=call_id, queued=len(queued))
    return WebhookCall(call_id=call_id, path=wanted, jobs=[j.name for j in hooked], queued=queued)


def _authenticate(request: Request, path: str, body: bytes) -> str:
    """Check the call's proof of the webhook's secret; who the audit log names as caller.

    Raises:
        HTTPException: 401 for a missing or wrong signature or token; 403 on a server
            with login for a webhook that has no secret.
    """
    name = f"webhook/{path}"
    how = f"`conveyor secrets set {name}`"
    try:
        check_secret_name(name)
    except ConfigError:
        secret = None
        how = f"give the webhook a path of letters, digits and _ . - / (not {path!r})"
    else:
        secret = state_of(request).instance.secrets.find(name)
    login = login_required(request)
    signature = request.headers.get(SIGNATURE_HEADER)
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    bearer = bearer.strip() if scheme.lower() == "bearer" else ""
    if secret is None:
        if login:
            raise HTTPException(
                403,
                f"webhook {path!r} has no secret, and this server takes webhook calls only "
                f"with one: set it with {how}, then sign each call (header {SIGNATURE_HEADER}: "
                f"sha256=<hex HMAC-SHA256 of the body>) or send 'Authorization: Bearer <secret>'",
            )
        if signature is not None:
            raise HTTPException(
                401,
                f"the call is signed, but webhook {path!r} has no secret to check it against: "
                f"set it with {how}, or send the call unsigned",
            )
        return principal_of(request).label
    if signature is not None:
        algorithm, _, given = signature.strip().partition("=")
        expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
        if algorithm.strip().lower() != "sha256" or not hmac.compare_digest(
            given.strip().lower().encode(), expected.encode()
        ):
            raise HTTPException(
                401,
                f"the {SIGNATURE_HEADER} header does not match: it must read sha256=<hex "
                f"HMAC-SHA256 of the raw body under the secret {name}> (the secret is set "
                f"with {how})",
            )
        return f"secret {name}"
    if login:
        if bearer and hmac.compare_digest(bearer.encode("utf-8"), secret.encode("utf-8")):
            return f"secret {name}"
        said = "a wrong" if bearer else "no"
        raise HTTPException(
            401,
            f"webhook {path!r} needs its secret, and the call carries {said} one: sign the body "
            f"(header {SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of the body under the secret "
            f"{name}>) or send 'Authorization: Bearer <secret>'; the secret is set with {how}",
        )
    return principal_of(request).label
