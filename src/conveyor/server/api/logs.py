"""``/api/runs/{run_id}/tasks/{task_key}/logs``: a task's stdout and stderr, read by byte
offsets or followed live over server-sent events.

A task's log is its attempts' output one after another, each attempt after the
first introduced by a ``--- attempt N ---`` line (as ``conveyor logs`` shows it).
While an attempt runs, only its whole lines count, so the text only grows at its
end and an offset read once stays valid.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from conveyor.errors import ConfigError, NotFoundError
from conveyor.server import run_views
from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow, run_for
from conveyor.storage.instance import Instance
from conveyor.storage.logs import LogTail
from conveyor.storage.states import TaskStatus

router = APIRouter(
    prefix="/runs/{run_id}/tasks/{task_key}/logs",
    tags=["logs"],
    dependencies=[Depends(allow(Action.READ))],
)

Stream = Literal["stdout", "stderr"]
# How often a live stream looks for new lines (as `conveyor logs --follow` does).
POLL = 0.25
# The most bytes one read returns.
MAX_READ = 1 << 20


class LogChunk(BaseModel):
    """Bytes ``[offset, next_offset)`` of a task's log, as text."""

    run_id: str
    task_key: str
    stream: Stream
    offset: int
    next_offset: int = Field(description="pass as offset to read on")
    size: int = Field(description="bytes of the log so far")
    text: str
    complete: bool = Field(description="the task will write no more: this is the whole log")


def log_bytes(instance: Instance, run_id: str, task_key: str, stream: str) -> bytes:
    """The task's log so far: its attempts in order, running ones up to their last whole line."""
    parts: list[bytes] = []
    for attempt, (data, final) in instance.log_store.attempts(run_id, task_key, stream).items():
        if not final:
            data = data[: data.rfind(b"\n") + 1]
            if not data:
                continue
        elif data and not data.endswith(b"\n"):
            data += b"\n"
        if attempt > 1:
            parts.append(f"--- attempt {attempt} ---\n".encode())
        parts.append(data)
    return b"".join(parts)


def task_ended(instance: Instance, run_id: str, task_key: str) -> tuple[bool, bool]:
    """Whether the task will write no more (it ended with no retry to follow, or its run
    ended), and whether the run has the task at all."""
    run_ended = instance.run(run_id).status.is_terminal
    attempts = instance.task_run_store.for_task(run_id, task_key)
    if run_ended or not attempts:
        return run_ended, bool(attempts)
    last = attempts[-1].status
    return last.is_terminal and last is not TaskStatus.UP_FOR_RETRY, True


def check_task(instance: Instance, run_id: str, task_key: str) -> str:
    """The full id of run ``run_id``, if it has task ``task_key``; ``NotFoundError``
    naming its tasks otherwise."""
    rid = run_views.resolve_run(instance, run_id)
    if not instance.task_run_store.for_task(rid, task_key):
        keys = [t.key for t in instance.run_details(rid).tasks]
        raise NotFoundError(
            f"run {rid} has no task {task_key!r} (tasks: {', '.join(keys) or 'none yet'})"
        )
    return rid


def _cut(data: bytes, offset: int, limit: int) -> bytes:
    """``data[offset:offset + limit]``, shortened so as not to split a UTF-8 character."""
    chunk = data[offset : offset + limit]
    if offset + limit < len(data):
        end = len(chunk)
        while end > 0 and (chunk[end - 1] & 0xC0) == 0x80:
            end -= 1
        if end > 0 and chunk[end - 1] >= 0xC0:
            end -= 1  # the lead byte of the character cut short
        chunk = chunk[:end] if end > 0 else chunk
    return chunk


@router.get("")
def read_log(
    request: Request,
    run_id: str,
    task_key: str,
    stream: Stream = "stdout",
    offset: Annotated[int, Query(ge=0, description="the first byte to read")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_READ, description="the most bytes to read")] = 65536,
) -> LogChunk:
    """Bytes of the task's stdout or stderr from ``offset`` on, including what a running
    task has written so far."""
    instance = state_of(request).instance
    rid = check_task(instance, run_for(request, run_id).id, task_key)
    ended, _ = task_ended(instance, rid, task_key)
    data = log_bytes(instance, rid, task_key, stream)
    if offset > len(data):
        raise ConfigError(
            f"offset {offset} is past the end of the {stream} of task {task_key!r} "
            f"({len(data)} bytes so far); read from an offset up to {len(data)}"
        )
    chunk = _cut(data, offset, limit)
    end = offset + len(chunk)
    return LogChunk(
        run_id=rid,
        task_key=task_key,
        stream=stream,
        offset=offset,
        next_offset=end,
        size=len(data),
        text=chunk.decode("utf-8", "replace"),
        complete=ended and end == len(data),
    )


def _event(kind: str, payload: object) -> str:
    return f"event: {kind}\ndata: {json.dumps(payload)}\n\n"


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_log(
    request: Request, run_id: str, task_key: str, stream: Stream = "stdout"
) -> StreamingResponse:
    """Follow the task's output live, over server-sent events, from its first line.

    Each ``log`` event's data is ``{"text": ...}`` (whole lines); one ``end`` event
    (``{"status": ...}`` of the task) closes the stream once the task has ended, or
    its run has. It starts while the task is still running.
    """
    instance = state_of(request).instance
    run = await run_in_threadpool(run_for, request, run_id)
    rid = await run_in_threadpool(check_task, instance, run.id, task_key)

    async def events() -> AsyncIterator[str]:
        tail = LogTail(instance.log_store, rid, task_key, stream)
        yield ": following the log\n\n"
        while True:
            # Seen before the lines are read: an attempt's end is written with its output.
            ended, _ = await run_in_threadpool(task_ended, instance, rid, task_key)
            text = await run_in_threadpool(tail.poll)
            if text:
                yield _event("log", {"text": text})
            if ended:
                attempts = await run_in_threadpool(instance.task_run_store.for_task, rid, task_key)
                status = str(attempts[-1].status) if attempts else None
                yield _event("end", {"status": status})
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(POLL)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
