"""Config injection from providers, as dlt does it: environment variables, then
``secrets.toml``, then ``config.toml``, each with profile files layered on top.

A run's config is what the user passed, and each field it leaves out is looked
up here before the field's default applies. A field ``key`` of job ``name`` in
section ``section`` is looked up under, most specific first::

    jobs.<section>.<name>.<task>.<key>   (a workflow task's config only)
    jobs.<section>.<name>.<key>
    jobs.<section>.<key>
    jobs.<name>.<key>
    jobs.<key>
    <key>

in each provider in turn, highest first, and the first value found wins (so an
environment variable at any level beats a TOML file at any level, as in dlt).
In the environment a key is its parts in upper case joined by ``__``
(``JOBS__INGEST__INGEST__API_KEY``); its value is parsed as JSON, else as a
TOML literal, else kept as text (always text for a ``str`` or ``SecretStr``
field).

The files sit in a ``.conveyor/`` folder: the nearest one at or above the
folder of the file that defines the job (the workspace's folder, as dlt's
``.dlt/`` sits beside the code), then ``./.conveyor/`` in the current directory
when that is another folder. The profile (the job's ``require={"profile": ...}``,
else ``CONVEYOR_PROFILE``) adds ``<profile>.secrets.toml`` over
``secrets.toml`` and ``<profile>.config.toml`` over ``config.toml``. The files
are read on each lookup, so an edit takes effect on the next run.

Nothing found here is stored with the run: the stored config stays what the
user gave, a run's process looks the values up again, and every value taken
from a secrets file (or from the environment for a ``SecretStr`` field) is
added to the run's redactor.
"""

from __future__ import annotations

import inspect
import json
import os
import tomllib
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr, ValidationError

from conveyor.errors import ConfigError

ENV_PROFILE = "CONVEYOR_PROFILE"
# Variables the OS and the shell set in every process: a field named ``path`` or
# ``user`` must not take $PATH or $USER by the bare-key rule, so these names are
# not read as bare keys (``JOBS__PATH`` and longer keys still are).
OS_NAMES = frozenset(
    {
        "PATH", "HOME", "USER", "USERNAME", "LOGNAME", "SHELL", "PWD", "OLDPWD", "TERM",
        "LANG", "HOSTNAME", "TMPDIR", "SHLVL", "DISPLAY", "MAIL", "EDITOR", "PAGER",
    }
)  # fmt: skip
FOLDER = ".conveyor"
ROOT = "jobs"


@dataclass(frozen=True, slots=True)
class Found:
    """A value a provider holds, and where it was (``env JOBS__A__B``)."""

    value: Any
    source: str
    secret: bool


class Provider(Protocol):
    """A place config values are read from."""

    def where(self, path: Sequence[str]) -> str | None:
        """How ``path`` is named in this provider, for messages (``None``: not read)."""
        ...

    def get(self, path: Sequence[str], text: bool) -> Found | None:
        """The value at ``path``, if this provider holds one (``text``: keep it as text)."""
        ...


@dataclass(frozen=True, slots=True)
class EnvProvider:
    """Environment variables: ``JOBS__SECTION__JOB__KEY``."""

    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)

    @staticmethod
    def name(path: Sequence[str]) -> str:
        return "__".join(p.upper() for p in path)

    def where(self, path: Sequence[str]) -> str | None:
        name = self.name(path)
        return None if len(path) == 1 and name in OS_NAMES else f"env {name}"

    def get(self, path: Sequence[str], text: bool) -> Found | None:
        where = self.where(path)
        raw = None if where is None else self.environ.get(self.name(path))
        if raw is None or where is None:
            return None
        return Found(raw if text else parse_env_value(raw), where, secret=False)


