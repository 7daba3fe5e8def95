"""The command that serves an ``App``: Streamlit, Dash, Panel, Flask, FastAPI, any ASGI or WSGI app.

Each framework runs under its own server, bound to 127.0.0.1 on the port the
supervisor assigned, with its base path set so that it works behind the proxy
at ``/apps/<name>/``. The proxy forwards the full path, prefix included, so
every app here answers under ``base_path`` (Streamlit ``--server.baseUrlPath``,
Panel ``--prefix``, Dash's pathname prefixes, WSGI ``SCRIPT_NAME`` through
waitress's ``url_prefix``, ASGI ``root_path`` with the path kept whole as the
ASGI spec says).

Streamlit and Panel scripts run under their own command line. Dash, Flask,
WSGI, FastAPI and ASGI apps run under ``python -m conveyor.execution.app_launch``
(:func:`main`), which imports the app and serves it with waitress or uvicorn.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.definitions.frameworks import infer_framework
from conveyor.errors import ConfigError

if TYPE_CHECKING:
    from conveyor.definitions.workloads import App

APPS_EXTRA = "pip install 'conveyor[apps]'"
HOST = "127.0.0.1"

# The packages each framework needs in the app's environment.
_NEEDS: dict[str, tuple[str, ...]] = {
    "streamlit": ("streamlit",),
    "panel": ("panel",),
    "dash": ("dash", "waitress"),
    "flask": ("flask", "waitress"),
    "wsgi": ("waitress",),
    "fastapi": ("fastapi", "uvicorn"),
    "asgi": ("uvicorn",),
}
_WSGI = ("dash", "flask", "wsgi")
_ASGI = ("fastapi", "asgi")


@dataclass(frozen=True, slots=True)
class Launch:
    """A process to start.

    Attributes:
        argv: the command line.
        env: variables to add to the parent's environment (the app's
            ``env_vars`` and the framework's settings).
        health: a path on ``127.0.0.1:<port>`` that answers 200 once the app
            serves (the framework's own health or page), for when the app sets
            no ``health`` of its own.
    """

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    health: str | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """Where an app's code is: a ``.py`` file or a module name, and the attribute in it."""

    file: Path | None
    module: str | None
    attr: str | None

    def argv(self) -> list[str]:
        where = (
            ["--file", str(self.file)] if self.file is not None else ["--module", str(self.module)]
        )
        return where + (["--attr", self.attr] if self.attr else [])


def app_command(
    app: App, port: int, base_path: str, python: str, *, root: str | Path | None = None
) -> Launch:
    """The command that serves ``app`` on 127.0.0.1:``port`` under ``base_path``.

    Args:
        app: the app.
        port: the loopback port to serve on.
        base_path: where the proxy serves it (``/apps/<name>``).
        python: the interpreter to run it with (it must have the framework installed).
        root: the workspace folder: relative files and modules are found there, and it
            is put on the app's ``PYTHONPATH``. ``None``: the current folder.

    Raises:
        ConfigError: the entrypoint cannot be found, the framework cannot be
            inferred, or its package is missing (naming ``pip install 'conveyor[apps]'``).
    """
    owner = f"App({app.name!r})"
    base = normalize_base_path(base_path)
    folder = Path(root) if root is not None else Path.cwd()
    target = resolve_target(app.entrypoint, folder, owner)
    framework = app.framework or _infer(target, folder, owner)
    missing = [
        package for package in _NEEDS[framework] if importlib.util.find_spec(package) is None
    ]
    if missing:
        raise ConfigError(
            f"{owner}: a {framework} app needs the {', '.join(missing)} package; "
            f"install the apps extra: {APPS_EXTRA}"
        )
    env = {str(k): str(v) for k, v in app.env_vars.items()}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(folder.resolve()), os.environ.get("PYTHONPATH", "")) if p
    )
    env["CONVEYOR_BASE_PATH"] = base
    env["PORT"] = str(port)
    if framework == "streamlit":
        return Launch(
            _streamlit(target, folder, port, base, python, owner), env, f"{base}/_stcore/health"
        )
    if framework == "panel" and target.attr is None:
        # A Panel script (one that calls .servable()) is served whole, as `panel serve` does.
        target = Target(_script(target, folder, owner), None, None)
    argv = [python, "-m", "conveyor.execution.app_launch", "--framework", framework]
    argv += ["--port", str(port), "--base-path", base, *target.argv()]
    if framework == "dash":
        # Dash reads these when the app object is made, which is why they are env vars.
        env["DASH_REQUESTS_PATHNAME_PREFIX"] = f"{base}/"
        env["DASH_ROUTES_PATHNAME_PREFIX"] = f"{base}/"
        return Launch(argv, env, f"{base}/_dash-layout")
    return Launch(argv, env, f"{base}/liveness" if framework == "panel" else None)


