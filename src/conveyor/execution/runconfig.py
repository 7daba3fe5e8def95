"""Validating a run's config against a job before anything runs.

Shape: ``{"tasks": {key: {"config": {...}}}, "config": {...}, "resources": {key: {...}}}``.
Every error names the value's full path, e.g.
``tasks.extract.config.limit: input should be a valid integer``.

A field the run config leaves out is looked up in the job's config providers
(``execution.config_providers``: environment, ``secrets.toml``, ``config.toml``)
before its default applies; what they supply is not stored with the run (a
run's process looks it up again), and ``provided`` says where each came from.

The config may be a ``RunConfig`` and its values ``Config`` or ``Resource``
instances (each checked to be of the class its place takes); it is laid over
the job's ``config=``, field by field, and only the run's own part is stored,
as plain JSON data.

A value may be a reference ``Secret("name")``: validated as that text here, and
replaced by the secret's value only when the run starts (``execution.secrets``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from conveyor.definitions.config import (
    RUN_CONFIG_KEYS,
    as_config_dict,
    check_instance,
    fields_of,
    merged,
    plain_data,
    validate_model,
)
from conveyor.definitions.job import Job
from conveyor.definitions.params import config_param
from conveyor.definitions.resources import Resource
from conveyor.definitions.task import Task
from conveyor.errors import ConfigError
from conveyor.execution.config_providers import ConfigSources, job_file, sources_for
from conveyor.execution.secrets import mask_plain, plain_values, resolve
from conveyor.storage.redact import Redactor
from conveyor.workspace import WORKSPACE_PREFIX

TOP_KEYS = RUN_CONFIG_KEYS


@dataclass(slots=True)
class RunConfig:
    """A validated run config.

    ``raw`` is what a run stores: the config as given, but for the plain values of
    ``SecretStr`` fields, which read ``***``. ``given`` is the config as given, its
    references resolved once the run starts (``execution.secrets.resolve_run``,
    which also sets ``lookup`` and fills ``redactor`` with the run's secret values).
    ``provided`` maps each config field the providers filled (its full path, as
    ``tasks.extract.config.url``) to where its value came from.
    """

    raw: dict[str, Any]
    task_configs: dict[str, BaseModel] = field(default_factory=dict)
    job_config: BaseModel | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    given: dict[str, Any] = field(default_factory=dict)
    redactor: Redactor = field(default_factory=Redactor)
    lookup: Callable[[str], str] | None = None
    sources: ConfigSources | None = None
    provided: dict[str, str] = field(default_factory=dict)

    def fill(
        self, model: type[BaseModel], given: Any, prefix: str, task: str | None = None
    ) -> BaseModel:
        """``given`` validated as ``model``, the fields it lacks taken from the providers."""
        if self.sources is None:
            return validate_model(model, given, prefix)
        filled = self.sources.fill(model, given, prefix, task)
        for name, source in filled.sources.items():
            self.provided[f"{prefix}.{name}"] = source
        self.redactor.add(filled.secrets)
        return filled.model

    def task_config(self, key: str, task: Task[Any]) -> BaseModel | None:
        """The config of task ``key``; validated now if the key was not known up front."""
        if key in self.task_configs:
            return self.task_configs[key]
        p = config_param(task.params)
        if p is None:
            return None
        entry = _task_entry(self.given.get("tasks", {}), key)
        model = self.fill(p.annotation, entry, f"tasks.{key}.config", key)
        self.redactor.add(plain_values(model))
        if self.lookup is not None:
            model = resolve(model, self.lookup, f"tasks.{key}.config")
        self.task_configs[key] = model
        return model


def _mapping(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__}")
    return dict(value)


def _task_entry(tasks: Mapping[str, Any], key: str) -> Any:
    entry = _mapping(tasks.get(key), f"tasks.{key}")
    extra = sorted(set(entry) - {"config"})
    if extra:
        raise ConfigError(f"tasks.{key}.{extra[0]}: unknown key; a task entry holds only 'config'")
    return entry.get("config")


def validate_run_config(
    job: Job,
    run_config: Mapping[str, Any] | None,
    selected: Iterable[str] | None,
    partition: str | None = None,
) -> RunConfig:
    """Check ``run_config`` against ``job`` (and the selected task keys of a workflow).

    ``run_config`` is a dict or a ``RunConfig``, its values dicts or ``Config``
    instances; it is laid over the job's ``config=`` field by field, and only it
    is stored with the run (``raw``). With ``config=partition_config(fn)``, the
    defaults are ``fn(partition)``, laid over the job's other defaults. With
    ``config=`` a ``ConfigMapping``, ``run_config`` is in the mapping's simplified
    schema: it is checked there, mapped, and stored as given.
    """
    simplified: dict[str, Any] | None = None
    if job.config_mapping is not None:
        model = job.config_mapping.validate(run_config)
        simplified = fields_of(model)
        run_config = job.config_mapping.apply(model)
    given = as_config_dict(run_config, "run config")
    default = job.default_config
    if job.partition_config is not None and partition is not None:
        per_key = as_config_dict(
            job.partition_config.config_for(partition), f"{job.partition_config!r}"
        )
        default = merged(fields_of(default), fields_of(per_key))
    check_instances(job, default, "config=")
    check_instances(job, given, "run config")
    own = fields_of(given)
    # What the run stores is its own config: the job's defaults are the job's, looked up
    # again by the run's process (as the providers are), and a secret among them is
    # never stored.
    raw = merged(fields_of(default), own)
    out = RunConfig(raw=own, given=raw, sources=job_sources(job))
    problems: list[str] = []
    tasks = _mapping(raw.get("tasks"), "tasks")
    if job.graph is not None:
        for key in tasks:
            if key not in job.graph:
                problems.append(
                    f"tasks.{key}: no task {key!r} in job {job.name!r} "
                    f"(tasks: {', '.join(job.graph.nodes)})"
                )
        for key in selected if selected is not None else job.graph.nodes:
            node = job.graph.nodes[key]
            p = config_param(node.task.params)
            try:
                entry = _task_entry(tasks, key)
                if p is None:
                    if entry:
                        problems.append(
                            f"tasks.{key}.config: task {node.task.name!r} takes no config; "
                            f"annotate a parameter with a Config subclass to give it some"
                        )
                    continue
                out.task_configs[key] = out.fill(p.annotation, entry, f"tasks.{key}.config", key)
            except ConfigError as e:
                problems.append(str(e))
        if raw.get("config"):
            problems.append(
                f"config: workflow {job.name!r} takes config per task, under "
                f"tasks.<task key>.config"
            )
    else:
        for key in tasks:
            _task_entry(tasks, key)
        if job.config_model is not None:
            out.job_config = out.fill(job.config_model, raw.get("config"), "config")
        elif raw.get("config"):
            raise ConfigError(
                f"config: job {job.name!r} takes no config; give its function parameters "
                f"to make some"
            )
    try:
        out.resources = _resources(job, _mapping(raw.get("resources"), "resources"))
    except ConfigError as e:
        problems.append(str(e))
    if problems:
        # Every problem at once, so that one edit of the config can fix them all.
        raise ConfigError("; ".join(problems))
    plain = plain_values([out.task_configs, out.job_config, out.resources])
    out.raw = mask_plain(plain_data(own if simplified is None else simplified), plain)
    out.redactor.add(plain)
    return out


def check_instances(job: Job, cfg: Mapping[str, Any], where: str) -> None:
    """Check each model instance in run config ``cfg`` is of the class its place takes.

    Raises:
        ConfigError: an instance of another class, or an object where resource fields go.
    """
    tasks = cfg.get("tasks")
    if isinstance(tasks, Mapping) and job.graph is not None:
        for key, entry in tasks.items():
            value = entry.get("config") if isinstance(entry, Mapping) else None
            node = job.graph.nodes.get(key)
            p = None if node is None else config_param(node.task.params)
            if p is not None and isinstance(value, BaseModel):
                check_instance(p.annotation, value, f"{where}: tasks.{key}.config")
    if job.config_model is not None and isinstance(cfg.get("config"), BaseModel):
        check_instance(job.config_model, cfg["config"], f"{where}: config")
    resources = cfg.get("resources")
    for key, value in (resources if isinstance(resources, Mapping) else {}).items():
        current = job.resources.get(key)
        if isinstance(value, BaseModel) and isinstance(current, BaseModel):
            check_instance(type(current), value, f"{where}: resources.{key}")
        elif value is not None and not isinstance(value, Mapping | BaseModel):
            raise ConfigError(
                f"{where}: resources.{key}: run config holds a resource's fields, not a "
                f"{type(value).__name__}; pass the object itself with "
                f"job.run(resources={{{key!r}: ...}}) or job.to_job(resources=...)"
            )


def job_sources(job: Job) -> ConfigSources:
    """The config providers of ``job``: its section (``section=``, else its module's last
    name), its profile (``require={"profile": ...}``, else the environment a deployed job
    runs in, else ``CONVEYOR_PROFILE``) and the ``.conveyor/`` folders by the file that
    defines it. A deployed job's keys use its name in the code (``etl``, not ``prod.etl``)."""
    section = getattr(job.options, "section", None) or job.fn.__module__.rsplit(".", 1)[-1]
    # A workspace file is imported under a prefixed name; its section is the file's name.
    section = section.removeprefix(WORKSPACE_PREFIX)
    profile = job.require.get("profile") or job.environment
    return sources_for(job.base_name, section, profile, job_file(job.fn))


def _resources(job: Job, overrides: dict[str, Any]) -> dict[str, Any]:
    resources = dict(job.resources)
    for key, values in overrides.items():
        if key not in resources:
            known = ", ".join(resources) or "none"
            raise ConfigError(
                f"resources.{key}: job {job.name!r} has no resource {key!r} (resources: {known})"
            )
        current = resources[key]
        if not isinstance(current, Resource):
            raise ConfigError(
                f"resources.{key}: {type(current).__name__} is not a Resource, so its fields "
                f"cannot be set from run config"
            )
        fields = _mapping(values, f"resources.{key}")
        resources[key] = validate_model(
            type(current), {**current.model_dump(), **fields}, f"resources.{key}"
        )
    return resources
