"""The launchpad's form, made from a job's run-config JSON schema, and back again.

Each leaf of the schema (a string, a number, an enum, a flag, a list...) becomes one
input named ``cfg.<path>`` (``cfg.tasks.extract.config.rows``); each nested model
becomes a fieldset. An empty input means "the default", so the config a form makes
holds only what the user set. Config errors name a field's path first
(``tasks.extract.config.rows: input should be a valid integer``): ``split_errors``
reads them back so each shows beside its input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

PREFIX = "cfg."
# A config error names its path (letters, digits, _ . [ ] -) then ": ".
_ERROR = re.compile(r"^(\(config\)|[A-Za-z_][\w.\[\]-]*): (.*)$", re.S)


@dataclass(slots=True)
class Field:
    """One input of the form."""

    path: tuple[str, ...]
    label: str
    kind: str  # text, integer, number, bool, enum, list, json
    type_text: str
    required: bool
    description: str | None
    default: str | None
    options: list[str] = field(default_factory=list)
    value: str = ""
    error: str = ""

    @property
    def name(self) -> str:
        return PREFIX + ".".join(self.path)

    @property
    def id(self) -> str:
        return field_id(self.path)

    @property
    def is_field(self) -> bool:
        return True


@dataclass(slots=True)
class Group:
    """A nested model: a fieldset of fields and groups."""

    path: tuple[str, ...]
    label: str
    description: str | None
    children: list[Field | Group] = field(default_factory=list)

    @property
    def is_field(self) -> bool:
        return False

    def fields(self) -> list[Field]:
        out: list[Field] = []
        for c in self.children:
            out += [c] if isinstance(c, Field) else c.fields()
        return out


def field_id(path: tuple[str, ...] | list[str]) -> str:
    """An HTML id for the field at ``path``: letters, digits, ``-`` and ``_`` only."""
    return "f-" + "--".join(re.sub(r"[^A-Za-z0-9_]", "_", p) for p in path)


def _resolve(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$ref`` (or a lone ``allOf: [$ref]``) followed; its own keys
    (default, description) kept over the target's."""
    out = dict(schema)
    ref = out.pop("$ref", None)
    if ref is None and isinstance(out.get("allOf"), list) and len(out["allOf"]) == 1:
        ref = out.pop("allOf")[0].get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = defs.get(ref.rsplit("/", 1)[1], {})
        return {**_resolve(target, defs), **out}
    return out


