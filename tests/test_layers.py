"""The layers' imports point one way: definitions <- storage <- execution <- cli.

Only module-level imports count: a method may import a higher layer lazily
(``Job.run`` calls into execution), which keeps ``import conveyor`` cheap and
the definitions free of I/O at import time.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "conveyor"

ALLOWED = {
    "definitions": {"definitions", "errors", "_types"},
    "storage": {"storage", "definitions", "errors", "_types"},
    "execution": {"execution", "storage", "definitions", "errors", "workspace", "_types"},
    "cli": {
        "cli",
        "scheduler",
        "execution",
        "storage",
        "definitions",
        "errors",
        "workspace",
        "_types",
        "",
    },
    "scheduler": {
        "scheduler",
        "execution",
        "storage",
        "definitions",
        "errors",
        "workspace",
        "_types",
    },
}


def _module_level_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
    return [n for n in names if n == "conveyor" or n.startswith("conveyor.")]


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_point_one_way(layer: str) -> None:
    bad = []
    for path in (SRC / layer).rglob("*.py"):
        for name in _module_level_imports(path):
            target = name.split(".")[1] if "." in name else ""
            if target not in ALLOWED[layer]:
                bad.append(f"{path.relative_to(SRC)} imports {name}")
    assert not bad, "\n".join(bad)


def test_import_conveyor_does_not_load_storage_or_execution() -> None:
    code = (
        "import sys, conveyor; "
        "heavy = [m for m in ('sqlalchemy', 'alembic', 'conveyor.storage', 'conveyor.execution', "
        "'rich') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


def test_every_public_name_resolves() -> None:
    import conveyor

    missing = [name for name in conveyor.__all__ if not hasattr(conveyor, name)]
    assert missing == []
