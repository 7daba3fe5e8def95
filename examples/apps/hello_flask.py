"""A Flask app: a page that greets the signed-in user, and a JSON route.

``conveyor dev examples`` serves it as ``App("hello-flask", "apps.hello_flask:app")``
(examples/dashboards.py) behind ``/apps/hello-flask/``.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request, url_for

app = Flask(__name__)


@app.get("/")
def index() -> str:
    user = request.headers.get("X-Conveyor-User", "anonymous")
    # url_for includes the base path (SCRIPT_NAME), so links work behind the proxy.
    return f"<h1>Hello, {user}</h1><p><a href='{url_for('health')}'>health</a></p>"


@app.get("/health")
def health() -> Response:
    return jsonify(status="ok")
