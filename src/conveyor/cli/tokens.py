"""``conveyor tokens``: API tokens, with which programs and the remote CLI call the server
as a user (``Authorization: Bearer cvt_...``).

A token's secret is shown once, when it is made; the instance keeps only its
SHA-256. Like ``conveyor users``, these commands act on the instance itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from conveyor.cli.main import echo_json
from conveyor.cli.users import audit, instance

if TYPE_CHECKING:
    from conveyor.storage.identity import Token

DAY = 86400.0


def _moment(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def token_row(t: Token) -> dict[str, Any]:
    return {
        "id": t.id,
        "user": t.user_name,
        "name": t.name,
        "state": t.state(),
        "created_at": _moment(t.created_at),
        "expires_at": _moment(t.expires_at),
        "last_used_at": _moment(t.last_used_at),
        "revoked_at": _moment(t.revoked_at),
    }


@click.group("tokens")
def tokens_group() -> None:
    """API tokens: create (the secret is shown once), list and revoke."""


@tokens_group.command("create")
@click.option("-u", "--user", "user", required=True, metavar="NAME", help="Whose token.")
@click.option(
    "-n", "--name", "label", required=True, metavar="LABEL", help="What uses it (ci, laptop...)."
)
@click.option(
    "--expires-in-days",
    type=click.IntRange(min=1, max=3650),
    metavar="N",
    help="Stop working after N days (default: never; revoke it when done).",
)
def create_token(user: str, label: str, expires_in_days: int | None) -> None:
    """Make an API token of user NAME and print its secret, once."""
    inst = instance()
    token, secret = inst.identity.create_token(
        user, label, expires_in=expires_in_days * DAY if expires_in_days is not None else None
    )
    audit(inst, "token create", token.id, user=user, name=label, expires_in_days=expires_in_days)
    click.echo(secret)
    until = f"until {_short(_moment(token.expires_at))}" if token.expires_at else "no expiry"
    click.echo(
        f"token {token.id} of {user} ({label}, {until}): the secret above is not shown again; "
        f"use it as 'Authorization: Bearer <secret>', or `conveyor login URL`",
        err=True,
    )


@tokens_group.command("list")
@click.option("-u", "--user", "user", metavar="NAME", help="Only this user's tokens.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_tokens(user: str | None, as_json: bool) -> None:
    """List API tokens (never their secrets): owner, state, expiry and last use."""
    inst = instance()
    if user is not None:
        inst.identity.require_user(user)
    rows = [token_row(t) for t in inst.identity.tokens(user)]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        whose = f" of {user}" if user else ""
        click.echo(
            f"no tokens{whose}; make one with `conveyor tokens create --user NAME --name LABEL`"
        )
        return
    from rich.table import Table

    from conveyor.cli.output import console

    table = Table(box=None, header_style="bold")
    for col in ("ID", "USER", "NAME", "STATE", "CREATED", "EXPIRES", "LAST USED"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["id"],
            r["user"],
            r["name"],
            {"active": "active", "expired": "[yellow]expired[/]", "revoked": "[red]revoked[/]"}[
                r["state"]
            ],
            _short(r["created_at"]),
            _short(r["expires_at"]) if r["expires_at"] else "never",
            _short(r["last_used_at"]) if r["last_used_at"] else "never",
        )
    console().print(table)


def _short(iso: str | None) -> str:
    return "-" if iso is None else iso[:16].replace("T", " ") + " UTC"


@tokens_group.command("revoke")
@click.argument("token_id", metavar="ID")
def revoke_token(token_id: str) -> None:
    """Revoke token ID (as `tokens list` shows it): it stops working at once."""
    inst = instance()
    token = inst.identity.revoke_token(_bare_id(token_id))
    audit(inst, "token revoke", token.id, user=token.user_name, name=token.name)
    click.echo(f"token {token.id} of {token.user_name} ({token.name}) revoked")


def _bare_id(value: str) -> str:
    """A token's id, also from its whole secret (``cvt_<id>_...``) pasted by mistake."""
    from conveyor.storage.identity import TOKEN_PREFIX

    if value.startswith(TOKEN_PREFIX):
        return value[len(TOKEN_PREFIX) :].split("_", 1)[0]
    return value.strip()
