"""Finding a running service or app by name, from a job, a task or another service.

``url("pricer")`` reads where the supervisor last saw the workload serve (the
instance's workload records), so code needs no port of its own configuration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conveyor.errors import NotFoundError

if TYPE_CHECKING:
    from conveyor.storage.instance import Instance

# The states in which a workload's port is worth trying.
SERVING = ("running", "unhealthy")


def url(name: str, *, instance: Instance | None = None) -> str:
    """``http://127.0.0.1:<port>`` of running workload ``name`` (without its base path).

    Args:
        name: the ``Service`` or ``App`` name.
        instance: where workloads are recorded; default ``Instance.default()``
            (``CONVEYOR_HOME``).

    Raises:
        NotFoundError: there is no such workload, or it is not running now (the
            message says its state and last error).
    """
    if instance is None:
        from conveyor.storage.instance import Instance

        instance = Instance.default()
    record = instance.workloads.require(name)
    if record.state not in SERVING or record.port is None or record.host is None:
        why = f"; last error: {record.last_error}" if record.last_error else ""
        hint = (
            f"start it with `conveyor services start {name}`"
            if record.desired == "stopped"
            else "is a daemon (`conveyor daemon` or `conveyor dev`) running?"
        )
        raise NotFoundError(f"service {name!r} is not running (state {record.state}{why}); {hint}")
    return f"http://127.0.0.1:{record.port}"
