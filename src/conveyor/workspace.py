"""Loading a workspace: a Python file, a module, or a folder of files, whose global ``Job``
objects are its jobs (and its global ``Service``/``App`` objects its workloads); a file
that holds a ``Workspace`` object (Dagster's ``Definitions``) serves that object's jobs,
with its resources bound, instead."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.definitions.job import Job
from conveyor.definitions.job_options import WORKSPACE_MODULE_PREFIX
from conveyor.definitions.sensor import Sensor
from conveyor.definitions.workloads import Workload
from conveyor.definitions.workspace_def import Workspace as WorkspaceObject
from conveyor.errors import DefinitionError, NotFoundError, WorkspaceError

# Workspace files are imported under this prefix and their file name.
WORKSPACE_PREFIX = WORKSPACE_MODULE_PREFIX


@dataclass(slots=True)
class Workspace:
    """The jobs of one file, module or folder, by name.

    Attributes:
        origin: how to load the same workspace again (``{"file": ...}``,
            ``{"module": ...}`` or ``{"folder": ...}``), recorded on runs.
    """

    jobs: dict[str, Job]
    origin: dict[str, Any]
    places: dict[str, str] = field(default_factory=dict)
    sensors: dict[str, Sensor] = field(default_factory=dict)
    workloads: dict[str, Workload] = field(default_factory=dict)

    def job(self, name: str | None) -> Job:
        """The job called ``name``; with ``None``, the only job of the workspace."""
        if name is None:
            if len(self.jobs) == 1:
                return next(iter(self.jobs.values()))
            if not self.jobs:
                raise WorkspaceError(
                    f"{self.describe()} defines no job; mark one with @workflow or @job"
                )
            raise WorkspaceError(
                f"{self.describe()} defines {len(self.jobs)} jobs; name one of: "
                f"{', '.join(sorted(self.jobs))}"
            )
        try:
            return self.jobs[name]
        except KeyError:
            raise NotFoundError(
                f"{self.describe()} has no job {name!r}; its jobs: "
                f"{', '.join(sorted(self.jobs)) or 'none'}"
            ) from None

    def workload(self, name: str) -> Workload:
        """The service or app called ``name``."""
        try:
            return self.workloads[name]
        except KeyError:
            raise NotFoundError(
                f"{self.describe()} has no service or app {name!r}; its workloads: "
                f"{', '.join(sorted(self.workloads)) or 'none'}"
            ) from None

    def describe(self) -> str:
        return (
            self.origin.get("file")
            or self.origin.get("module")
            or self.origin.get("folder")
            or "the workspace"
        )


def load_file(path: str | Path, *, package: str = "") -> Workspace:
    """Import a Python file as a workspace; its folder goes on ``sys.path`` for its imports.

    With ``package`` (a deployed version's), the module is ``<package>.`` followed by
    the usual name, so that two versions of one file are two modules.
    """
    p = Path(path).expanduser().resolve()
    if not p.is_file():
        raise WorkspaceError(f"workspace file {str(path)!r} does not exist")
    if p.suffix != ".py":
        raise WorkspaceError(f"workspace file {str(path)!r} is not a Python (.py) file")
    name = _module_name(p, package)
    return _collect(import_file(p, name), {"file": str(p)})


def _module_name(path: Path, package: str) -> str:
    return f"{package}.{WORKSPACE_PREFIX}{path.stem}" if package else WORKSPACE_PREFIX + path.stem


def load_folder(path: str | Path, *, package: str = "") -> Workspace:
    """Import every Python file of a folder (not its subfolders) as one workspace.

    Files whose name starts with ``_`` are skipped (helpers, ``__init__.py``).
    Each file is imported as ``load_file`` imports it; a job counts in the file
    that defines it, so a file may import a job of another (for a chain)
    without defining it twice. Two jobs with one name are a ``WorkspaceError``
    naming both files. ``package``: as for ``load_file``.
    """
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise WorkspaceError(f"workspace folder {str(path)!r} does not exist")
    files = folder_files(folder)
    if not files:
        raise WorkspaceError(
            f"{str(path)!r} is a folder with no Python file in it: put jobs in a .py file "
            f"there (files whose name starts with _ are skipped), or name a workspace file"
        )
    origin = {"folder": str(folder)}
    merged = Workspace(jobs={}, origin=origin)
    # Whether each job was found in the file that defines it, rather than one importing it.
    native: dict[str, bool] = {}
    for file in files:
        try:
            module = import_file(file, _module_name(file, package))
        except Exception as e:
            raise WorkspaceError(f"loading {file} failed: {type(e).__name__}: {e}") from e
        part = _collect(module, {"file": str(file)})
        for name, job in part.jobs.items():
            here = getattr(job.fn, "__module__", None) == module.__name__
            existing = merged.jobs.get(name)
            if existing is not None and (existing is job or (native[name] and not here)):
                continue
            if existing is not None and native[name] == here:
                raise WorkspaceError(
                    f"two jobs are named {name!r}: {merged.places[name]} and "
                    f"{part.places[name]}; give one of them another name (@workflow(name=...))"
                )
            merged.jobs[name], merged.places[name], native[name] = job, part.places[name], here
        for name, sensor in part.sensors.items():
            here = getattr(sensor.fn, "__module__", None) == module.__name__
            if name not in merged.sensors or here:
                merged.sensors[name] = sensor
        for name, workload in part.workloads.items():
            existing_workload = merged.workloads.get(name)
            # A file importing another's workload imports it anew (as a module of its
            # own name): the same declaration is the same workload.
            if existing_workload is not None and not _same_workload(existing_workload, workload):
                raise WorkspaceError(
                    f"two workloads are named {name!r}: {merged.places['workload:' + name]} and "
                    f"{part.places['workload:' + name]}; give one of them another name"
                )
            if existing_workload is None:
                merged.workloads[name] = workload
                merged.places["workload:" + name] = part.places["workload:" + name]
    return merged


def _same_workload(a: Workload, b: Workload) -> bool:
    if a is b:
        return True
    sa, sb = a.spec(), b.spec()
    sa.pop("entrypoint"), sb.pop("entrypoint")  # a callable's module name differs
    if type(a).__name__ != type(b).__name__ or sa != sb:
        return False
    ea, eb = a.entrypoint, b.entrypoint
    if isinstance(ea, str) or isinstance(eb, str):
        return bool(ea == eb)
    return getattr(ea, "__qualname__", None) == getattr(eb, "__qualname__", None)


def folder_files(folder: Path) -> list[Path]:
    """The files ``load_folder`` imports, in the order it imports them."""
    return sorted(p for p in folder.glob("*.py") if p.is_file() and not p.name.startswith("_"))


def import_file(path: Path, name: str) -> Any:
    """Import the file at ``path`` as module ``name``, its folder on ``sys.path``.

    Worker processes import a workspace file the same way, under the same
    name, so that its tasks are found there by reference.
    """
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    parent = name.rpartition(".")[0]
    if parent and parent not in sys.modules:
        # A deployed version's modules hang under a package of their own, which only
        # needs to exist for pickle to find them (``__import__`` imports the parent).
        holder = types.ModuleType(parent)
        holder.__path__ = []
        sys.modules[parent] = holder
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise WorkspaceError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        sys.modules.pop(name, None)
        raise
    return module


def load_module(name: str) -> Workspace:
    """Import a module (``package.pipelines``) as a workspace."""
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and name.startswith(e.name):
            raise WorkspaceError(
                f"no module named {name!r}; check the name, or run from the folder that holds it"
            ) from None
        raise
    return _collect(module, {"module": name})


def load(origin: dict[str, Any]) -> Workspace:
    """Load the workspace a run's ``origin`` names."""
    if origin.get("file"):
        return load_file(origin["file"])
    if origin.get("module"):
        return load_module(origin["module"])
    if origin.get("folder"):
        return load_folder(origin["folder"])
    raise WorkspaceError(f"cannot tell where to load jobs from: {origin!r}")


def _collect(module: Any, origin: dict[str, Any]) -> Workspace:
    jobs: dict[str, Job] = {}
    places: dict[str, str] = {}
    sensors = {v.name: v for v in vars(module).values() if isinstance(v, Sensor)}
    where = origin.get("file") or origin.get("module")
    workloads: dict[str, Workload] = {}
    for attr, value in vars(module).items():
        if isinstance(value, Workload):
            known = workloads.get(value.name)
            if known is not None and known is not value:
                raise WorkspaceError(
                    f"two workloads are named {value.name!r}: {places['workload:' + value.name]} "
                    f"and {where}:{attr}; give one of them another name"
                )
            workloads[value.name] = value
            places.setdefault("workload:" + value.name, f"{where}:{attr}")
        if not isinstance(value, Job):
            continue
        place = f"{where}:{attr}"
        existing = jobs.get(value.name)
        if existing is value:
            continue
        if existing is not None:
            raise WorkspaceError(
                f"two jobs are named {value.name!r}: {places[value.name]} and {place}; "
                f"give one of them another name (@workflow(name=...))"
            )
        jobs[value.name] = value
        places[value.name] = place
    declared = [(a, v) for a, v in vars(module).items() if isinstance(v, WorkspaceObject)]
    if declared:
        jobs, places, sensors = _declared(declared, jobs, places, where)
    return Workspace(jobs=jobs, origin=origin, places=places, sensors=sensors, workloads=workloads)


def _declared(
    declared: list[tuple[str, WorkspaceObject]],
    found: dict[str, Job],
    found_places: dict[str, str],
    where: str | None,
) -> tuple[dict[str, Job], dict[str, str], dict[str, Sensor]]:
    """The jobs, places and sensors of a file's ``Workspace`` object (Dagster's
    ``Definitions``): its jobs, bound to its resources, and the jobs its sensors
    target (looked up among the file's jobs by name, and bound too)."""
    if len({id(v) for _, v in declared}) > 1:
        names = ", ".join(a for a, _ in declared)
        raise WorkspaceError(
            f"{where} holds {len(declared)} Workspace objects ({names}); keep one, since "
            f"it says which jobs the file serves"
        )
    attr, ws = declared[0]
    jobs = dict(ws.jobs)
    for sensor in ws.sensors.values():
        if sensor.job_name in jobs:
            continue
        target = found.get(sensor.job_name)
        if target is None:
            raise WorkspaceError(
                f"{where}: sensor {sensor.name!r} of Workspace {attr!r} asks for runs of job "
                f"{sensor.job_name!r}, which is neither in its jobs= nor defined in the file; "
                f"add the job to jobs="
            )
        try:
            jobs[target.name] = ws.bind(target)
        except DefinitionError as e:
            raise WorkspaceError(f"{where}: {e}") from None
    places = {n: found_places.get(n, f"{where}:{attr}") for n in jobs}
    return jobs, places, dict(ws.sensors)