@dataclass(frozen=True, slots=True)
class TomlProvider:
    """One TOML file (``secrets.toml``, ``config.toml`` or a profile's)."""

    path: Path
    data: Mapping[str, Any]
    secret: bool

    @classmethod
    def read(cls, path: Path, secret: bool) -> TomlProvider:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"{path}: cannot be read ({e.strerror}); fix or remove it") from e
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(
                f"{path}: not valid TOML: {e}; fix that line (config values are read from "
                f"this file)"
            ) from None
        return cls(path, data, secret)

    def where(self, path: Sequence[str]) -> str:
        return f"{self.path.name} {'.'.join(path)}"

    def get(self, path: Sequence[str], text: bool) -> Found | None:
        node: Any = self.data
        for part in path:
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return Found(node, f"{self.where(path)} ({self.path})", self.secret)


def parse_env_value(raw: str) -> Any:
    """An environment value as dlt reads it: JSON, else a TOML literal, else the text."""
    try:
        return json.loads(raw)
    except ValueError:
        pass
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _members(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        return tuple(a for a in get_args(annotation) if a is not type(None))
    return (annotation,)


def wants_text(annotation: Any) -> bool:
    """Whether a field takes text only (``str``, ``SecretStr``), so an env value stays text."""
    members = _members(annotation)
    return all(m in (str, SecretStr) for m in members)


def wants_mapping(annotation: Any) -> bool:
    """Whether a field can take a table (a model or a mapping), not only a plain value."""
    for m in _members(annotation):
        origin = get_origin(m) or m
        if m is Any or origin in (dict, Mapping):
            return True
        if isinstance(origin, type) and issubclass(origin, BaseModel | Mapping):
            return True
    return False


def config_folders(job_file: str | None, cwd: Path | None = None) -> list[Path]:
    """The ``.conveyor/`` folders a job's config files are read from, first wins."""
    found: list[Path] = []
    if job_file:
        start = Path(job_file).resolve().parent
        for folder in (start, *start.parents):
            if (folder / FOLDER).is_dir():
                found.append(folder / FOLDER)
                break
    here = ((cwd or Path.cwd()) / FOLDER).resolve()
    if here.is_dir() and here not in found:
        found.append(here)
    return found


def check_profile(profile: object, where: str) -> str | None:
    """A profile name, checked: it becomes part of a file name."""
    if profile is None or profile == "":
        return None
    if not isinstance(profile, str) or not profile.replace("-", "_").isidentifier():
        raise ConfigError(
            f"{where}: profile {profile!r} must be a name such as 'dev' or 'prod' "
            f"(it names the files <profile>.config.toml and <profile>.secrets.toml)"
        )
    return profile


@dataclass(slots=True)
class Filled:
    """What ``ConfigSources.fill`` made: the model, where each field came from, and the
    secret values to redact."""

    model: BaseModel
    sources: dict[str, str] = field(default_factory=dict)
    secrets: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class ConfigSources:
    """The providers of one job's config, and dlt's key lookup over them."""

    job: str
    section: str
    providers: tuple[Provider, ...]
    folders: tuple[Path, ...] = ()
    profile: str | None = None

    def paths(self, key: str, task: str | None = None) -> list[tuple[str, ...]]:
        """The keys tried for field ``key``, most specific first."""
        s, n = self.section, self.job
        shapes = [(ROOT, s, n, key), (ROOT, s, key), (ROOT, n, key), (ROOT, key), (key,)]
        if task is not None:
            shapes.insert(0, (ROOT, s, n, task, key))
        out: list[tuple[str, ...]] = []
        for shape in shapes:
            if shape not in out:  # the section may be the job's name
                out.append(shape)
        return out

    def lookup(self, key: str, annotation: Any, task: str | None = None) -> Found | None:
        """The first value of field ``key``: providers in order, each over every key shape."""
        text = wants_text(annotation)
        mapping = wants_mapping(annotation)
        for provider in self.providers:
            for path in self.paths(key, task):
                found = provider.get(path, text)
                # A table found where a plain value is wanted is a deeper section
                # (jobs.<section> when the key is the job's name), not the value.
                if found is not None and (mapping or not isinstance(found.value, Mapping)):
                    return found
        return None

    def tried(self, key: str, task: str | None = None) -> list[str]:
        """Every key tried for field ``key``, named by provider, in lookup order."""
        named = (p.where(path) for p in self.providers for path in self.paths(key, task))
        return [n for n in named if n is not None]

    def fill(
        self,
        model: type[BaseModel],
        given: Any,
        prefix: str,
        task: str | None = None,
    ) -> Filled:
        """Validate ``given`` as ``model`` with each field it lacks taken from the providers.

        Raises:
            ConfigError: a required field is nowhere (naming every key tried), or a
                value is invalid (naming where it came from).
        """
        if isinstance(given, model):
            return Filled(given)
        data = {} if given is None else given
        if not isinstance(data, dict):
            raise ConfigError(f"{prefix}: expected a mapping of fields, got {type(data).__name__}")
        merged = dict(data)
        sources: dict[str, str] = {}
        secrets: set[str] = set()
        problems: list[str] = []
        for name, info in model.model_fields.items():
            if name in data or (info.alias is not None and info.alias in data):
                continue
            found = self.lookup(name, info.annotation, task)
            if found is not None:
                merged[name] = found.value
                sources[name] = found.source
                if (found.secret or _is_secret(info.annotation)) and isinstance(found.value, str):
                    secrets.add(found.value)
            elif info.is_required():
                problems.append(self._missing(prefix, name, task))
        try:
            filled = model.model_validate(merged)
        except ValidationError as e:
            problems.extend(_invalid(prefix, e, sources, skip_missing=bool(problems)))
        if problems:
            raise ConfigError("; ".join(problems))
        return Filled(filled, sources, secrets)

    def _missing(self, prefix: str, name: str, task: str | None) -> str:
        owner = f"job {self.job!r}" + (f" (task {task!r})" if task is not None else "")
        places = (
            " or ".join(f"{f}/secrets.toml, {f}/config.toml" for f in self.folders)
            if self.folders
            else f"./{FOLDER}/secrets.toml or ./{FOLDER}/config.toml"
        )
        return (
            f"{prefix}.{name}: field required: config field {name!r} of {owner} is missing: "
            f"tried {', '.join(self.tried(name, task))}; set one of them (files: {places}), "
            f"or give it in the run config"
        )


def _is_secret(annotation: Any) -> bool:
    return any(m is SecretStr for m in _members(annotation))


def _invalid(
    prefix: str, error: ValidationError, sources: Mapping[str, str], skip_missing: bool
) -> list[str]:
    lines = []
    for err in error.errors():
        if skip_missing and err["type"] == "missing":
            continue  # already said, with the keys tried
        loc = [str(p) for p in err["loc"]]
        path = ".".join([prefix, *loc]) if prefix else ".".join(loc)
        msg = err["msg"]
        msg = msg[:1].lower() + msg[1:]
        if err["type"] == "extra_forbidden":
            msg = "unknown field; remove it or check its spelling"
        source = sources.get(loc[0]) if loc else None
        if source is not None:
            msg += f" (the value comes from {source}; fix it there)"
        lines.append(f"{path or '(config)'}: {msg}")
    return lines


def job_file(fn: Any) -> str | None:
    """The file that defines ``fn``, if it has one."""
    try:
        return inspect.getsourcefile(fn)
    except TypeError:
        return None


def sources_for(
    job_name: str,
    section: str,
    profile: object,
    file: str | None,
    environ: Mapping[str, str] | None = None,
) -> ConfigSources:
    """The providers of a job's config: env, then each folder's secrets, then its config,
    each profile file over its base file."""
    env = os.environ if environ is None else environ
    where = f"job {job_name!r}"
    name = check_profile(profile, f"{where}: require") or check_profile(
        env.get(ENV_PROFILE), f"{where}: {ENV_PROFILE}"
    )
    folders = config_folders(file)
    providers: list[Provider] = [EnvProvider(env)]
    for kind in ("secrets", "config"):
        for folder in folders:
            names = ([f"{name}.{kind}.toml"] if name else []) + [f"{kind}.toml"]
            for file_name in names:
                path = folder / file_name
                if path.is_file():
                    providers.append(TomlProvider.read(path, secret=kind == "secrets"))
    return ConfigSources(job_name, section, tuple(providers), tuple(folders), name)
