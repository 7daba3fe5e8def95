"""Who may see, operate and reach a workload (a service, app, interactive job or add-in).

A workload's permissions are worked out as a job's: its access list from the code
(``Service(access=...)``; for a workload the loaded workspace no longer holds, the list
its record kept), with an admin's changes (``instance.access``, keyed by the workload's
name) applied; without a list, the instance role. READ sees it, OPERATE starts, stops
and restarts it, ACCESS reaches it through the proxy at ``/apps/<name>/``.
"""

from __future__ import annotations

from typing import Any, cast

from fastapi import HTTPException, Request
from starlette.requests import HTTPConnection

from conveyor.definitions.access import AccessList, Permission, parse_access
from conveyor.server.auth import (
    Principal,
    access_changes,
    granted,
    principal_of,
    require_signed_in,
)


def workload_access_list(conn: HTTPConnection, name: str) -> AccessList | None:
    """Workload ``name``'s access list as it holds now; ``None``: the instance roles hold."""
    state = _conveyor(conn)
    workspace = state.workspace.workspace
    declared: AccessList | None = None
    defined = workspace.workloads.get(name) if workspace is not None else None
    if defined is not None:
        declared = defined.access_list
    else:
        record = state.instance.workloads.get(name)
        kept = record.spec.get("access") if record is not None else None
        if kept:
            declared = parse_access(kept, f"workload {name!r}")
    changes = access_changes(conn).get(name)
    if changes:
        return (declared or AccessList({})).with_changes(changes)
    return declared


def workload_permissions(conn: HTTPConnection, name: str) -> frozenset[Permission]:
    """What the caller may do on workload ``name``."""
    # principal_of reads only what an HTTP request and a WebSocket both have.
    principal = principal_of(cast(Request, conn))
    return granted(principal, lambda: workload_access_list(conn, name))


def readable_workloads(conn: HTTPConnection) -> list[str]:
    """The recorded workloads the caller may read, by name."""
    names = [r.name for r in _conveyor(conn).instance.workloads.all()]
    return [n for n in names if Permission.READ in workload_permissions(conn, n)]


def workload_not_found(conn: HTTPConnection, name: str) -> str:
    """The 404 for a workload the caller may not see, or that does not exist: the same,
    naming only the workloads the caller may read."""
    names = ", ".join(readable_workloads(conn)) or "none"
    return f"no workload {name!r}; the workloads you may read: {names}"


def authorize_workload(conn: HTTPConnection, needed: Permission, name: str) -> Principal:
    """The caller, if it has ``needed`` on workload ``name``.

    ``ACCESS`` alone lets a caller through the proxy (a list may give a group the app
    without showing it in the UI); for anything else READ is needed too.

    Raises:
        HTTPException: 401 when nobody is signed in; 404 when the caller may not read
            it (nor, through the proxy, reach it), as if it did not exist; 403 when it
            may see it but not do this.
    """
    principal = require_signed_in(cast(Request, conn))
    perms = workload_permissions(conn, name)
    seen = Permission.READ in perms or (needed == Permission.ACCESS and needed in perms)
    if not seen:
        raise HTTPException(404, workload_not_found(conn, name))
    if needed in perms:
        return principal
    what = "reach" if needed == Permission.ACCESS else f"{needed} (see, start or stop)"
    raise HTTPException(
        403,
        f"{principal.label} may not {what} workload {name!r}: it needs the {needed} "
        f"permission on it; ask an admin",
    )


def _conveyor(conn: HTTPConnection) -> Any:
    """The server's state (``ServerState``), from an HTTP request or a WebSocket."""
    return conn.app.state.conveyor
