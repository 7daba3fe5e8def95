"""Typed run config: the ``Config`` base, ``RunConfig``, and the errors that name a value's
full path.

``RunConfig`` and ``Config`` instances go wherever a run config dict goes; the helpers at
the end turn them into the dict shape the run validates, and into the plain data a run
stores (a model is not JSON).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python

from conveyor.errors import ConfigError, DefinitionError

if TYPE_CHECKING:
    from conveyor.definitions.job import Job


class Config(BaseModel):
    """Base for typed run config.

    A task or job parameter annotated with a subclass is filled from the run
    config under ``tasks.<task key>.config`` (for a task) or ``config`` (for a
    ``@job`` body). Unknown fields are errors, so a typo never passes silently.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


class RawConfig(Config):
    """The config of a parameter annotated ``dict`` (Dagster's untyped ``config: dict``).

    Any fields are taken as they are given, unchecked; the function gets them as a
    plain dict (``raw_config_value``). A ``Config`` class is the better choice: it
    checks each field before the run starts and shows the fields in the launchpad.
    """

    model_config = ConfigDict(extra="allow", frozen=True)


def raw_config_value(config: Any) -> Any:
    """What a config parameter receives: the dict of a ``RawConfig``, else ``config``."""
    if isinstance(config, RawConfig):
        return dict(config.model_extra or {})
    return config


def validation_error(prefix: str, error: ValidationError) -> ConfigError:
    """Turn a pydantic error into a ``ConfigError`` whose lines name full paths.

    ``prefix`` is where the model sits in the run config, e.g.
    ``"tasks.extract.config"``; an error on field ``limit`` then reads
    ``tasks.extract.config.limit: input should be a valid integer``.
    """
    lines = []
    for err in error.errors():
        path = (
            ".".join([prefix, *(str(p) for p in err["loc"])])
            if prefix
            else ".".join(str(p) for p in err["loc"])
        )
        msg = err["msg"]
        msg = msg[:1].lower() + msg[1:]
        if err["type"] == "extra_forbidden":
            msg = "unknown field; remove it or check its spelling"
        lines.append(f"{path or '(config)'}: {msg}")
    return ConfigError("; ".join(lines))


def validate_model(model: type[BaseModel], data: Any, prefix: str) -> BaseModel:
    """Validate ``data`` as ``model``, raising a ``ConfigError`` with full paths."""
    if data is None:
        data = {}
    if isinstance(data, model):
        return data
    check_instance(model, data, prefix)
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix}: expected a mapping of fields, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise validation_error(prefix, e) from None


def check_instance(model: type[BaseModel], data: Any, prefix: str) -> None:
    """Refuse a model instance of another class than ``model`` where ``model`` is expected.

    Raises:
        ConfigError: naming both classes and the fix.
    """
    if isinstance(data, BaseModel) and not isinstance(data, model):
        raise ConfigError(
            f"{prefix}: got a {type(data).__name__}, but this takes {model.__name__}; pass "
            f"{model.__name__}(...) or a dict of its fields"
        )


# The keys of a run config; Dagster's ``ops`` is read as ``tasks``.
RUN_CONFIG_KEYS = ("tasks", "config", "resources")


