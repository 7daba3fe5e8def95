"""A task's logs on the run page: read a page at a time by byte offset, followed live.

Each attempt's stream is its own sequence of bytes (a live file while the attempt
runs, a stored blob once it ended). The page shows the last ``PAGE`` bytes, cut
at a line boundary; "earlier lines" fetches the page before a byte offset, so a
100,000-line log stays readable without sending it whole. While the attempt runs,
``/runs/{id}/logs/stream`` sends its new whole lines as server-sent events and an
``end`` event once the attempt's output is stored (or the run ended without it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlencode

from anyio import to_thread
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from markupsafe import escape
from starlette.responses import Response

from conveyor.errors import NotFoundError
from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow, run_for
from conveyor.server.ui.templating import not_found, render
from conveyor.storage.instance import Instance

router = APIRouter(dependencies=[Depends(allow(Action.READ))])

# Bytes of log per page: about a thousand lines of typical output.
PAGE = 64 * 1024
# How often a followed log is read again (seconds).
FOLLOW_EVERY = 0.4


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes ``start``..``end`` of an attempt's stream, as text."""

    text: str
    start: int
    end: int
    total: int
    final: bool


def attempt_bytes(
    instance: Instance, run_id: str, key: str, attempt: int, stream: str
) -> tuple[bytes, bool]:
    """What attempt ``attempt`` of task ``key`` wrote to ``stream`` so far, and whether
    that is all (stored). A live file is read first: it is removed only once stored."""
    live = instance.log_store.read_live(run_id, key, attempt, stream)
    if live is not None:
        return live, False
    found = instance.log_store.attempts(run_id, key, stream).get(attempt)
    if found is None:
        return b"", False
    return found


def page_before(data: bytes, before: int, final: bool) -> Chunk:
    """The page of ``data`` that ends at byte ``before``, starting on a line; a live
    stream's page stops at its last whole line."""
    end = min(before, len(data))
    if not final:
        end = data.rfind(b"\n", 0, end) + 1
    start = max(0, end - PAGE)
    if start > 0:
        start = data.find(b"\n", start, end) + 1 or start
    text = data[start:end].decode("utf-8", "replace")
    return Chunk(text, start, end, len(data), final)


def attempts_of(instance: Instance, run_id: str, key: str) -> list[tuple[int, str]]:
    """The attempts of task ``key`` in run ``run_id``: (number, status)."""
    return [(a.attempt, str(a.status)) for a in instance.task_run_store.for_task(run_id, key)]


def is_done(instance: Instance, run_id: str, key: str, attempt: int) -> bool:
    """Whether attempt ``attempt`` ended (or never will: its run ended)."""
    if instance.run(run_id).status.is_terminal:
        return True
    for a in instance.task_run_store.for_task(run_id, key):
        if a.attempt == attempt:
            return a.status.is_terminal
    return False


def _unreadable(request: Request, run_id: str) -> Response | None:
    """The not-found page if there is no run ``run_id`` the caller may read, else None."""
    try:
        run_for(request, run_id)
    except NotFoundError as e:
        return not_found(request, str(e))
    except HTTPException as e:
        if e.status_code != 404:
            raise
        return not_found(request, str(e.detail))
    return None


def _stream(value: str) -> str:
    return "stderr" if value == "stderr" else "stdout"


@router.get("/runs/{run_id}/logs", include_in_schema=False)
def earlier(
    request: Request,
    run_id: str,
    task: str,
    attempt: int = Query(1, ge=1),
    stream: str = "stdout",
    before: int = Query(0, ge=0),
) -> Response:
    """The page of a task's log before byte ``before`` (the "earlier lines" button)."""
    instance = state_of(request).instance
    missing = _unreadable(request, run_id)
    if missing is not None:
        return missing
    data, _ = attempt_bytes(instance, run_id, task, attempt, _stream(stream))
    chunk = page_before(data, before, True)
    return render(
        request,
        "log_page.html",
        {
            "run_id": run_id,
            "task": task,
            "attempt": attempt,
            "stream": _stream(stream),
            "chunk": chunk,
        },
    )


def _ended(run_id: str, task: str, attempt: int, stream: str, statuses: dict[int, str]) -> str:
    """The line that closes a followed attempt: how it ended, and where its retry is."""
    status = statuses.get(attempt, "ended")
    text = f"attempt {attempt} ended: {status.replace('_', ' ')}"
    if status == "up_for_retry":
        query = urlencode({"task": task, "attempt": attempt + 1, "stream": stream})
        text += f' \u2014 <a href="/runs/{run_id}?{escape(query)}#logs">attempt {attempt + 1}</a>'
        return f'<span class="end">{text}</span>'
    return f'<span class="end">{escape(text)}</span>'


def _event(name: str, text: str) -> str:
    lines = text.split("\n")
    return f"event: {name}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


@router.get("/runs/{run_id}/logs/stream", include_in_schema=False)
async def follow(
    request: Request,
    run_id: str,
    task: str,
    attempt: int = Query(1, ge=1),
    stream: str = "stdout",
    offset: int = Query(0, ge=0),
) -> Response:
    """Server-sent events: ``lines`` (HTML of new whole lines) while the attempt runs,
    then ``end`` (what became of it)."""
    instance = state_of(request).instance
    which = _stream(stream)
    missing = await to_thread.run_sync(_unreadable, request, run_id)
    if missing is not None:
        return missing

    async def events() -> AsyncIterator[str]:
        shown = offset
        yield ": following\n\n"
        while True:
            if await request.is_disconnected():
                return
            data, final = await to_thread.run_sync(
                attempt_bytes, instance, run_id, task, attempt, which
            )
            end = len(data) if final else data.rfind(b"\n") + 1
            if end > shown:
                text = data[shown:end].decode("utf-8", "replace")
                shown = end
                yield _event("lines", f'<span class="chunk">{escape(text)}</span>')
            done = final or await to_thread.run_sync(is_done, instance, run_id, task, attempt)
            if done:
                if not final:
                    # Ended without storing its output: what its live file kept is all.
                    data, _ = await to_thread.run_sync(
                        attempt_bytes, instance, run_id, task, attempt, which
                    )
                    if len(data) > shown:
                        rest = data[shown:].decode("utf-8", "replace")
                        yield _event("lines", f'<span class="chunk">{escape(rest)}</span>')
                statuses = dict(await to_thread.run_sync(attempts_of, instance, run_id, task))
                yield _event("end", _ended(run_id, task, attempt, which, statuses))
                # The browser closes the stream on ``end``; wait for it rather than close
                # first, which the browser would take for a broken connection.
                for _ in range(50):
                    if await request.is_disconnected():
                        return
                    await asyncio.sleep(0.1)
                return
            await asyncio.sleep(FOLLOW_EVERY)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
