"""The layers' imports point one way: definitions <- storage <- execution <- scheduler <- cli.

The rule lives in ``pyproject.toml`` as import-linter contracts, and
``lint-imports`` checks it here, so CI does too. It sees every import: those
inside functions and under ``TYPE_CHECKING`` as well as those at the top of a
module. The run conveniences on ``Job`` reach upward through one module,
``conveyor.definitions.run_facade``, and the contracts name only it.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
SRC = ROOT / "src" / "conveyor"
FACADE = "conveyor.definitions.run_facade"

# Imports of another package's private names that are known and not yet
# removed (file, imported name). None may be added; see issue 9.
KNOWN_PRIVATE_IMPORTS: set[tuple[str, str]] = set()


def _lint_imports() -> str:
    beside = Path(sys.executable).parent / "lint-imports"
    found = str(beside) if beside.exists() else shutil.which("lint-imports")
    assert found, "lint-imports is missing: install the dev extras (pip install -e '.[dev]')"
    return found


def _contracts() -> dict[str, dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def test_import_contracts_hold() -> None:
    out = subprocess.run(
        [_lint_imports(), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_only_the_run_facade_may_reach_upward_from_definitions() -> None:
    contracts = _contracts()
    for which in ("layers", "pure-definitions"):
        ignored = contracts[which].get("ignore_imports", [])
        assert ignored, f"contract {which!r} no longer lets the facade through"
        others = [i for i in ignored if i.split("->")[0].strip() != FACADE]
        assert others == [], f"contract {which!r} excuses more than {FACADE}: {others}"


def test_the_layer_contract_checks_every_layer() -> None:
    layers = " ".join(_contracts()["layers"]["layers"])
    for package in ("cli", "scheduler", "execution", "storage", "workspace", "definitions"):
        assert package in layers.replace("(", " ").replace(")", " ").split()


def _private_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, conveyor.x.y._name)`` for each private name ``path`` imports from another
    package of conveyor, wherever the import stands (also inside functions)."""
    own = path.relative_to(SRC).parts[0].removesuffix(".py")
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0):
            continue
        parts = node.module.split(".")
        if parts[0] != "conveyor" or len(parts) < 2 or parts[1] == own:
            continue
        for alias in node.names:
            if alias.name.startswith("_") and not alias.name.startswith("__"):
                found.append((node.lineno, f"{node.module}.{alias.name}"))
    return found


def test_no_package_imports_another_packages_private_names() -> None:
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        where = path.relative_to(SRC).as_posix()
        for line, name in _private_imports(path):
            if (where, name) not in KNOWN_PRIVATE_IMPORTS:
                bad.append(f"{where}:{line} imports {name}")
    assert not bad, "\n".join(bad)


def test_import_conveyor_does_not_load_storage_or_execution() -> None:
    code = (
        "import sys, conveyor; "
        "heavy = [m for m in ('sqlalchemy', 'alembic', 'conveyor.storage', 'conveyor.execution', "
        "'conveyor.scheduler', 'rich') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


def test_every_public_name_resolves() -> None:
    import conveyor

    missing = [name for name in conveyor.__all__ if not hasattr(conveyor, name)]
    assert missing == []