class RunConfig:
    """Typed run config: Dagster's ``RunConfig(ops=..., resources=...)`` under Conveyor's names.

    Goes wherever a run config dict goes (``job.run(run_config=...)``, ``config=`` on
    ``@workflow``/``@job``, ``.to_job(config=...)``) and means the same dict.

    Args:
        tasks: by task key, a ``Config`` instance or ``{"config": {...}}``.
        resources: by resource key, the fields to set (a dict or a ``Resource``).
        config: a ``@job`` body's config (a dict or its ``Config``).
        ops: Dagster's name for ``tasks``.
    """

    __slots__ = ("config", "resources", "tasks")

    def __init__(
        self,
        tasks: Mapping[str, Any] | None = None,
        resources: Mapping[str, Any] | None = None,
        config: Any = None,
        *,
        ops: Mapping[str, Any] | None = None,
    ) -> None:
        if ops is not None and tasks is not None:
            raise ConfigError("RunConfig: give tasks= or its Dagster name ops=, not both")
        given = ops if tasks is None else tasks
        for name, value in (("tasks", given), ("resources", resources)):
            if value is not None and not isinstance(value, Mapping):
                raise ConfigError(
                    f"RunConfig({name}=...): expected a mapping by key, got {type(value).__name__}"
                )
        self.tasks: dict[str, Any] = dict(given or {})
        self.resources: dict[str, Any] = dict(resources or {})
        self.config = config

    def to_dict(self) -> dict[str, Any]:
        """The run config dict this means (Config instances kept as they are)."""
        out: dict[str, Any] = {}
        if self.tasks:
            out["tasks"] = dict(self.tasks)
        if self.config is not None:
            out["config"] = self.config
        if self.resources:
            out["resources"] = dict(self.resources)
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunConfig) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        parts = [f"{k}={v!r}" for k, v in self.to_dict().items()]
        return f"RunConfig({', '.join(parts)})"


def as_config_dict(value: Any, where: str) -> dict[str, Any]:
    """``value`` (``None``, a ``RunConfig`` or a mapping) as a run config dict.

    A task entry given as a ``Config`` instance becomes ``{"config": instance}``, and
    Dagster's ``ops`` key is read as ``tasks``; instances are kept, to be checked against
    the job (``execution.runconfig``) and turned into plain data (``plain_data``).

    Raises:
        ConfigError: ``value`` is not config, or has both ``ops`` and ``tasks``.
    """
    if value is None:
        return {}
    if isinstance(value, RunConfig):
        value = value.to_dict()
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{where}: expected a mapping (a dict, or a RunConfig(tasks=..., "
            f"resources=...)), got {type(value).__name__}"
        )
    out = dict(value)
    if "ops" in out:
        if "tasks" in out:
            raise ConfigError(f"{where}: give 'tasks' or its Dagster name 'ops', not both")
        out["tasks"] = out.pop("ops")
    unknown = sorted(set(out) - set(RUN_CONFIG_KEYS), key=str)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(RUN_CONFIG_KEYS)}"
        )
    tasks = out.get("tasks")
    if isinstance(tasks, Mapping):
        out["tasks"] = _flat_tasks(tasks, "", where)
    return out


def _flat_tasks(tasks: Mapping[str, Any], prefix: str, where: str) -> dict[str, Any]:
    """Task entries by full key: a subgraph's entry ``{"sub": {"tasks": {"extract": ...}}}``
    becomes ``{"sub.extract": ...}``, at any depth, and a ``Config`` instance
    ``{"config": instance}``."""
    out: dict[str, Any] = {}
    for key, value in tasks.items():
        full = f"{prefix}{key}"
        if isinstance(value, RunConfig):
            value = value.to_dict()
        if isinstance(value, Mapping) and "tasks" in value:
            extra = sorted(set(value) - {"tasks"}, key=str)
            if extra:
                raise ConfigError(
                    f"{where}: tasks.{full}.{extra[0]}: unknown key; a subgraph's entry holds "
                    f"only 'tasks' (its tasks' config by key)"
                )
            inner = value["tasks"]
            if not isinstance(inner, Mapping):
                raise ConfigError(
                    f"{where}: tasks.{full}.tasks: expected a mapping by task key, got "
                    f"{type(inner).__name__}"
                )
            for k, v in _flat_tasks(inner, f"{full}.", where).items():
                out[k] = merged(out[k], v) if isinstance(out.get(k), Mapping) else v
        else:
            out[full] = {"config": value} if isinstance(value, BaseModel) else value
    return out


