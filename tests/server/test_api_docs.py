"""The guide's list of API routes is the API's: every route it names exists, and every
route of the API is in it."""

from __future__ import annotations

import re
from pathlib import Path

from conveyor.server.app import create_app
from conveyor.server.state import ServerState, WorkspaceHolder
from conveyor.storage.instance import Instance

GUIDE = Path(__file__).parents[2] / "docs" / "guide.md"


def _documented() -> set[tuple[str, str]]:
    text = GUIDE.read_text()
    block = text[text.index("### The REST API") :]
    block = block[block.index("```text") : block.index("```\n", block.index("```text") + 7)]
    found = set()
    for method, path in re.findall(r"^(GET|POST|PUT|PATCH|DELETE)\s+(/api/\S+)", block, re.M):
        path = path.split("?")[0]
        # NAME, ID, KEY, JOB, PATH stand for one part of the path.
        found.add((method, re.sub(r"/[A-Z]+(?=/|$)", "/{}", path)))
    return found


def _routes() -> set[tuple[str, str]]:
    """The API's routes, as its OpenAPI schema lists them."""
    app = create_app(ServerState(Instance.ephemeral(), WorkspaceHolder(lambda: None, "none")))
    return {
        (method.upper(), re.sub(r"\{[^}]+\}", "{}", path))
        for path, methods in app.openapi()["paths"].items()
        for method in methods
    }


def test_the_guide_lists_every_route_of_the_api_and_no_other() -> None:
    documented, routes = _documented(), _routes()
    assert documented - routes == set(), "the guide names routes the API does not have"
    assert routes - documented == set(), "routes the guide does not list"