def _non_null(schema: dict[str, Any], defs: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """An ``X | None`` schema as ``X`` and True; any other as itself and False."""
    options = schema.get("anyOf")
    if isinstance(options, list):
        real = [o for o in options if o.get("type") != "null"]
        if len(real) == 1 and len(real) < len(options):
            inner = _resolve(real[0], defs)
            kept = {k: v for k, v in schema.items() if k != "anyOf"}
            return {**inner, **kept}, True
    return schema, False


def _shown(value: Any) -> str:
    """A value as an input shows it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value)


def _leaf(
    path: tuple[str, ...], schema: dict[str, Any], required: bool, defs: Mapping[str, Any]
) -> Field:
    schema, nullable = _non_null(schema, defs)
    kind, type_text, options = "json", "JSON", []
    t = schema.get("type")
    if "enum" in schema:
        kind, options = "enum", [_shown(v) for v in schema["enum"]]
        type_text = "one of " + ", ".join(options)
    elif "const" in schema:
        kind, options, type_text = "enum", [_shown(schema["const"])], "constant"
    elif t == "boolean":
        kind, type_text, options = "bool", "true or false", ["true", "false"]
    elif t == "integer":
        kind, type_text = "integer", "integer"
    elif t == "number":
        kind, type_text = "number", "number"
    elif t == "string":
        kind = "text"
        fmt = schema.get("format")
        type_text = f"string ({fmt})" if fmt else "string"
    elif t == "array":
        items = _resolve(schema.get("items", {}), defs)
        kind = "list"
        type_text = f"list of {items.get('type', 'values')}"
    elif t == "object":
        type_text = "mapping (JSON)"
    if nullable:
        type_text += " or null"
    default = _shown(schema["default"]) if "default" in schema else None
    return Field(
        path=path,
        label=path[-1],
        kind=kind,
        type_text=type_text,
        required=required,
        description=schema.get("description"),
        default=default,
        options=options,
    )


def _group(
    path: tuple[str, ...], schema: dict[str, Any], defs: Mapping[str, Any], label: str
) -> Group:
    group = Group(path=path, label=label, description=schema.get("description"))
    required = set(schema.get("required", []))
    for key, sub in (schema.get("properties") or {}).items():
        child = _resolve(sub, defs)
        child_path = (*path, str(key))
        if child.get("type") == "object" and child.get("properties"):
            title = str(key)
            if path and path[0] == "tasks" and len(child_path) == 2:
                title = f"task {key}"
            group.children.append(_group(child_path, child, defs, title))
        else:
            group.children.append(_leaf(child_path, child, key in required, defs))
    # A task's entry holds only its config: show the config's fields under the task.
    if len(group.children) == 1 and isinstance(group.children[0], Group) and path:
        only = group.children[0]
        if only.path[-1] == "config":
            group.children = only.children
            group.description = group.description or only.description
    return group


def build(schema: Mapping[str, Any]) -> Group:
    """The form of a run-config schema (``views.config_schema``)."""
    defs = schema.get("$defs") or {}
    root = _group((), dict(schema), defs, "config")
    # "tasks" is a group of tasks: show each task's fieldset at the top.
    flat: list[Field | Group] = []
    for child in root.children:
        if isinstance(child, Group) and child.path == ("tasks",):
            flat += child.children
        else:
            flat.append(child)
    root.children = flat
    return root


def _parsed(f: Field, text: str) -> Any:
    """What the user typed, as the config holds it; left a string when it does not parse,
    so that validation names the field and what is wrong."""
    if f.kind == "integer":
        try:
            return int(text)
        except ValueError:
            return text
    if f.kind == "number":
        try:
            return float(text)
        except ValueError:
            return text
    if f.kind == "bool":
        return {"true": True, "false": False}.get(text.lower(), text)
    if f.kind == "enum":
        return text
    if f.kind == "list":
        if text.lstrip().startswith("["):
            try:
                return json.loads(text)
            except ValueError:
                return text
        return [part.strip() for part in text.split(",") if part.strip()]
    if f.kind == "json":
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            return text
    return text


def config_from_form(form: Mapping[str, Any], root: Group) -> dict[str, Any]:
    """The run config the form's inputs make: only the inputs that are not empty."""
    config: dict[str, Any] = {}
    for f in root.fields():
        raw = form.get(f.name)
        if not isinstance(raw, str) or raw.strip() == "":
            continue
        where = config
        for part in f.path[:-1]:
            where = where.setdefault(part, {})
        where[f.path[-1]] = _parsed(f, raw.strip())
    return config


def fill(root: Group, config: Mapping[str, Any]) -> None:
    """Show ``config``'s values in the form's inputs."""
    for f in root.fields():
        value: Any = config
        for part in f.path:
            value = value.get(part) if isinstance(value, Mapping) else None
        f.value = _shown(value)


def fill_from_form(root: Group, form: Mapping[str, Any]) -> None:
    """Show what the user typed in the form's inputs again."""
    for f in root.fields():
        raw = form.get(f.name)
        f.value = raw if isinstance(raw, str) else ""


def split_errors(message: str) -> list[tuple[str, str]]:
    """A config error's message as (path, problem) pairs; a problem without a path has
    the path ``""``."""
    out: list[tuple[str, str]] = []
    for part in message.split("; "):
        m = _ERROR.match(part)
        if m:
            out.append((m.group(1), m.group(2)))
        elif out:
            out[-1] = (out[-1][0], f"{out[-1][1]}; {part}")
        else:
            out.append(("", part))
    return out


def place_errors(root: Group, errors: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Put each error on its field; return those that belong to no field of the form."""
    by_path = {".".join(f.path): f for f in root.fields()}
    for f in root.fields():
        f.error = ""
    left: list[tuple[str, str]] = []
    for path, problem in errors:
        found = by_path.get(path)
        if found is None:
            left.append((path, problem))
        else:
            found.error = f"{found.error}; {problem}" if found.error else problem
    return left


def to_text(config: Mapping[str, Any]) -> str:
    """The config as the editor shows it (YAML); empty for no config."""
    if not config:
        return ""
    return yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=False)


def from_text(text: str) -> dict[str, Any]:
    """The editor's text (YAML or JSON) as a config; ``ValueError`` saying where it is wrong."""
    if not text.strip():
        return {}
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ValueError(f"the editor's text is not YAML or JSON{where}: {problem}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(
            f"the editor's text is a {type(value).__name__}; a run config is a mapping "
            f"(tasks:, config:, resources:)"
        )
    return value


def defaults(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The defaults of a run-config schema, nested as a config holds them."""
    defs = schema.get("$defs") or {}

    def walk(node: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, sub in (node.get("properties") or {}).items():
            child, _ = _non_null(_resolve(sub, defs), defs)
            if "default" in child:
                out[str(key)] = child["default"]
            elif child.get("properties"):
                inner = walk(child)
                if inner:
                    out[str(key)] = inner
        return out

    return walk(_resolve(schema, defs))


def scaffold(schema: Mapping[str, Any]) -> str:
    """The editor's placeholder: the job's default config as YAML, or a comment saying
    that the job takes no config."""
    if not schema.get("properties"):
        return "# this job takes no config"
    found = defaults(schema)
    if not found:
        return "# no defaults: every value is yours to give"
    return "# the defaults:\n" + to_text(found)