def normalize_base_path(base_path: str) -> str:
    """``/apps/<name>`` with one leading and no trailing slash; ConfigError if malformed."""
    text = base_path.strip().rstrip("/")
    if not text.startswith("/") or "//" in text or any(c in text for c in "?#\\ \0"):
        raise ConfigError(f"base path {base_path!r} must be a URL path such as '/apps/pricer'")
    return text


def resolve_target(entrypoint: Any, root: Path, owner: str) -> Target:
    """Where ``entrypoint`` lives: ``"file.py"``, ``"module"``, ``"module:attr"`` or the object."""
    if not isinstance(entrypoint, str):
        return _target_of_object(entrypoint, owner)
    text = entrypoint.strip()
    if text.endswith(".py"):
        file = Path(text)
        file = file if file.is_absolute() else root / file
        if not file.is_file():
            raise ConfigError(f"{owner}: entrypoint file {str(file)!r} does not exist")
        return Target(file.resolve(), None, None)
    module, _, attr = text.partition(":")
    if not module or (":" in text and not attr):
        raise ConfigError(
            f"{owner}: entrypoint {entrypoint!r} must be 'module:attr', a module or a .py file"
        )
    return Target(None, module, attr or None)


def _target_of_object(obj: Any, owner: str) -> Target:
    if inspect.isfunction(obj) or inspect.isclass(obj):
        if "<locals>" in obj.__qualname__:
            raise ConfigError(
                f"{owner}: entrypoint {obj.__qualname__} is defined inside a function; "
                f"define it at module level"
            )
        return Target(None, obj.__module__, obj.__qualname__)
    # An app object (a Flask or Dash instance...): find the module that holds it.
    for name, module in list(sys.modules.items()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict) or name == "__main__":
            continue
        for attr, value in list(namespace.items()):
            if value is obj and not attr.startswith("_"):
                return Target(None, name, attr)
    raise ConfigError(
        f"{owner}: cannot tell which module holds the entrypoint {type(obj).__name__} object; "
        f"name it as 'module:attr'"
    )


def module_file(module: str, root: Path) -> Path | None:
    """The source of ``module``, looked up in ``root`` then on sys.path, without importing it."""
    parts = module.split(".")
    for folder in [root, *(Path(p) for p in sys.path if p)]:
        base = folder.joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate.resolve()
    return None


def _script(target: Target, root: Path, owner: str) -> Path:
    if target.file is not None:
        return target.file
    assert target.module is not None
    file = module_file(target.module, root)
    if file is None:
        raise ConfigError(
            f"{owner}: cannot find the module {target.module!r} in {str(root)!r} or on sys.path"
        )
    return file


def _infer(target: Target, root: Path, owner: str) -> str:
    file = _script(target, root, owner)
    try:
        framework = infer_framework(file.read_text(encoding="utf-8"), target.attr)
    except (OSError, UnicodeDecodeError, SyntaxError) as e:
        raise ConfigError(
            f"{owner}: cannot read {str(file)!r} to infer its framework: {e}"
        ) from None
    if framework is None:
        raise ConfigError(
            f"{owner}: cannot infer the framework from the imports of {str(file)!r}; "
            f"give framework= (streamlit, dash, panel, flask, fastapi, asgi or wsgi)"
        )
    return framework


def _streamlit(
    target: Target, root: Path, port: int, base: str, python: str, owner: str
) -> list[str]:
    return streamlit_argv(_script(target, root, owner), port, base, python)


