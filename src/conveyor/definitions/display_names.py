"""Names people read beside the names code uses.

Datatailr names a workflow as it is shown (``@workflow(name="Simple Data
Pipeline")``); Conveyor's job name is an identifier, because it is part of
trigger strings (``job.success:<name>``), command lines and URLs. A name with
spaces is therefore taken as the display name, and the job's name is derived
from it by one rule (``identifier_for``), so that a Datatailr workflow keeps
its name on screen and gets a name to refer to it by.
"""

from __future__ import annotations

import re

from conveyor.errors import DefinitionError

_NOT_NAME = re.compile(r"[^0-9A-Za-z_.-]+")


def identifier_for(display_name: str) -> str:
    """The job name for a display name: lower case, each run of characters other than
    letters, digits, ``_``, ``-`` and ``.`` replaced by one ``_``, with ``_`` trimmed
    from both ends (``"Simple Data Pipeline"`` is ``"simple_data_pipeline"``)."""
    return _NOT_NAME.sub("_", display_name.strip()).strip("_").lower()


def split_display_name(name: object, display_name: object, owner: str) -> tuple[object, object]:
    """``(name, display_name)`` for a job: a ``name`` holding whitespace is a display name,
    and the job's name is derived from it (``identifier_for``); other names pass unchanged.

    Raises:
        DefinitionError: a display name was given twice, differently, or the derived
            name is not a valid job name (say which to give instead).
    """
    if not isinstance(name, str) or not any(c.isspace() for c in name.strip()):
        return name, display_name
    shown = name.strip()
    if display_name is not None and display_name != shown:
        raise DefinitionError(
            f"{owner}: name={name!r} holds spaces, so it is the display name, and "
            f"display_name={display_name!r} differs from it; give name='<identifier>' "
            f"with display_name={display_name!r}, or only one of them"
        )
    derived = identifier_for(shown)
    if not derived.replace("-", "_").replace(".", "_").isidentifier():
        raise DefinitionError(
            f"{owner}: name={name!r} holds spaces, so it is the display name, but the job "
            f"name derived from it ({derived!r}) is not a valid name (letters, digits, '_', "
            f"'-' and '.', not starting with a digit); give both, e.g. "
            f"name='report_3_day', display_name={shown!r}"
        )
    return derived, shown
