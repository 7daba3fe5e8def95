"""What a job requires of where it runs (dlt's ``require=``) and how it is shown and
started (dlt's ``expose=``), checked when the job is defined.

``require`` takes ``timezone``, ``dependency_groups`` (declared in the project's
``pyproject.toml`` and installed here, since a run installs nothing), ``profile``
(a config profile's name), ``machine`` (``"2cpu-8gb"`` or ``{"cpu": 2, "memory":
"8g"}``; on Dask, what its tasks ask of the workers) and ``region`` (on Dask,
the workers that declare the resource ``region-<name>``). ``expose`` takes
``tags``, ``starred``, ``manual`` and ``display_name``.
"""

from __future__ import annotations

import inspect
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from conveyor.definitions.durations import parse_memory
from conveyor.definitions.keys import check_keys
from conveyor.errors import ConfigError, DefinitionError

REQUIRE_KEYS = ("timezone", "dependency_groups", "profile", "machine", "region")
EXPOSE_KEYS = ("tags", "starred", "manual", "display_name")


@dataclass(frozen=True, slots=True)
class JobExpose:
    """How a job is shown and started (dlt's ``expose=``).

    Attributes:
        tags: grouping labels; each is also a ``tag:<name>`` trigger, so
            ``conveyor trigger tag:<name>`` starts every job that has it.
        starred: shown at the top of the UI's job list.
        manual: ``False`` refuses manual runs (``job.run()``, ``conveyor run``,
            ``conveyor trigger``, ``POST /api/runs`` and the UI's Run button);
            scheduled, chained and backfilled runs go on.
        display_name: the name people read (``"Simple Data Pipeline"``); the
            job's ``name`` stays the identifier.
    """

    tags: tuple[str, ...] = ()
    starred: bool = False
    manual: bool = True
    display_name: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: ``tags``, ``starred``, ``manual`` and ``display_name``."""
        return {
            "tags": list(self.tags),
            "starred": self.starred,
            "manual": self.manual,
            "display_name": self.display_name,
        }


def parse_expose(value: object, display_name: object, owner: str) -> JobExpose:
    """dlt's ``expose={"tags", "starred", "manual", "display_name"}``, checked.

    ``display_name=`` given to the decorator itself goes in ``expose`` too.
    """
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise DefinitionError(
            f"{owner}: expose={value!r} must be a dict, e.g. "
            f"{{'tags': ['pricing'], 'starred': True, 'manual': False}}"
        )
    check_keys(value, EXPOSE_KEYS, owner, "expose key")
    tags = value.get("tags") or []
    if isinstance(tags, str) or not isinstance(tags, Sequence):
        raise DefinitionError(f"{owner}: expose tags={tags!r} must be a list of strings")
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip() or ":" in tag or "?" in tag:
            raise DefinitionError(
                f"{owner}: expose tag {tag!r} must be a non-empty string without ':' or '?' "
                f"(each tag is also the trigger 'tag:<tag>')"
            )
    for key in ("starred", "manual"):
        if key in value and not isinstance(value[key], bool):
            raise DefinitionError(f"{owner}: expose {key}={value[key]!r} must be True or False")
    shown = value.get("display_name")
    if display_name is not None:
        if shown is not None and shown != display_name:
            raise DefinitionError(
                f"{owner}: display_name={display_name!r} and expose display_name={shown!r} "
                f"differ; give it once"
            )
        shown = display_name
    if shown is not None and (not isinstance(shown, str) or not shown.strip()):
        raise DefinitionError(
            f"{owner}: display_name={shown!r} must be a non-empty string, e.g. "
            f"'Simple Data Pipeline'"
        )
    return JobExpose(
        tags=tuple(dict.fromkeys(t.strip() for t in tags)),
        starred=value.get("starred", False),
        manual=value.get("manual", True),
        display_name=shown.strip() if isinstance(shown, str) else None,
    )


def parse_require(value: object, fn: Callable[..., Any], owner: str) -> dict[str, Any]:
    """dlt's ``require=``, checked; ``machine`` comes back as ``{"cpu": ..., "memory": ...}``.

    ``dependency_groups`` must be declared in the project's ``pyproject.toml``
    (the nearest one above the job's file: ``[dependency-groups]`` or
    ``[project.optional-dependencies]``) and their packages installed here,
    since a run uses the environment it starts in and installs nothing.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise DefinitionError(
            f"{owner}: require={value!r} must be a dict, e.g. "
            f"{{'timezone': 'Europe/Berlin', 'machine': '2cpu-8gb'}}"
        )
    check_keys(value, REQUIRE_KEYS, owner, "require key")
    require = dict(value)
    for key in ("timezone", "profile", "region"):
        item = require.get(key)
        if item is not None and (not isinstance(item, str) or not item.strip()):
            raise DefinitionError(f"{owner}: require {key}={item!r} must be a non-empty string")
    region = require.get("region")
    if region is not None and not _REGION.match(region):
        raise DefinitionError(
            f"{owner}: require region={region!r} must be a region name such as 'eu' or "
            f"'us-east-1' (letters, digits, '_', '.' and '-'): on Dask it names the worker "
            f"resource region-<name>"
        )
    profile = require.get("profile")
    if profile is not None and not profile.replace("-", "_").isidentifier():
        raise DefinitionError(
            f"{owner}: require profile={profile!r} must be a profile name such as 'prod' "
            f"(letters, digits, '_' and '-'): it names .conveyor/<profile>.config.toml"
        )
    if "machine" in require:
        require["machine"] = parse_machine(require["machine"], owner)
    groups = require.get("dependency_groups")
    if groups is not None:
        if isinstance(groups, str) or not isinstance(groups, Sequence):
            raise DefinitionError(
                f"{owner}: require dependency_groups={groups!r} must be a list of group names"
            )
        require["dependency_groups"] = list(groups)
        check_dependency_groups(require["dependency_groups"], fn, owner)
    return require


