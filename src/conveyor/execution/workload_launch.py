"""Starting a workload's process, and where its output goes.

The supervisor (``scheduler.supervisor``) starts each workload as its own
process group with ``start_workload``: a ``Service`` runs as ``python -m
conveyor.execution.workload_launch``, which loads the workspace the way run
workers do and calls ``entrypoint(port)``; an ``App`` runs under its framework's
server (``execution.app_launch``). Its stdout and stderr go to files under
``<CONVEYOR_HOME>/workloads/<name>/``, opened for appending so that they can be
rotated by copy-and-truncate (``rotate``) while it writes, by whichever
supervisor owns it at the time.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import traceback
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from conveyor.definitions.workloads import App, Workload
from conveyor.errors import ConfigError, WorkspaceError

if TYPE_CHECKING:
    from conveyor.storage.instance import Instance
    from conveyor.storage.workloads import WorkloadRecord

STREAMS = ("stdout", "stderr")
# The one task of an interactive job's run, whose logs are the process's output.
INTERACTIVE_TASK = "serve"
# A log file is rotated past this size; this many rotated files are kept.
LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_KEEP = 3

# The processes this one started, until they are reaped: one dropped while it runs
# would warn (ResourceWarning) and, once ended, stay a zombie of this process.
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True, slots=True)
class Started:
    """A workload's process as started: its pid and where it serves."""

    pid: int
    port: int
    process: subprocess.Popen[bytes] = field(repr=False)


def log_dir(home: Path | None, name: str) -> Path:
    """The folder of workload ``name``'s logs (a temporary one for an instance without a home)."""
    root = home if home is not None else Path(tempfile.gettempdir()) / "conveyor"
    return root / "workloads" / name


def log_path(home: Path | None, name: str, stream: str = "stdout") -> Path:
    if stream not in STREAMS:
        raise ValueError(f"stream {stream!r} must be stdout or stderr")
    return log_dir(home, name) / f"{stream}.log"


def free_port() -> int:
    """A loopback port nobody listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command(
    workload: Workload, origin: dict[str, Any], port: int, python: str = sys.executable
) -> tuple[list[str], dict[str, str]]:
    """The argv that runs ``workload`` on ``port``, and the variables it adds to the
    environment.

    Raises:
        ConfigError: an app's framework is missing (``app_command`` says which extra),
            or an interactive job's (``interactive_command`` says which).
    """
    from conveyor.definitions.interactive import Interactive

    if isinstance(workload, Interactive):
        from conveyor.execution.interactive_launch import interactive_command

        launch = interactive_command(workload, origin, port, python)
        return list(launch.argv), dict(launch.env)
    if isinstance(workload, App):
        from conveyor.execution.app_launch import app_command

        launch = app_command(workload, port, workload.base_path, python, root=_root(origin))
        return list(launch.argv), dict(launch.env)
    argv = [python, "-m", "conveyor.execution.workload_launch"]
    for key in ("file", "module", "folder"):
        if origin.get(key):
            argv += [f"--{key}", str(origin[key])]
            break
    else:
        raise WorkspaceError(f"cannot tell where to load workload {workload.name!r} from")
    return [*argv, workload.name], {}


def _root(origin: dict[str, Any]) -> Path | None:
    """The workspace's folder, where an app's relative files and modules are."""
    if origin.get("file"):
        return Path(origin["file"]).parent
    if origin.get("folder"):
        return Path(origin["folder"])
    return None


def start_workload(
    workload: Workload,
    origin: dict[str, Any],
    home: Path | None,
    port: int | None = None,
    python: str = sys.executable,
    *,
    env: Mapping[str, str] | None = None,
    output: tuple[Path, Path] | None = None,
) -> Started:
    """Start ``workload`` in a session of its own on a free loopback port.

    Its environment is this process's, its ``env_vars``, ``env``, ``PORT``,
    ``CONVEYOR_BASE_PATH`` (``/apps/<name>``) and ``CONVEYOR_WORKLOAD``. Its
    stdout and stderr go to ``output`` (two files), by default the workload's
    logs (``log_path``). The caller reaps the process (``poll()``); it outlives
    the caller otherwise.
    """
    port = free_port() if port is None else port
    argv, extra = command(workload, origin, port, python)
    environment = {
        **os.environ,
        **workload.env_vars,
        **(env or {}),
        **extra,
        "PORT": str(port),
        "CONVEYOR_BASE_PATH": workload.base_path,
        "CONVEYOR_WORKLOAD": workload.name,
        "PYTHONUNBUFFERED": "1",
    }
    if output is None:
        folder = log_dir(home, workload.name)
        folder.mkdir(parents=True, exist_ok=True)
        output = (folder / "stdout.log", folder / "stderr.log")
    with open(output[0], "ab") as out, open(output[1], "ab") as err:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            env=environment,
        )
    _children[process.pid] = process
    return Started(pid=process.pid, port=port, process=process)


def reap() -> None:
    """Collect the workloads this process started that have ended (whoever watches them)."""
    for pid, process in list(_children.items()):
        if process.poll() is not None:
            _children.pop(pid, None)


def rotate(path: Path, max_bytes: int = LOG_MAX_BYTES, keep: int = LOG_KEEP) -> bool:
    """Rotate ``path`` if it is over ``max_bytes``: ``.1`` ... ``.<keep>`` take the older
    output, and the file is emptied in place (the process appending to it writes on at
    its start). Lines written between the copy and the truncation are lost."""
    try:
        if path.stat().st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    for i in range(keep - 1, 0, -1):
        older = path.with_name(f"{path.name}.{i}")
        if older.exists():
            older.replace(path.with_name(f"{path.name}.{i + 1}"))
    if keep > 0:
        shutil.copyfile(path, path.with_name(f"{path.name}.1"))
    with open(path, "r+b") as f:
        f.truncate(0)
    return True


def tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of ``path`` (with the rotated file before it when the
    current one is short); ``[]`` if there is none."""
    if lines <= 0:
        return []
    out: deque[str] = deque(maxlen=lines)
    for p in (path.with_name(f"{path.name}.1"), path):
        try:
            with open(p, encoding="utf-8", errors="replace") as f:
                for line in f:
                    out.append(line.rstrip("\n"))
        except FileNotFoundError:
            continue
    return list(out)


