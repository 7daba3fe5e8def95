"""Which web framework an app's module is written for, read from its source.

An ``App`` may leave ``framework`` out; the launcher then reads the
entrypoint module's source and asks :func:`infer_framework`. Nothing is
imported: importing a Streamlit script would run it, and a missing framework
package must be reported as such, not as an ImportError from user code.
"""

from __future__ import annotations

import ast

FRAMEWORKS = ("streamlit", "dash", "panel", "flask", "fastapi", "asgi", "wsgi")

# Top-level packages that settle the framework, strongest first: a Dash app
# imports flask too, and a Panel app may import bokeh.
_PACKAGES: tuple[tuple[str, str], ...] = (
    ("streamlit", "streamlit"),
    ("panel", "panel"),
    ("dash", "dash"),
    ("fastapi", "fastapi"),
    ("flask", "flask"),
    ("starlette", "asgi"),
    ("litestar", "asgi"),
    ("quart", "asgi"),
    ("sanic", "asgi"),
    ("django", "wsgi"),
    ("bottle", "wsgi"),
    ("pyramid", "wsgi"),
    ("falcon", "wsgi"),
)

# Constructors whose result names the framework when the attribute is assigned from one.
_CONSTRUCTORS = {
    ("dash", "Dash"): "dash",
    ("fastapi", "FastAPI"): "fastapi",
    ("flask", "Flask"): "flask",
    ("starlette.applications", "Starlette"): "asgi",
}


def check_framework(framework: str) -> str:
    """Return ``framework`` if it is one Conveyor can serve, else raise ValueError."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework={framework!r}: use one of {', '.join(FRAMEWORKS)}")
    return framework


def infer_framework(source: str, attr: str | None = None) -> str | None:
    """The framework a module's ``source`` is written for, or None if it does not say.

    When ``attr`` is assigned from a known app constructor (``app = Dash(...)``),
    that decides; otherwise the module's imports do.

    Raises:
        SyntaxError: ``source`` is not Python.
    """
    tree = ast.parse(source)
    imported: dict[str, str] = {}  # local name -> "module.Name" it stands for
    packages: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                packages.add(alias.name.partition(".")[0])
                imported[alias.asname or alias.name.partition(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            packages.add(node.module.partition(".")[0])
            for alias in node.names:
                imported[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    if attr is not None:
        by_constructor = _from_assignment(tree, attr, imported)
        if by_constructor is not None:
            return by_constructor
    for package, framework in _PACKAGES:
        if package in packages:
            return framework
    return None


def _from_assignment(tree: ast.Module, attr: str, imported: dict[str, str]) -> str | None:
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign):
            targets, value = [node.target], node.value
        if not isinstance(value, ast.Call):
            continue
        if not any(isinstance(t, ast.Name) and t.id == attr for t in targets):
            continue
        qualified = _qualified(value.func, imported)
        if qualified is None:
            continue
        module, _, name = qualified.rpartition(".")
        for (known_module, known_name), framework in _CONSTRUCTORS.items():
            if name == known_name and (
                module == known_module or module == known_module.split(".")[0]
            ):
                return framework
    return None


def _qualified(func: ast.expr, imported: dict[str, str]) -> str | None:
    if isinstance(func, ast.Name):
        return imported.get(func.id)
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        base = imported.get(func.value.id)
        return None if base is None else f"{base}.{func.attr}"
    return None


# The MCP server classes, as "module.Name": the official SDK's (``FastMCP`` in mcp 1,
# ``MCPServer`` in mcp 2) and the standalone fastmcp package's.
_MCP_SERVERS = frozenset(
    {
        "mcp.server.fastmcp.FastMCP",
        "mcp.server.fastmcp.server.FastMCP",
        "mcp.server.mcpserver.MCPServer",
        "mcp.server.mcpserver.server.MCPServer",
        "mcp.server.MCPServer",
        "fastmcp.FastMCP",
        "fastmcp.server.FastMCP",
        "fastmcp.server.server.FastMCP",
    }
)


def infer_interactive(source: str) -> str | None:
    """What a module named as an interactive job is: ``"marimo"`` (a notebook: it makes
    a ``marimo.App``), ``"mcp"`` (it makes an MCP server at module level) or
    ``"streamlit"`` (it imports streamlit); None if none of these.

    Raises:
        SyntaxError: ``source`` is not Python.
    """
    tree = ast.parse(source)
    imported: dict[str, str] = {}
    packages: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                packages.add(alias.name.partition(".")[0])
                imported[alias.asname or alias.name.partition(".")[0]] = (
                    alias.name if alias.asname else alias.name.partition(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            packages.add(node.module.partition(".")[0])
            for alias in node.names:
                imported[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    made = {
        _qualified_call(node.value, imported)
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
    }
    if "marimo" in packages and "marimo.App" in made:
        return "marimo"
    if made & _MCP_SERVERS:
        return "mcp"
    if "streamlit" in packages:
        return "streamlit"
    return None


def _qualified_call(value: ast.expr | None, imported: dict[str, str]) -> str | None:
    if not isinstance(value, ast.Call):
        return None
    func = value.func
    parts: list[str] = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name) or func.id not in imported:
        return None
    return ".".join([imported[func.id], *reversed(parts)])
