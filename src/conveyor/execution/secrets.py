"""A run's secrets: ``Secret("name")`` references replaced by their values in the run's
own process, when it starts, and every value known to its redactor.

The references sit in the run config (as given, or as stored: the text
``Secret("name")``), in its config models (a field's default included) and in
the job's resources. The values are read from the instance's secret store
(each read is in the audit log, by ``run:<run id> (<job>)``) only here, after
the run is recorded, so the stored config never holds them; the resolved
resources and config then travel to the tasks as they always do, to worker
processes and Dask workers included. A ``SecretStr`` field given a plain value
works too: the value is used, redacted, and stored as ``***``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr

from conveyor.definitions.secrets import secret_name
from conveyor.errors import ConfigError
from conveyor.storage.redact import MASK
from conveyor.storage.secrets import UnknownSecretError

if TYPE_CHECKING:
    from conveyor.execution.runconfig import RunConfig
    from conveyor.storage.secrets import SecretStore

Lookup = Callable[[str], str]
# How deep a value is searched for references (a guard against self-referencing data).
MAX_DEPTH = 32


def references(value: Any, _depth: int = 0) -> set[str]:
    """The names of the secrets ``value`` refers to, searched through models, mappings
    and sequences."""
    found: set[str] = set()
    _walk(value, _depth, found, None)
    return found


def plain_values(value: Any) -> set[str]:
    """The values of the ``SecretStr`` fields in ``value`` that were given plainly (not a
    ``Secret`` reference), which the run must redact."""
    found: set[str] = set()
    _walk(value, 0, None, found)
    return found


def _walk(value: Any, depth: int, refs: set[str] | None, plain: set[str] | None) -> None:
    if depth > MAX_DEPTH:
        return
    if isinstance(value, str):
        name = secret_name(value)
        if name is not None and refs is not None:
            refs.add(name)
    elif isinstance(value, SecretStr):
        text = value.get_secret_value()
        name = secret_name(text)
        if name is not None and refs is not None:
            refs.add(name)
        elif name is None and plain is not None and text != MASK:
            plain.add(text)
    elif isinstance(value, BaseModel):
        for field in type(value).model_fields:
            _walk(getattr(value, field, None), depth + 1, refs, plain)
    elif isinstance(value, Mapping):
        for v in value.values():
            _walk(v, depth + 1, refs, plain)
    elif isinstance(value, list | tuple | set | frozenset):
        for v in value:
            _walk(v, depth + 1, refs, plain)


def resolve(value: Any, lookup: Lookup, path: str = "", _depth: int = 0) -> Any:
    """``value`` with every reference replaced by its secret's value (``lookup``): the
    same object where nothing changes, a copy where something does.

    ``ConfigError`` for a ``SecretStr`` that holds ``***``: a plain value the stored
    config did not keep (see ``mask_plain``).
    """
    if _depth > MAX_DEPTH:
        return value
    if isinstance(value, str):
        name = secret_name(value)
        return value if name is None else lookup(name)
    if isinstance(value, SecretStr):
        text = value.get_secret_value()
        if text == MASK:
            raise ConfigError(
                f"{path or 'a SecretStr field'}: its value was given as plain text, which the "
                f"stored run config does not keep (it holds {MASK}); keep it as a secret with "
                f'`conveyor secrets set NAME` and give Secret("NAME") instead'
            )
        name = secret_name(text)
        return value if name is None else SecretStr(lookup(name))
    if isinstance(value, BaseModel):
        update: dict[str, Any] = {}
        for field, info in type(value).model_fields.items():
            old = getattr(value, field, None)
            new = resolve(old, lookup, _join(path, field), _depth + 1)
            if new is not old:
                # A default is not validated: Secret("x") as a SecretStr field's default
                # is still text, and its value becomes a SecretStr here.
                if isinstance(new, str) and _wants_secret_str(info.annotation):
                    new = SecretStr(new)
                update[field] = new
        return value.model_copy(update=update) if update else value
    if isinstance(value, Mapping):
        items = {k: resolve(v, lookup, _join(path, str(k)), _depth + 1) for k, v in value.items()}
        changed = any(items[k] is not v for k, v in value.items())
        return items if changed else value
    if isinstance(value, list | tuple):
        out = [resolve(v, lookup, _join(path, str(i)), _depth + 1) for i, v in enumerate(value)]
        if all(a is b for a, b in zip(out, value, strict=True)):
            return value
        return out if isinstance(value, list) else tuple(out)
    return value


def _wants_secret_str(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())


def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path else part


def mask_plain(raw: Any, values: set[str]) -> Any:
    """The run config ``raw`` to store: each string that is one of the plain ``SecretStr``
    ``values`` becomes ``***`` (whatever its length)."""
    if not values:
        return raw
    if isinstance(raw, str):
        return MASK if raw in values and secret_name(raw) is None else raw
    if isinstance(raw, Mapping):
        return {k: mask_plain(v, values) for k, v in raw.items()}
    if isinstance(raw, list | tuple):
        return type(raw)(mask_plain(v, values) for v in raw)
    return raw


def resolve_run(cfg: RunConfig, store: SecretStore, reader: str) -> None:
    """Resolve run config ``cfg`` in place: its references replaced by their values, read
    from ``store`` as ``reader``; every value (and plain ``SecretStr`` value) added to
    ``cfg.redactor``. Reads nothing when the run refers to no secret.

    Raises:
        UnknownSecretError: a secret it refers to is not set (naming each, and how to set it).
        SecretKeyError: the instance's key cannot open them.
        ConfigError: a ``SecretStr`` whose plain value the stored config did not keep.
    """
    parts: list[Any] = [cfg.given, cfg.task_configs, cfg.job_config, cfg.resources]
    names = references(parts)
    values: dict[str, str] = {}
    missing = []
    for name in sorted(names):
        try:
            values[name] = store.get(name, reader=reader)
        except UnknownSecretError:
            missing.append(name)
    if missing:
        raise UnknownSecretError(_missing(missing))

    def lookup(name: str) -> str:
        # A model validated later (a task called in a @job body) may name more.
        if name not in values:
            values[name] = store.get(name, reader=reader)
            cfg.redactor.add([values[name]])
        return values[name]

    cfg.redactor.add(values.values())
    cfg.redactor.add(plain_values(parts))
    cfg.lookup = lookup
    cfg.given = resolve(cfg.given, lookup)
    cfg.task_configs = {
        key: resolve(model, lookup, f"tasks.{key}.config")
        for key, model in cfg.task_configs.items()
    }
    if cfg.job_config is not None:
        cfg.job_config = resolve(cfg.job_config, lookup, "config")
    cfg.resources = {
        key: resolve(res, lookup, f"resources.{key}") if isinstance(res, BaseModel) else res
        for key, res in cfg.resources.items()
    }


def _missing(names: list[str]) -> str:
    if len(names) == 1:
        return (
            f"secret {names[0]!r} is not set in this instance; set it with "
            f"`conveyor secrets set {names[0]}`"
        )
    listed = ", ".join(repr(n) for n in names)
    how = "; ".join(f"`conveyor secrets set {n}`" for n in names)
    return f"secrets {listed} are not set in this instance; set them with {how}"