def fields_of(value: Any) -> Any:
    """A model as the dict of its fields (nested models too; ``SecretStr`` kept), so that
    it merges with dicts and validates again as the same values."""
    if isinstance(value, BaseModel):
        return {k: fields_of(v) for k, v in value}
    if isinstance(value, Mapping):
        return {k: fields_of(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(fields_of(v) for v in value)
    return value


def merged(default: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` over ``default``, mapping by mapping: a field ``given`` sets wins, the rest
    of ``default`` stays."""
    out = dict(default)
    for key, value in given.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def plain_data(value: Any, path: str = "run config") -> Any:
    """``value`` as JSON data to store with a run: models as their fields, a ``SecretStr``
    as its text (masked afterwards, as every plain secret is), dates and paths as text.

    Raises:
        ConfigError: a value that cannot be stored, naming its path.
    """
    if isinstance(value, BaseModel):
        return {k: plain_data(v, f"{path}.{k}") for k, v in value}
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Mapping):
        return {str(k): plain_data(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain_data(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    try:
        return to_jsonable_python(value)
    except PydanticSerializationError:
        raise ConfigError(
            f"{path}: a value of type {type(value).__name__} cannot be stored with the run; give "
            f"plain data (text, numbers, lists, dicts) or a Config; pass objects as resources"
        ) from None


def check_default_config(job: Job) -> None:
    """Check a job's ``config=`` names its tasks and config as a run's config would.

    Values may be partial (a run gives the rest), so fields are validated when a run
    starts; what is checked here is where each value goes.

    Raises:
        DefinitionError: a task key the job lacks, config for what takes none, or a
            ``Config`` of another class than the one its task takes.
    """
    from conveyor.definitions.params import config_param

    cfg = job.default_config
    owner = f"@{job.kind} {job.name!r}: config="
    tasks = cfg.get("tasks") or {}
    if not isinstance(tasks, Mapping):
        raise DefinitionError(f"{owner}: tasks must map task keys to their config")
    try:
        if job.graph is not None:
            if cfg.get("config") is not None:
                raise ConfigError(
                    f"'config' applies to a @job body; workflow {job.name!r} takes config "
                    f"per task, under tasks.<task key>.config"
                )
            for key, entry in tasks.items():
                node = job.graph.nodes.get(key)
                if node is None:
                    raise ConfigError(
                        f"tasks.{key}: no task {key!r} in job {job.name!r} "
                        f"(tasks: {', '.join(job.graph.nodes)})"
                    )
                p = config_param(node.task.params)
                value = entry.get("config") if isinstance(entry, Mapping) else entry
                if p is None:
                    raise ConfigError(
                        f"tasks.{key}.config: task {node.task.name!r} takes no config; "
                        f"annotate a parameter with a Config subclass to give it some"
                    )
                check_instance(p.annotation, value, f"tasks.{key}.config")
        elif cfg.get("config") is not None:
            if job.config_model is None:
                raise ConfigError(f"config: job {job.name!r} takes no config")
            check_instance(job.config_model, cfg["config"], "config")
        resources = cfg.get("resources") or {}
        for key in resources if isinstance(resources, Mapping) else ():
            if key not in job.resources:
                known = ", ".join(job.resources) or "none"
                raise ConfigError(f"resources.{key}: no resource {key!r} (resources: {known})")
    except ConfigError as e:
        raise DefinitionError(f"{owner} {e}") from None


def shown_defaults(default: Mapping[str, Any]) -> dict[str, Any]:
    """A job's ``config=`` as JSON data to show (the launchpad's defaults): models as their
    fields, ``SecretStr`` values as ``***``, so a secret never reaches a page."""

    def masked(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return "***"
        if isinstance(value, Mapping):
            return {k: masked(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [masked(v) for v in value]
        return value

    out: dict[str, Any] = plain_data(masked(fields_of(default)), "config=")
    return out


def prefilled_defaults(default: Mapping[str, Any]) -> dict[str, Any]:
    """A job's ``config=`` as the launchpad's first values: plain JSON data, without its
    secrets (the default still applies underneath, so a secret never reaches a page nor
    comes back from it as ``***``)."""

    def public(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: public(v) for k, v in value.items() if not isinstance(v, SecretStr)}
        if isinstance(value, list | tuple):
            return [public(v) for v in value]
        return value

    out: dict[str, Any] = plain_data(public(fields_of(default)), "config=")
    return out


class ConfigMapping:
    """A simpler config for a workflow or job, mapped to its tasks' config (Dagster's
    ``ConfigMapping``).

    ``@workflow(config=mapping)``: a run's config is then given in the schema of the
    mapping (a dict of its fields, or an instance of its ``Config`` class) and
    ``config_fn`` turns it into the run config the tasks take (a dict or a
    ``RunConfig``) before that is checked.

    Args:
        config_fn: a function of one parameter, annotated with a ``Config`` subclass.
        config_schema: that class, when the parameter is not annotated.

    Raises:
        DefinitionError: no ``Config`` class for the simplified schema.
    """

    __slots__ = ("config_fn", "name", "schema")

    def __init__(self, config_fn: Any, config_schema: type[Config] | None = None) -> None:
        import inspect
        import typing

        if not callable(config_fn):
            raise DefinitionError(f"ConfigMapping takes a function, got {config_fn!r}")
        self.config_fn = config_fn
        self.name: str = getattr(config_fn, "__name__", "config_mapping")
        owner = f"@config_mapping {self.name!r}"
        params = list(inspect.signature(config_fn).parameters.values())
        if len(params) != 1:
            raise DefinitionError(
                f"{owner}: takes one parameter, the simplified config "
                f"(def {self.name}(val: MyConfig) -> RunConfig)"
            )
        schema: Any = config_schema
        if schema is None:
            try:
                hints = typing.get_type_hints(config_fn)
            except Exception:
                hints = {}
            schema = hints.get(params[0].name)
        if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
            raise DefinitionError(
                f"{owner}: annotate its parameter with a Config subclass "
                f"(def {self.name}({params[0].name}: MyConfig)), or pass config_schema="
            )
        self.schema: type[BaseModel] = schema

    def validate(self, value: Any) -> BaseModel:
        """``value`` (a dict of the simplified fields, or an instance) checked against the
        schema; a ``ConfigError`` names each simplified field that is wrong."""
        if value is None:
            value = {}
        if isinstance(value, RunConfig):
            raise ConfigError(
                f"run config: this job's config is {self.schema.__name__} (mapped by "
                f"{self.name!r}); give its fields, e.g. {self.schema.__name__}(...), not a "
                f"RunConfig"
            )
        check_instance(self.schema, value, "run config")
        if isinstance(value, self.schema):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"run config: expected the fields of {self.schema.__name__}, got "
                f"{type(value).__name__}"
            )
        try:
            return self.schema.model_validate(dict(value))
        except ValidationError as e:
            raise validation_error("", e) from None

    def apply(self, value: BaseModel) -> dict[str, Any]:
        """The run config ``config_fn`` maps ``value`` to, as a run config dict."""
        try:
            mapped = self.config_fn(value)
        except ConfigError:
            raise
        except Exception as e:
            raise ConfigError(f"config mapping {self.name!r} raised {type(e).__name__}: {e}") from e
        return as_config_dict(mapped, f"config mapping {self.name!r} returned a config that")

    def __call__(self, value: Any) -> dict[str, Any]:
        """The run config the simplified config ``value`` maps to."""
        return self.apply(self.validate(value))

    def __repr__(self) -> str:
        return f"<ConfigMapping {self.name} ({self.schema.__name__})>"


def config_mapping(fn: Any = None, /, *, config_schema: type[Config] | None = None) -> Any:
    """Make a ``ConfigMapping`` of a function from a ``Config`` to a run config.

    Works bare (``@config_mapping``) or with ``config_schema=``.
    """
    if fn is not None:
        return ConfigMapping(fn, config_schema)

    def decorate(f: Any) -> ConfigMapping:
        return ConfigMapping(f, config_schema)

    return decorate
