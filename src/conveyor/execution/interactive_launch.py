"""How an interactive job's process is started, and what runs inside it.

An ``Interactive`` is started by the supervisor like any workload (``start_workload``);
:func:`interactive_command` says with what command. A marimo notebook or a
Streamlit script named as the entrypoint runs under its own server (``marimo run``,
``streamlit run``) with its base path set. Anything else runs under ``python -m
conveyor.execution.interactive_launch`` (:func:`main`), which loads the workspace as
run workers do, finds the job and serves what its entrypoint gives:

- a function is called with an ``InteractiveContext`` (or with nothing); it serves on
  ``context.port`` itself and returns None, or returns what Conveyor serves for it;
- an MCP server (the ``mcp`` package's ``FastMCP`` or ``MCPServer``, the standalone
  ``fastmcp`` package's ``FastMCP``) is served over streamable HTTP at
  ``<base_path>/mcp``;
- an ASGI app is served by uvicorn with ``root_path`` set and the path kept whole
  (the proxy forwards ``/apps/<name>/...``), a WSGI app by waitress under
  ``url_prefix``, as ``app_launch`` serves apps.

How each is told apart, and how an MCP server is served, is ``execution.servable``.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import importlib.util
import inspect
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conveyor.definitions.frameworks import infer_interactive
from conveyor.definitions.interactive import Interactive, InteractiveContext
from conveyor.errors import ConfigError
from conveyor.execution.app_launch import (
    APPS_EXTRA,
    HOST,
    Launch,
    module_file,
    mounted,
    normalize_base_path,
    streamlit_argv,
)
from conveyor.execution.servable import (
    MCP_PATH,
    is_asgi,
    is_mcp_server,
    is_wsgi,
    mcp_app,
    parameters,
)
from conveyor.execution.workload_launch import launch_args

MCP_EXTRA = "pip install 'conveyor[mcp]'"
MARIMO_EXTRA = "pip install 'conveyor[marimo]'"
# How long a stopping server waits for open requests (an MCP client's event stream
# stays open) before it closes them; the supervisor's grace period is longer.
GRACEFUL_SECONDS = 5
# What to install when a package an interactive job needs is missing.
_EXTRAS = {
    "mcp": MCP_EXTRA,
    "fastmcp": "pip install fastmcp",
    "marimo": MARIMO_EXTRA,
    "streamlit": APPS_EXTRA,
    "flask": APPS_EXTRA,
    "waitress": APPS_EXTRA,
}
ACCEPTED = (
    "None (the function served on context.port itself), an MCP server (FastMCP or "
    "MCPServer, served at <base_path>/mcp), an ASGI app (FastAPI, Starlette) or a WSGI "
    "app (Flask)"
)


def interactive_command(
    workload: Interactive, origin: dict[str, Any], port: int, python: str
) -> Launch:
    """The command that starts ``workload`` on 127.0.0.1:``port`` under its base path.

    Args:
        workload: the interactive job.
        origin: where its workspace is loaded from (``file``, ``module`` or ``folder``).
        port: the loopback port to serve on.
        python: the interpreter to run it with.

    Raises:
        ConfigError: the entrypoint module cannot be found or read, it is none of a
            marimo notebook, a Streamlit script or an MCP server module, or the
            package it needs is missing (naming the extra to install).
    """
    owner = f"Interactive({workload.name!r})"
    base = normalize_base_path(workload.base_path)
    root = _root(origin)
    folder = root if root is not None else Path.cwd()
    inherited = workload.env_vars.get("PYTHONPATH") or os.environ.get("PYTHONPATH", "")
    env = {
        "PYTHONPATH": os.pathsep.join(p for p in (str(folder.resolve()), inherited) if p),
        "CONVEYOR_BASE_PATH": base,
        "PORT": str(port),
    }
    entry = workload.entrypoint
    if isinstance(entry, str) and ":" not in entry:
        source = _source_file(entry, folder, owner)
        kind = _kind(source, owner)
        if kind == "marimo":
            _need("marimo", owner, "a marimo notebook", MARIMO_EXTRA)
            argv = [python, "-m", "marimo", "run", str(source), "--host", HOST]
            argv += ["--port", str(port), "--headless", "--base-url", base]
            # The proxy checks who may come in; marimo's own token would refuse them. No
            # one is there to answer whether to run it in a sandbox.
            argv += ["--no-token", "--no-sandbox"]
            return Launch(argv, env, f"{base}/health")
        if kind == "streamlit":
            _need("streamlit", owner, "a Streamlit script", APPS_EXTRA)
            return Launch(streamlit_argv(source, port, base, python), env, f"{base}/_stcore/health")
        _need_mcp(source, owner)
    argv = [python, "-m", "conveyor.execution.interactive_launch"]
    for key in ("file", "module", "folder"):
        if origin.get(key):
            argv += [f"--{key}", str(origin[key])]
            break
    else:
        raise ConfigError(f"{owner}: cannot tell where to load its workspace from: {origin!r}")
    return Launch([*argv, workload.name], env, None)


def _root(origin: dict[str, Any]) -> Path | None:
    if origin.get("file"):
        return Path(origin["file"]).resolve().parent
    if origin.get("folder"):
        return Path(origin["folder"]).resolve()
    return None


def _source_file(entry: str, root: Path, owner: str) -> Path:
    """The file of a module name or a ``.py`` entrypoint (relative to the workspace)."""
    text = entry.strip()
    if text.endswith(".py"):
        file = Path(text)
        file = file if file.is_absolute() else root / file
        if not file.is_file():
            raise ConfigError(f"{owner}: entrypoint file {str(file)!r} does not exist")
        return file.resolve()
    found = module_file(text, root)
    if found is None:
        raise ConfigError(
            f"{owner}: cannot find the module {text!r} in {str(root)!r} or on sys.path"
        )
    return found


def _kind(source: Path, owner: str) -> str:
    try:
        kind = infer_interactive(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SyntaxError) as e:
        raise ConfigError(f"{owner}: cannot read {str(source)!r}: {e}") from None
    if kind is None:
        raise ConfigError(
            f"{owner}: {str(source)!r} is not a marimo notebook (marimo.App), a Streamlit "
            f"script (import streamlit) or a module making an MCP server (FastMCP(...)); "
            f"name a function or an app as 'module:attr' instead"
        )
    return kind


def _need(package: str, owner: str, what: str, extra: str) -> None:
    if importlib.util.find_spec(package) is None:
        raise ConfigError(f"{owner}: {what} needs the {package} package; install it: {extra}")


def _need_mcp(source: Path, owner: str) -> None:
    tree = ast.parse(source.read_text(encoding="utf-8"))
    imported = {
        name.partition(".")[0]
        for node in ast.walk(tree)
        for name in (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    }
    standalone = "fastmcp" in imported
    package = "fastmcp" if standalone else "mcp"
    extra = "pip install fastmcp" if standalone else MCP_EXTRA
    _need(package, owner, "an MCP server", extra)


# --- the process side: python -m conveyor.execution.interactive_launch -------------


def serve(value: Any, context: InteractiveContext) -> None:
    """Serve ``value`` (an MCP server, an ASGI or a WSGI app) on ``context.port`` under
    ``context.base_path`` until the process is stopped.

    Raises:
        ConfigError: it is none of these (naming what it is and what is accepted).
    """
    base = context.base_path
    if is_mcp_server(value):
        print(
            f"serving the MCP server of {context.name!r} at "
            f"http://{context.host}:{context.port}{base}{MCP_PATH}",
            flush=True,
        )
        _uvicorn(mcp_app(value, guard=context.interface == "mcp"), context)
    elif is_asgi(value):
        _uvicorn(value, context)
    elif is_wsgi(value):
        if importlib.util.find_spec("waitress") is None:
            raise ConfigError(
                f"Interactive({context.name!r}): a WSGI app is served by waitress; "
                f"install it: {APPS_EXTRA}"
            )
        import waitress

        waitress.serve(value, host=context.host, port=context.port, url_prefix=base)
    else:
        raise ConfigError(
            f"Interactive({context.name!r}): got {_describe(value)}; an interactive job's "
            f"function may return {ACCEPTED}"
        )


def _uvicorn(app: Callable[..., Any], context: InteractiveContext) -> None:
    import uvicorn

    uvicorn.run(
        mounted(app, context.base_path),
        host=context.host,
        port=context.port,
        proxy_headers=True,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
    )


def _describe(value: Any) -> str:
    text = repr(value)
    text = text if len(text) <= 80 else text[:77] + "..."
    return f"{text} (a {type(value).__module__}.{type(value).__qualname__})"


def call(fn: Callable[..., Any], context: InteractiveContext) -> Any:
    """Call the job's function with ``context`` if it takes an argument, else with
    nothing; an ``async def`` is run to its end."""
    params = parameters(fn).values()
    takes = any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params
    )
    result = fn(context) if takes else fn()
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    return result


def target(workload: Interactive, root: Path | None) -> Any:
    """What the entrypoint names: the object itself, ``module:attr`` imported, or the
    MCP server a module (a name or a ``.py`` file) holds at its top level."""
    entry = workload.entrypoint
    owner = f"Interactive({workload.name!r})"
    if not isinstance(entry, str):
        return entry
    folder = root if root is not None else Path.cwd()
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    text = entry.strip()
    module_name, _, attr = text.partition(":")
    try:
        if text.endswith(".py"):
            module = _import_file(_source_file(text, folder, owner))
        else:
            module = importlib.import_module(module_name)
        if attr:
            value: Any = module
            for part in attr.split("."):
                value = getattr(value, part)
            return value
    except (ImportError, AttributeError) as e:
        raise ConfigError(
            f"{owner}: entrypoint {entry!r} cannot be loaded: {e}{_install(e)}"
        ) from e
    servers = {k: v for k, v in vars(module).items() if is_mcp_server(v)}
    if len(servers) != 1:
        found = ", ".join(sorted(servers)) or "none"
        raise ConfigError(
            f"{owner}: {entry!r} must hold one MCP server at its top level (found: {found}); "
            f"name the one to serve as 'module:attr'"
        )
    return next(iter(servers.values()))


def _install(error: BaseException) -> str:
    """``"; install it: ..."`` when ``error`` is a missing package an extra provides."""
    name = getattr(error, "name", None) if isinstance(error, ModuleNotFoundError) else None
    extra = _EXTRAS.get((name or "").partition(".")[0])
    return f"; install it: {extra}" if extra else ""


def _import_file(path: Path) -> Any:
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str) and Path(file).resolve() == path:
            return module
    from conveyor.workspace import import_file

    return import_file(path, path.stem)


def run(workload: Interactive, context: InteractiveContext, root: Path | None) -> None:
    """Run ``workload`` in this process until it is done or stopped."""
    value = target(workload, root)
    if is_mcp_server(value) or is_asgi(value) or is_wsgi(value):
        serve(value, context)
        return
    if not callable(value):
        raise ConfigError(
            f"Interactive({workload.name!r}): entrypoint {workload.entrypoint!r} is "
            f"{_describe(value)}: name a function, an MCP server or an ASGI or WSGI app"
        )
    result = call(value, context)
    if result is None:
        return
    serve(result, context)


def main(argv: list[str] | None = None) -> int:
    """``python -m conveyor.execution.interactive_launch (--file F|--module M|--folder D) NAME``."""
    parsed = launch_args("interactive_launch", argv)
    if parsed is None:
        return 2
    origin, name, port = parsed
    try:
        from conveyor.workspace import load

        workload = load(origin).workload(name)
        if not isinstance(workload, Interactive):
            raise ConfigError(f"{name!r} is a {type(workload).__name__}, not an interactive job")
        base = normalize_base_path(os.environ.get("CONVEYOR_BASE_PATH") or workload.base_path)
        context = InteractiveContext(
            name=workload.name,
            run_id=os.environ.get("CONVEYOR_RUN_ID") or None,
            port=port,
            base_path=base,
            interface=workload.interface,
        )
        run(workload, context, _root(origin))
    except KeyboardInterrupt:
        return 130
    except ConfigError as e:
        print(f"interactive_launch: {e}", file=sys.stderr)
        return 1
    except Exception as e:
        traceback.print_exc()
        if hint := _install(e):
            print(f"interactive_launch: {e}{hint}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
