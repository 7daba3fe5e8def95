"""Virtual environments for versions that carry requirements: one per requirements hash
per machine, built the first time a run needs it.

A version deployed with requirements (``pkg==1.0`` lines) runs in a virtual environment
of its own, so that two versions needing different releases of a package run side by
side. The environment is built from the running interpreter, without pip, and sees the
packages of the interpreter that built it (Conveyor and its dependencies) through a
``.pth`` file placed after its own site-packages: what the requirements install shadows
the base's packages, and nothing else is installed twice. It is built in place under a
lock file (so that two workers of one machine build it once) and is ready only once its
marker is written last; a build that fails, times out or is interrupted leaves nothing
that a later run would use. It is built in place rather than renamed into place because
the scripts pip installs name their interpreter by its absolute path.

A run worker whose run's version has requirements builds (or waits for) the environment,
recording ``environment_building`` and ``environment_ready`` events and the installer's
output as the run's logs under the pseudo-task ``environment``, then replaces itself
(``os.execv``) with the same worker in the environment's interpreter.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import site
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from conveyor.errors import ConfigError, ExecutionError
from conveyor.storage.instance import Instance
from conveyor.storage.logs import LogStore, live_file

# The run's pseudo-task whose logs are the installer's output.
LOG_KEY = "environment"
TIMEOUT_VAR = "CONVEYOR_VENV_TIMEOUT"
DEFAULT_TIMEOUT = 900.0
# Written last: an environment without it is not built (yet, or any more).
READY = ".conveyor-ready"
# The installer's last lines quoted when a build fails.
TAIL = 40
_DIGEST = re.compile(r"[0-9a-f]{8,128}")


def venv_timeout(value: str | None = None) -> float:
    """The longest a build may take, in seconds: ``CONVEYOR_VENV_TIMEOUT`` (900 by default),
    or ``value``.

    Raises:
        ConfigError: not a positive number of seconds.
    """
    text = os.environ.get(TIMEOUT_VAR, "") if value is None else value
    if not text.strip():
        return DEFAULT_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds == float("inf"):
        raise ConfigError(
            f"{TIMEOUT_VAR}={text!r}: the longest a virtual environment may take to build is "
            f"a positive number of seconds; write e.g. {TIMEOUT_VAR}=900"
        )
    return seconds


def venvs_root(instance: Instance) -> Path:
    """The folder of this machine's environments: ``<CONVEYOR_HOME>/cache/venvs``, or a
    folder in the temp folder for an instance without a home."""
    if instance.home is not None:
        return Path(instance.home) / "cache" / "venvs"
    return Path(tempfile.gettempdir()) / "conveyor-venvs"


def venv_python(root: Path, digest: str) -> Path:
    """The interpreter of the environment of requirements ``digest`` (built or not)."""
    return root / _checked(digest) / "bin" / "python"


def is_ready(root: Path, digest: str) -> bool:
    """Whether the environment of ``digest`` is built, by the interpreter running now."""
    try:
        marker = json.loads((root / _checked(digest) / READY).read_text())
    except (OSError, ValueError):
        return False
    return bool(marker == _base())


def running_in(root: Path, digest: str) -> bool:
    """Whether this process is the environment's interpreter."""
    here = Path(sys.prefix).resolve()
    return here == (root / _checked(digest)).resolve()


def ensure_venv(
    requirements: str,
    digest: str,
    *,
    root: Path,
    log: Callable[[str], None],
    timeout: float | None = None,
) -> Path:
    """The interpreter of the environment of ``requirements`` (whose hash is ``digest``),
    built under ``root`` first if this machine has not built it.

    Args:
        requirements: a requirements file's text.
        digest: the requirements' hash (hex), naming the environment's folder.
        root: the folder of the environments (``venvs_root``).
        log: called with each line of the installer's output (and of waiting for a build
            by another process).
        timeout: the longest the build (and the wait for another's) may take, in seconds;
            ``venv_timeout()`` by default.

    Raises:
        ConfigError: ``digest`` is not a hex hash.
        ExecutionError: the build failed (quoting the installer's last lines) or took
            longer than the timeout; nothing of it is left.
    """
    python = venv_python(root, digest)
    if is_ready(root, digest):
        return python
    limit = venv_timeout() if timeout is None else timeout
    deadline = time.monotonic() + limit
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f"{digest}.lock", deadline, log, limit):
        if is_ready(root, digest):
            log("built meanwhile by another process")
            return python
        target = root / digest
        # A build interrupted (killed) or made by another interpreter: start afresh.
        shutil.rmtree(target, ignore_errors=True)
        try:
            _build(target, requirements, deadline, limit, log)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
    return python


def _checked(digest: str) -> str:
    if not _DIGEST.fullmatch(digest):
        raise ConfigError(
            f"requirements hash {digest!r}: expected 8-128 lower-case hex digits (the "
            f"hash recorded with the version's requirements)"
        )
    return digest


def _base() -> dict[str, Any]:
    # What an environment depends on of the interpreter that built it.
    return {"python": sys.version, "base": sys.prefix, "site": site.getsitepackages()}


