"""What an interactive job may hand Conveyor to serve, told apart by shape: an MCP
server, an ASGI app, a WSGI app; and the ASGI app that serves an MCP server.

MCP servers are recognized by their methods rather than their class, so that the
official SDK's (``mcp.server.mcpserver.MCPServer`` in mcp 2, ``FastMCP`` in mcp 1)
and the standalone ``fastmcp`` package's are served alike, each through its own
streamable HTTP app mounted at ``/mcp``.

The MCP SDK's guard against DNS rebinding refuses a request whose ``Host`` is not
an allowed name. For a job whose interface is ``mcp``, Conveyor's proxy sends the
loopback address it connects to as ``Host`` (the caller's is in
``X-Forwarded-Host``), so the guard stays on and allows loopback names only: a page
that rebinds its own name to 127.0.0.1 to reach the job's port directly is refused.
An MCP server returned by a job of another interface gets the caller's ``Host``
through the proxy, which the job cannot know in advance: the guard is off there.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from conveyor.errors import ConfigError

# Where an MCP server answers, below the job's base path.
MCP_PATH = "/mcp"
# The Host values a guarded MCP server accepts: what Conveyor's proxy sends.
LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")


def is_mcp_server(value: Any) -> bool:
    """Whether ``value`` is an MCP server Conveyor can serve over HTTP (duck-typed:
    the ``mcp`` package's ``FastMCP``/``MCPServer``, ``fastmcp``'s ``FastMCP``)."""
    if inspect.isclass(value) or not callable(getattr(value, "tool", None)):
        return False
    return callable(getattr(value, "streamable_http_app", None)) or callable(
        getattr(value, "http_app", None)
    )


def mcp_app(server: Any, *, guard: bool = True) -> Callable[..., Any]:
    """The ASGI app serving ``server``'s streamable HTTP transport at ``/mcp``; with
    ``guard``, the SDK's Host check allows loopback names only, without it the check
    is off (see the module docstring)."""
    make = getattr(server, "streamable_http_app", None)
    params = parameters(make) if callable(make) else {}
    if "streamable_http_path" in params:  # mcp 2: MCPServer
        kwargs: dict[str, Any] = {"streamable_http_path": MCP_PATH}
        if "transport_security" in params:
            kwargs["transport_security"] = _security(guard)
        return _asgi(make, kwargs)
    settings: Any = getattr(server, "settings", None)
    if callable(make) and hasattr(settings, "streamable_http_path"):  # mcp 1: FastMCP
        settings.streamable_http_path = MCP_PATH
        if hasattr(settings, "transport_security"):
            settings.transport_security = _security(guard)
        return _asgi(make, {})
    http_app = getattr(server, "http_app", None)
    if callable(http_app):  # the standalone fastmcp package
        params = parameters(http_app)
        kwargs = {"path": MCP_PATH}
        if "transport" in params:
            kwargs["transport"] = "http"
        return _asgi(http_app, kwargs)
    raise ConfigError(
        f"cannot serve the MCP server {type(server).__name__} over HTTP: it has neither "
        f"streamable_http_app(streamable_http_path=...), settings.streamable_http_path nor "
        f"http_app(path=...)"
    )


def _asgi(make: Any, kwargs: dict[str, Any]) -> Callable[..., Any]:
    app = make(**kwargs)
    if not callable(app):
        raise ConfigError(f"{make!r} did not return an ASGI app")
    return app  # type: ignore[no-any-return]


def parameters(fn: Any) -> dict[str, inspect.Parameter]:
    """The parameters of ``fn`` by name; none when it has no signature to read."""
    try:
        return dict(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return {}


def _security(guard: bool) -> Any:
    from mcp.server.transport_security import TransportSecuritySettings

    if not guard:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=list(LOOPBACK_HOSTS),
        # A browser's page on Conveyor's own origin is let through by the proxy's access
        # check; the SDK sees no Origin it could compare, so none is allowed here.
        allowed_origins=[],
    )


def is_asgi(value: Any) -> bool:
    """Whether ``value`` is an ASGI app: an async callable of (scope, receive, send)."""
    if inspect.isclass(value) or not callable(value):
        return False
    call = value if inspect.isfunction(value) or inspect.ismethod(value) else value.__call__
    if inspect.iscoroutinefunction(call):
        return len(_positional(call)) == 3
    return False


def is_wsgi(value: Any) -> bool:
    """Whether ``value`` is a WSGI app: a callable of (environ, start_response)."""
    if inspect.isclass(value) or not callable(value):
        return False
    if hasattr(value, "wsgi_app"):  # Flask
        return True
    call = value if inspect.isfunction(value) or inspect.ismethod(value) else value.__call__
    return not inspect.iscoroutinefunction(call) and _positional(call)[:2] == [
        "environ",
        "start_response",
    ]


def _positional(fn: Any) -> list[str]:
    return [
        p.name
        for p in parameters(fn).values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
