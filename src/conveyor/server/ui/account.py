"""``/account/tokens``: the signed-in user's API tokens. Making one shows its secret on the
page that answers, once (never in a URL or a later page); revoking one stops it at once.

On a server without logins (``conveyor dev``) the caller is the local admin, who is no
user: the page lists every user's tokens and makes them for a user chosen in the form.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from conveyor.errors import ConveyorError
from conveyor.server.api.tokens import (
    DAY,
    MAX_DAYS,
    signed_in_changing,
    signed_in_reading,
    token_out,
)
from conveyor.server.app import state_of
from conveyor.server.auth import Action, Principal, allow, audit, principal_of
from conveyor.server.ui.formdata import form_data
from conveyor.server.ui.templating import render

router = APIRouter(dependencies=[Depends(allow(Action.READ))])
PAGE = "/account/tokens"


def _whose(me: Principal) -> str | None:
    """Whose tokens the page shows: the caller's; every user's for the local admin."""
    return None if me.kind == "local" else me.name


def _page(request: Request, **more: Any) -> Response:
    me = principal_of(request)
    identity = state_of(request).instance.identity
    response = render(
        request,
        "account_tokens.html",
        {
            "tokens": [token_out(t) for t in identity.tokens(_whose(me))][::-1],
            "local": me.kind == "local",
            "users": [u.name for u in identity.users()] if me.kind == "local" else [],
            "max_days": MAX_DAYS,
            "done": request.query_params.get("done"),
            "problem": request.query_params.get("problem"),
            **more,
        },
        status_code=201 if more.get("secret") else 200,
    )
    # A page with a secret on it is kept by no cache, nor the browser's history.
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get(PAGE, dependencies=[Depends(signed_in_reading)])
def tokens_page(request: Request) -> Response:
    """The caller's tokens, newest first, and a form to make one."""
    return _page(request)


@router.post(PAGE, dependencies=[Depends(signed_in_changing)])
async def create_token(request: Request) -> Response:
    """Make a token and show its secret, this once."""
    form = await form_data(request)
    me = principal_of(request)
    owner = form.get("user", "") if me.kind == "local" else me.name
    name = form.get("name", "").strip()
    days_text = form.get("expires_in_days", "").strip()
    try:
        days = int(days_text) if days_text else None
    except ValueError:
        days = -1
    if days is not None and not 1 <= days <= MAX_DAYS:
        return _page(
            request,
            problem=f"expires in {days_text!r} days: give a whole number from 1 to {MAX_DAYS}, "
            f"or leave it empty for a token that does not expire",
        )
    try:
        token, secret = state_of(request).instance.identity.create_token(
            owner, name, expires_in=days * DAY if days is not None else None
        )
    except ConveyorError as e:
        return _page(request, problem=str(e))
    audit(request, "token create", token.id, user=owner, name=name, expires_in_days=days)
    return _page(request, secret=secret, made=token_out(token))


@router.post(PAGE + "/{token_id}/revoke", dependencies=[Depends(signed_in_changing)])
def revoke_token(request: Request, token_id: str) -> Response:
    """Revoke one of the caller's tokens."""
    me = principal_of(request)
    identity = state_of(request).instance.identity
    token = identity.token(token_id)
    if token is None or (me.kind != "local" and token.user_name != me.name):
        return RedirectResponse(f"{PAGE}?problem=no+token+{token_id}+of+yours", status_code=303)
    try:
        identity.revoke_token(token.id)
    except ConveyorError as e:
        return _page(request, problem=str(e))
    audit(request, "token revoke", token.id, user=token.user_name, name=token.name)
    return RedirectResponse(f"{PAGE}?done=token+{token.id}+revoked", status_code=303)