@contextlib.contextmanager
def _locked(
    path: Path, deadline: float, log: Callable[[str], None], limit: float
) -> Iterator[None]:
    with open(path, "a+b") as f:
        said = False
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ExecutionError(
                        f"another process has been building the virtual environment "
                        f"{path.stem[:12]} for over {limit:g}s; wait for it, or raise "
                        f"{TIMEOUT_VAR}"
                    ) from None
                if not said:
                    log(f"waiting for another process building the environment ({path})")
                    said = True
                time.sleep(0.2)  # flock has no timeout of its own
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _build(
    target: Path, requirements: str, deadline: float, limit: float, log: Callable[[str], None]
) -> None:
    log(f"creating a virtual environment in {target} from {sys.executable}")
    _command(
        [sys.executable, "-m", "venv", "--without-pip", str(target)],
        deadline,
        limit,
        log,
        "creating the virtual environment",
    )
    python = target / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=max(1.0, deadline - time.monotonic()),
    ).stdout.strip()
    # Processed after the environment's own site-packages: its packages come first.
    lines = [f"import site; site.addsitedir({d!r})" for d in site.getsitepackages()]
    (Path(purelib) / "_conveyor_base.pth").write_text("\n".join(lines) + "\n")
    req_file = target / "requirements.txt"
    req_file.write_text(requirements)
    uv = shutil.which("uv")
    if uv is not None:
        install = [uv, "pip", "install", "--python", str(python), "-r", str(req_file)]
    else:
        install = [str(python), "-m", "pip", "install", "--no-input", "-r", str(req_file)]
    log("$ " + " ".join(install))
    _command(install, deadline, limit, log, "installing the requirements")
    (target / READY).write_text(json.dumps(_base()))


def _command(
    args: list[str], deadline: float, limit: float, log: Callable[[str], None], what: str
) -> None:
    tail: deque[str] = deque(maxlen=TAIL)
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
    )
    timer = threading.Timer(max(0.0, deadline - time.monotonic()), proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        for raw in _lines(proc.stdout):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            tail.append(line)
            log(line)
        code = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    if time.monotonic() >= deadline and code != 0:
        raise ExecutionError(
            f"{what} took longer than {limit:g}s and was stopped; raise {TIMEOUT_VAR} or "
            f"make the requirements quicker to install. Its last lines:\n" + "\n".join(tail)
        )
    if code != 0:
        raise ExecutionError(
            f"{what} failed ({Path(args[0]).name} exited {code}); fix the version's "
            f"requirements and deploy again. Its last lines:\n" + "\n".join(tail)
        )


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    yield from iter(stream.readline, b"")


# -- runs --------------------------------------------------------------------------------------


def venv_for_run(instance: Instance, run: Any) -> Path | None:
    """The interpreter run ``run`` must run in, built first if need be; ``None`` when it
    runs here (its version has no requirements, or this process is its environment).

    Building is recorded with the run: an ``environment_building`` event, the installer's
    output as the logs of the pseudo-task ``environment`` (attempt = the run's start),
    and an ``environment_ready`` event with the time it took.

    Raises:
        ExecutionError: the environment could not be built (see ``ensure_venv``).
    """
    if run.deployed_version is None:
        return None
    version = instance.deployments.version(run.deployed_version)
    digest = version.requirements_hash
    if digest is None or not version.requirements:
        return None
    root = venvs_root(instance)
    if running_in(root, digest):
        return None
    events = instance.event_store
    if is_ready(root, digest):
        python = venv_python(root, digest)
        events.add(
            run.id, "environment_ready", f"requirements {digest[:12]}: {python.parent.parent}"
        )
        return python
    events.add(
        run.id,
        "environment_building",
        f"building the virtual environment of version {version.number}'s requirements "
        f"({digest[:12]}); its output is in the logs of '{LOG_KEY}'",
    )
    began = time.monotonic()
    with _RunLog(instance, run.id, run.token) as out, _Heartbeat(instance, run.id):
        try:
            python = ensure_venv(version.requirements, digest, root=root, log=out.line)
        except ExecutionError as e:
            out.line(str(e))
            raise
    took = time.monotonic() - began
    events.add(
        run.id,
        "environment_ready",
        f"requirements {digest[:12]}: built in {took:.1f}s at {python.parent.parent}",
    )
    return python


class _RunLog:
    """The installer's output as the logs of the run's pseudo-task ``environment``: a live
    file while it builds, then stored like a task's output."""

    def __init__(self, instance: Instance, run_id: str, attempt: int) -> None:
        self.instance = instance
        self.run_id = run_id
        self.attempt = attempt
        self.buffer = bytearray()
        self.file: IO[bytes] | None = None
        self.path: Path | None = None

    def __enter__(self) -> _RunLog:
        directory = self.instance.log_store.live_dir(self.run_id)
        if directory is not None:
            self.path = live_file(directory, LOG_KEY, self.attempt, "stdout")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file = open(self.path, "wb")
        return self

    def line(self, text: str) -> None:
        data = (text + "\n").encode()
        self.buffer += data
        if self.file is not None:
            self.file.write(data)
            self.file.flush()

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()
        store = self.instance.log_store
        rows = [store.put(self.run_id, LOG_KEY, self.attempt, "stdout", bytes(self.buffer))]
        with self.instance.db.write() as conn:
            LogStore.write(conn, rows)
        store.stored(rows)


class _Heartbeat:
    """Beats the starting run's heartbeat while its environment builds, so that the judge
    does not take a long build for a start that never came (see ``scheduler.monitor``)."""

    def __init__(self, instance: Instance, run_id: str, every: float = 5.0) -> None:
        self.instance = instance
        self.run_id = run_id
        self.every = every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="venv-heartbeat", daemon=True)

    def _beat(self) -> None:
        while not self.stop.wait(self.every):
            with contextlib.suppress(Exception):  # the next beat, or the judge, will tell
                self.instance.run_store.heartbeat(self.run_id)

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