def workload_log(instance: Instance, record: WorkloadRecord, stream: str, lines: int) -> list[str]:
    """The last ``lines`` lines workload ``record`` wrote to ``stream``: an interactive
    job's are its current (or last) run's, any other's its log files'."""
    if record.kind == "interactive" and record.run_id is not None:
        text = instance.log_store.read(record.run_id, INTERACTIVE_TASK, stream=stream, lines=lines)
        return text.splitlines()
    return tail(log_path(instance.home, record.name, stream), lines)


def same_process(pid: int, started: float | None) -> psutil.Process | None:
    """The live process ``pid`` if it is the one that started at ``started`` (a pid
    reused by another process is not it); None otherwise."""
    try:
        proc = psutil.Process(pid)
        if started is not None and abs(proc.create_time() - started) > 0.5:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return proc


def started_at(pid: int) -> float | None:
    """When process ``pid`` started (``psutil``'s ``create_time``), None if it is gone."""
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def tree_rss(proc: psutil.Process) -> int:
    """The resident memory of ``proc`` and all its descendants, in bytes."""
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def signal_group(pid: int, sig: int) -> bool:
    """Send ``sig`` to the process group ``pid`` leads (a workload's session); False if
    it is gone."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def resolve(workload: Workload) -> Any:
    """The object ``workload.entrypoint`` names (imported for ``"module:attr"``)."""
    entry = workload.entrypoint
    if not isinstance(entry, str):
        return entry
    module_name, _, attr = entry.partition(":")
    try:
        value: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as e:
        raise ConfigError(
            f"{type(workload).__name__}({workload.name!r}): entrypoint {entry!r} cannot be "
            f"loaded: {e}"
        ) from e
    return value


def serve(workload: Workload, port: int) -> None:
    """Run ``workload`` in this process until it returns: an Excel add-in under
    Conveyor's add-in server, anything else as ``entrypoint(port)``."""
    from conveyor.definitions.addin import ExcelAddin

    if isinstance(workload, ExcelAddin):
        from conveyor.execution.addin_server import serve_addin

        serve_addin(workload, port)
        return
    entry = resolve(workload)
    if not callable(entry):
        raise ConfigError(
            f"{type(workload).__name__}({workload.name!r}): entrypoint {workload.entrypoint!r} "
            f"is not callable"
        )
    entry(port)


def launch_args(prog: str, argv: list[str] | None) -> tuple[dict[str, str], str, int] | None:
    """What a launcher's command line names: where the workspace is (``--file``,
    ``--module`` or ``--folder``), the workload, and the port from ``PORT``; None (with
    the reason on stderr) when ``PORT`` is not a port."""
    parser = argparse.ArgumentParser(prog=f"conveyor.execution.{prog}")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--file")
    where.add_argument("--module")
    where.add_argument("--folder")
    parser.add_argument("name")
    args = parser.parse_args(argv)
    origin = {k: v for k in ("file", "module", "folder") if (v := getattr(args, k))}
    try:
        port = int(os.environ["PORT"])
    except (KeyError, ValueError):
        print(f"{prog}: PORT must be set to the port to serve on", file=sys.stderr)
        return None
    return origin, str(args.name), port


def main(argv: list[str] | None = None) -> int:
    """``python -m conveyor.execution.workload_launch (--file F|--module M|--folder D) NAME``."""
    parsed = launch_args("workload_launch", argv)
    if parsed is None:
        return 2
    origin, name, port = parsed
    from conveyor.workspace import load

    try:
        workload = load(origin).workload(name)
        serve(workload, port)
    except KeyboardInterrupt:
        return 130
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
