"""``conveyor pools``: concurrency limits shared by the jobs and tasks that name a pool."""

from __future__ import annotations

from typing import Any

import click

from conveyor.cli.main import echo_json


@click.group("pools")
def pools_group() -> None:
    """Concurrency pools: at most N holders at once across the jobs and tasks with pool=NAME."""


def _check_limit(ctx: click.Context, _param: click.Parameter, limit: int) -> int:
    if limit < 1:
        name = ctx.params.get("name", "NAME")
        raise click.BadParameter(
            f"{limit}: a pool's limit is a whole number >= 1 (how many runs and tasks may "
            f"hold it at once); `conveyor pools delete {name}` removes the limit instead"
        )
    return limit


# ignore_unknown_options: "-1" reaches LIMIT, to be refused for what it is, rather than
# being taken for an unknown option.
@pools_group.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("limit", type=int, callback=_check_limit)
def set_pool(name: str, limit: int) -> None:
    """Allow at most LIMIT runs and tasks of pool NAME at once."""
    from conveyor.storage.instance import Instance

    Instance.from_env().pool_store.set(name, limit)
    click.echo(f"pool {name}: at most {limit} at once")


@pools_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_pools(as_json: bool) -> None:
    """List the pools, their limits and who holds their slots (RUN or RUN/TASK)."""
    from conveyor.storage.instance import Instance

    instance = Instance.from_env()
    rows: list[dict[str, Any]] = [
        {"name": name, "limit": limit, "held_by": instance.lease_store.held(f"pool:{name}")}
        for name, limit in instance.pool_store.all().items()
    ]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no pools; make one with `conveyor pools set NAME LIMIT`")
    for r in rows:
        held = ", ".join(h[:8] + h[32:] for h in r["held_by"])
        click.echo(
            f"{r['name']}: {len(r['held_by'])}/{r['limit']} in use" + (f" ({held})" if held else "")
        )


@pools_group.command("delete")
@click.argument("name")
def delete_pool(name: str) -> None:
    """Remove pool NAME's limit (its jobs and tasks then run without one)."""
    from conveyor.storage.instance import Instance

    Instance.from_env().pool_store.delete(name)
    click.echo(f"pool {name} deleted")
