"""Reading a posted HTML form (``application/x-www-form-urlencoded``, what browsers and htmx
send) without python-multipart, which Conveyor does not depend on."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import HTTPException, Request

# A form bigger than this is refused (a run config is a few kilobytes).
MAX_FORM = 1024 * 1024


async def form_pairs(request: Request) -> list[tuple[str, str]]:
    """Every (name, value) of the posted form, in order; empty for another body.
    A form over ``MAX_FORM`` bytes is refused (413)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return []
    body = await request.body()
    if len(body) > MAX_FORM:
        raise HTTPException(
            413,
            f"the form is {len(body):,} bytes, more than the {MAX_FORM:,} a form may be; "
            f"send a config this large to POST /api/runs as JSON",
        )
    return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)


async def form_data(request: Request) -> dict[str, str]:
    """The fields of the posted form, the last value of each."""
    return dict(await form_pairs(request))