def streamlit_argv(script: Path, port: int, base: str, python: str) -> list[str]:
    """``streamlit run script`` on 127.0.0.1:``port`` under ``base``, headless, behind the proxy."""
    options = {
        "server.port": str(port),
        "server.address": HOST,
        "server.baseUrlPath": base.strip("/"),
        "server.headless": "true",
        # The proxy is the origin the browser sees and it checks access on every
        # request; Streamlit's own origin and XSRF checks would refuse its traffic.
        "server.enableCORS": "false",
        "server.enableXsrfProtection": "false",
        "server.fileWatcherType": "none",
        "browser.gatherUsageStats": "false",
        "client.toolbarMode": "minimal",
        "global.developmentMode": "false",
    }
    argv = [python, "-m", "streamlit", "run", str(script)]
    for key, value in options.items():
        argv += [f"--{key}", value]
    return argv


# --- the process side: python -m conveyor.execution.app_launch -------------------


def load_app(file: str | None, module: str | None, attr: str | None) -> Any:
    """Import the app's module (a file or a module name) and return ``attr`` in it.

    A function that takes no arguments is an app factory and is called.
    """
    if file is not None:
        path = Path(file).resolve()
        sys.path.insert(0, str(path.parent))
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"cannot load {file!r}")
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = loaded
        spec.loader.exec_module(loaded)
    else:
        assert module is not None
        sys.path.insert(0, os.getcwd())
        loaded = importlib.import_module(module)
    if attr is None:
        attr = "app"
    obj: Any = loaded
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"{loaded.__name__} has no attribute {attr!r}") from None
    if inspect.isfunction(obj) and not inspect.iscoroutinefunction(obj) and _no_required(obj):
        obj = obj()
    return obj


def _no_required(fn: Callable[..., Any]) -> bool:
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        for p in inspect.signature(fn).parameters.values()
    )


def mounted(app: Callable[..., Any], base: str) -> Callable[..., Any]:
    """``app`` with the ASGI ``root_path`` set to ``base`` and the path left whole.

    uvicorn's ``--root-path`` would prepend ``base`` to a path that already
    starts with it (the proxy forwards the full path).
    """

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, "root_path": base}
        await app(scope, receive, send)

    return wrapped


def main(args: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m conveyor.execution.app_launch")
    parser.add_argument("--framework", required=True, choices=[*_WSGI, *_ASGI, "panel"])
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--base-path", required=True)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--file")
    where.add_argument("--module")
    parser.add_argument("--attr")
    options = parser.parse_args(args)
    base = normalize_base_path(options.base_path)
    if options.framework == "panel" and options.attr is None and options.file is not None:
        serve_panel(options.file, options.port, base)
        return
    app = load_app(options.file, options.module, options.attr)
    if options.framework in _WSGI:
        import waitress

        # waitress says where it serves and what fails through logging only.
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

        if options.framework == "dash":
            # The Dash app routes under the full path itself; its Flask server is the WSGI app.
            waitress.serve(app.server, host=HOST, port=options.port)
        else:
            waitress.serve(app, host=HOST, port=options.port, url_prefix=base)
    elif options.framework in _ASGI:
        import uvicorn

        uvicorn.run(mounted(app, base), host=HOST, port=options.port, proxy_headers=True)
    else:
        serve_panel(app, options.port, base)


def serve_panel(app: Any, port: int, base: str) -> None:
    """Serve a Panel object, function or script file (a path) at ``base``."""
    import panel
    from panel.io.resources import DIST_DIR
    from tornado.web import StaticFileHandler

    serve: Callable[..., Any] = panel.serve  # panel's functions carry no annotations
    serve(
        app,
        port=port,
        address=HOST,
        prefix=base,
        show=False,
        # The proxy is the origin the browser sees; it checks access on every request.
        allow_websocket_origin=["*"],
        liveness=True,
        # Bokeh serves its icon at /favicon.ico whatever the prefix; the page asks for it
        # under the prefix.
        extra_patterns=[
            (r"/(favicon\.ico)", StaticFileHandler, {"path": str(DIST_DIR / "images")})
        ],
        start=True,
    )


if __name__ == "__main__":
    main()
