"""An MCP server for agents: what the examples' jobs did, as tools an agent can call.

`conveyor dev examples` serves it at /apps/agents/mcp. It is an interactive job:
nothing runs until an MCP client first connects, and it stops after 15 minutes
without a request. Point an MCP client at it, for example with the `mcp` package:

    async with streamable_http_client("http://127.0.0.1:3000/apps/agents/mcp") as (r, w):
        async with ClientSession(r, w) as session:
            await session.initialize()
            print(await session.call_tool("last_status", {"job": "fan_out"}))

It reads the run history of the instance it runs beside (CONVEYOR_HOME, which
`conveyor dev` passes on).
"""

from __future__ import annotations

from typing import Any

from conveyor import Instance, InteractiveContext, interactive


@interactive(interface="mcp", idle_timeout="15m")
def agents(context: InteractiveContext) -> Any:
    """Tools over the examples' run history, for agents."""
    # Imported here: loading the workspace stays cheap, and needs no mcp package.
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("conveyor-runs", instructions="Look up the runs of Conveyor's jobs.")
    instance = Instance.from_env()

    def row(run: Any) -> dict[str, Any]:
        seconds = None
        if run.started_at is not None and run.ended_at is not None:
            seconds = round((run.ended_at - run.started_at).total_seconds(), 2)
        return {
            "id": run.id,
            "job": run.job_name,
            "status": str(run.status),
            "started": run.started_at.isoformat() if run.started_at else None,
            "seconds": seconds,
            "error": run.error,
        }

    @server.tool()
    def recent_runs(job: str | None = None, limit: int = 10) -> list[dict[str, Any]]:
        """The newest runs, of one job or of all (newest first, at most 100)."""
        return [row(run) for run in instance.runs(job or None, limit=max(1, min(limit, 100)))]

    @server.tool()
    def last_status(job: str) -> dict[str, Any]:
        """How the last run of a job went: its status, when, how long, its error."""
        runs = instance.runs(job, limit=1)
        if not runs:
            return {"job": job, "status": None, "note": f"no run of {job!r} yet"}
        return row(runs[0])

    @server.tool()
    def served_from() -> dict[str, Any]:
        """Which start of this MCP server answers (its run) and where."""
        return {"run_id": context.run_id, "base_path": context.base_path}

    return server
