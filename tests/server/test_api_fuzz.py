"""The API fuzzed from its own OpenAPI schema (schemathesis): whatever a client sends, the
answer is never a 500, and every error says what went wrong in ``{"error": ...}``.

Deterministic (derandomized, no example database) and bounded, so that it runs
in well under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings

from conveyor.server.app import create_app
from conveyor.server.state import ServerState
from tests.server.test_api import Api, make_api

# Examples per operation: about 40 operations, a few milliseconds each.
EXAMPLES = 6


# The app is made once, for its schema; the fixture below gives it its state (the schema
# does not depend on it). schemathesis's lazy fixture loader does not work with pytest 9.
app = create_app(cast(ServerState, None))
# The API's operations only: the UI's pages answer errors as HTML pages.
schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex="^/api/")


@pytest.fixture(scope="module", autouse=True)
def fuzzed_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    made = make_api(tmp_path_factory.mktemp("fuzz"))
    api = next(made)
    # Something to find: runs that succeeded and failed, with tasks, logs and results.
    api.run("etl")
    api.run("flaky", {"tasks": {"risky": {"config": {"fail": True}}}})
    app.state.conveyor = api.state
    yield api
    next(made, None)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors_and_every_error_has_a_message(case: Any) -> None:
    response = case.call()
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body, dict), response.text
        message = body.get("error")
        assert isinstance(message, str), response.text
        assert message.strip(), response.text
