"""The launchpad's form made from a config schema, and the config it makes back."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

import pytest
from pydantic import Field as ModelField

from conveyor import Config, job
from conveyor.server.job_views import config_schema
from conveyor.server.ui import forms


class Mode(StrEnum):
    FAST = "fast"
    SLOW = "slow"


class Inner(Config):
    """Where to write."""

    depth: int = 1
    names: list[str] = []


class Settings(Config):
    name: str = ModelField(description="who asks")
    mode: Mode = Mode.FAST
    level: Literal["low", "high"] = "low"
    inner: Inner = Inner()
    limit: int | None = None
    dry: bool = False
    weights: dict[str, int] = {}
    ratio: float = 0.5


@job
def tune(config: Settings) -> None:
    pass


def _form() -> forms.Group:
    return forms.build(config_schema(tune))


def test_each_kind_of_field_gets_its_input() -> None:
    fields = {".".join(f.path): f for f in _form().fields()}
    assert fields["config.name"].required
    assert fields["config.name"].description == "who asks"
    assert fields["config.mode"].kind == "enum"
    assert fields["config.mode"].options == [
        "fast",
        "slow",
    ]
    assert fields["config.mode"].default == "fast"
    assert fields["config.level"].options == ["low", "high"]
    assert fields["config.inner.depth"].kind == "integer"
    assert fields["config.inner.names"].kind == "list"
    assert fields["config.limit"].kind == "integer"
    assert "null" in fields["config.limit"].type_text
    assert fields["config.dry"].kind == "bool"
    assert fields["config.weights"].kind == "json"
    assert fields["config.ratio"].kind == "number"
    inner = next(c for c in _form().children[0].children if isinstance(c, forms.Group))
    assert inner.label == "inner"
    assert inner.description == "Where to write."


def test_the_form_makes_the_config_of_what_was_typed_only() -> None:
    form = _form()
    typed = {
        "cfg.config.name": "ann",
        "cfg.config.mode": "slow",
        "cfg.config.inner.depth": "3",
        "cfg.config.inner.names": "a, b",
        "cfg.config.dry": "true",
        "cfg.config.weights": '{"x": 1}',
        "cfg.config.ratio": "",
        "cfg.config.limit": "lots",
    }
    config = forms.config_from_form(typed, form)
    assert config == {
        "config": {
            "name": "ann",
            "mode": "slow",
            "inner": {"depth": 3, "names": ["a", "b"]},
            "dry": True,
            "weights": {"x": 1},
            "limit": "lots",
        }
    }
    # Back through the editor's text, and into the form again.
    again = forms.from_text(forms.to_text(config))
    assert again == config
    forms.fill(form, again)
    shown = {f.name: f.value for f in form.fields()}
    assert shown["cfg.config.inner.names"] == '["a", "b"]'
    assert shown["cfg.config.dry"] == "true"


def test_errors_land_on_their_fields() -> None:
    form = _form()
    message = (
        "config.limit: input should be a valid integer; config.inner.depth: too deep; "
        "see the docs; config.nope: unknown field; remove it or check its spelling"
    )
    errors = forms.split_errors(message)
    assert errors[1] == ("config.inner.depth", "too deep; see the docs")
    left = forms.place_errors(form, errors)
    fields = {".".join(f.path): f for f in form.fields()}
    assert fields["config.limit"].error == "input should be a valid integer"
    assert left == [("config.nope", "unknown field; remove it or check its spelling")]


def test_the_editor_says_where_its_text_is_wrong() -> None:
    with pytest.raises(ValueError, match="at line 2"):
        forms.from_text("config: [1, 2\n")
    assert forms.from_text("") == {}
