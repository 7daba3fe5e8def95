"""Inferring an app's framework from its module's source, without importing it."""

from __future__ import annotations

import pytest

from conveyor.definitions.frameworks import FRAMEWORKS, check_framework, infer_framework


@pytest.mark.parametrize(
    ("source", "framework"),
    [
        ("import streamlit as st\nst.write('hi')\n", "streamlit"),
        ("import panel as pn\nfrom bokeh.plotting import figure\n", "panel"),
        ("from dash import Dash, html\nimport flask\n", "dash"),
        ("import dash\napp = dash.Dash()\n", "dash"),
        ("from fastapi import FastAPI\napp = FastAPI()\n", "fastapi"),
        ("from flask import Flask\napp = Flask(__name__)\n", "flask"),
        ("from starlette.applications import Starlette\n", "asgi"),
        ("import django.core.wsgi\n", "wsgi"),
        ("def f():\n    import streamlit\n", "streamlit"),
        ("x = 1\n", None),
        ("from . import streamlit\n", None),
        ("", None),
    ],
)
def test_the_framework_comes_from_the_imports(source: str, framework: str | None) -> None:
    assert infer_framework(source) == framework


def test_the_attribute_constructor_decides_over_the_imports() -> None:
    source = (
        "import dash\nfrom flask import Flask as F\nfrom fastapi import FastAPI\n"
        "server = F(__name__)\napi: FastAPI = FastAPI()\nboard = dash.Dash(server=server)\n"
    )
    assert infer_framework(source, "server") == "flask"
    assert infer_framework(source, "api") == "fastapi"
    assert infer_framework(source, "board") == "dash"
    assert infer_framework(source, "missing") == "dash"  # then the imports decide


def test_source_that_is_not_python_is_a_syntax_error() -> None:
    with pytest.raises(SyntaxError):
        infer_framework("def (:\n")


def test_check_framework_names_the_choices() -> None:
    assert [check_framework(f) for f in FRAMEWORKS] == list(FRAMEWORKS)
    with pytest.raises(ValueError, match="use one of streamlit, dash"):
        check_framework("django")