_REGION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_placement(executor: Any, require: Mapping[str, Any], owner: str) -> Any:
    """``executor``, unless it can tell that the job's ``machine`` or ``region`` will never
    be met on it (an executor with an ``unmet(require)`` method, such as a ``DaskExecutor``
    whose workers' resources are given): then ``DefinitionError`` with the reason."""
    if "machine" not in require and "region" not in require:
        return executor
    unmet = getattr(executor, "unmet", None)
    reason = unmet(require) if callable(unmet) else None
    if reason is not None:
        raise DefinitionError(f"{owner}: require= cannot be met on {executor!r}: {reason}")
    return executor


_MACHINE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*cpus?\s*[-_ ,/]\s*(\d+(?:\.\d+)?\s*[a-z]+)\s*$", re.I)


def parse_machine(value: object, owner: str) -> dict[str, Any]:
    """``"2cpu-8gb"`` or ``{"cpu": 2, "memory": "8g"}`` as ``{"cpu": 2.0, "memory": bytes}``."""
    example = "'2cpu-8gb' or {'cpu': 2, 'memory': '8g'}"
    if isinstance(value, str):
        match = _MACHINE.match(value)
        if match is None:
            raise DefinitionError(f"{owner}: require machine={value!r}: write it as {example}")
        cpu: object = float(match.group(1))
        memory: object = match.group(2).replace(" ", "")
    elif isinstance(value, Mapping):
        check_keys(value, ("cpu", "memory"), owner, "require machine key")
        cpu, memory = value.get("cpu"), value.get("memory")
    else:
        raise DefinitionError(f"{owner}: require machine={value!r}: write it as {example}")
    machine: dict[str, Any] = {}
    if cpu is not None:
        if isinstance(cpu, bool) or not isinstance(cpu, int | float) or not cpu > 0:
            raise DefinitionError(
                f"{owner}: require machine cpu={cpu!r} must be a number of cores > 0"
            )
        machine["cpu"] = float(cpu)
    if memory is not None:
        try:
            machine["memory"] = parse_memory(memory)
        except ConfigError as e:
            raise DefinitionError(f"{owner}: require machine memory={memory!r}: {e}") from None
    if not machine:
        raise DefinitionError(f"{owner}: require machine={value!r}: write it as {example}")
    return machine


def check_dependency_groups(groups: Sequence[object], fn: Callable[..., Any], owner: str) -> None:
    """Refuse groups the project does not declare, or whose packages are not installed."""
    for group in groups:
        if not isinstance(group, str) or not group.strip():
            raise DefinitionError(
                f"{owner}: require dependency_groups holds {group!r}; each must be a group name"
            )
    pyproject = _pyproject_of(fn)
    if pyproject is None:
        raise DefinitionError(
            f"{owner}: require dependency_groups={list(groups)!r}: no pyproject.toml above "
            f"the job's file declares them; add them under [dependency-groups] there"
        )
    declared = _declared_groups(pyproject)
    for group in groups:
        assert isinstance(group, str)
        if group not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise DefinitionError(
                f"{owner}: require dependency_groups: {pyproject} declares no group "
                f"{group!r} (its groups: {known}); add it under [dependency-groups]"
            )
        missing = [r for r in declared[group] if not _installed(r)]
        if missing:
            raise DefinitionError(
                f"{owner}: require dependency_groups: group {group!r} needs "
                f"{', '.join(missing)}, not installed here; install the group (e.g. "
                f"`uv sync --group {group}` or `pip install -e '.[{group}]'`)"
            )


def _pyproject_of(fn: Callable[..., Any]) -> Path | None:
    try:
        start = Path(inspect.getfile(fn)).resolve().parent
    except (TypeError, OSError):
        start = Path.cwd()
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file():
            return folder / "pyproject.toml"
    return None


def _declared_groups(pyproject: Path) -> dict[str, list[str]]:
    """The groups of a pyproject (PEP 735 groups and extras), each as requirement strings."""
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise DefinitionError(f"cannot read {pyproject}: {e}") from None
    groups: dict[str, list[str]] = {}
    extras = data.get("project", {}).get("optional-dependencies", {})
    for source in (extras, data.get("dependency-groups", {})):
        for name, items in source.items():
            groups.setdefault(name, []).extend(i for i in items if isinstance(i, str))
    return groups


_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _installed(requirement: str) -> bool:
    """Whether the distribution a requirement string names is installed (versions not checked)."""
    match = _REQUIREMENT_NAME.match(requirement)
    if match is None:
        return True
    if ";" in requirement:  # an environment marker: leave it to the installer
        return True
    try:
        metadata.distribution(match.group(1))
    except metadata.PackageNotFoundError:
        return False
    return True
