"""Resources: long-lived objects (clients, connections) that tasks receive by name."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Resource(BaseModel):
    """Base for resources declared on a job and injected into tasks by parameter name.

    A resource is a pydantic model, so its fields are typed config that the run
    config can override under ``resources.<key>``. Override ``setup`` to open
    connections and ``teardown`` to close them; both run once per run, and
    ``teardown`` runs even when the run fails. Keep state that ``setup``
    makes (a connection) in attributes named with a leading ``_``: pydantic
    keeps those out of the config. Alternatively define
    ``__enter__``/``__exit__``; then tasks receive what ``__enter__`` returns.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    def setup(self) -> None:
        """Prepare the resource before the first task of a run uses it."""

    def teardown(self) -> None:
        """Release what ``setup`` acquired; called once at the end of the run."""

    def with_overrides(self, values: dict[str, Any]) -> Resource:
        """A copy of this resource with the fields in ``values`` replaced and validated."""
        return type(self).model_validate({**self.model_dump(), **values})
