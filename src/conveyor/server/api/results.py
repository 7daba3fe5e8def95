"""``/api/runs/{run_id}/tasks/{task_key}/result``: a task's stored output."""

from __future__ import annotations

import json
import reprlib
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from conveyor.errors import NotFoundError
from conveyor.server import run_views
from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow, run_for
from conveyor.storage.instance import Instance

router = APIRouter(tags=["results"], dependencies=[Depends(allow(Action.READ))])

# Results larger than this (as JSON) are shown by their repr only.
MAX_JSON = 1 << 20
_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 2000
_repr.maxlist = _repr.maxdict = 50


class TaskResult(BaseModel):
    """A task's output: its value as JSON where it can be, and always its type, size and
    a (shortened) repr."""

    run_id: str
    task_key: str
    type: str = Field(description="module.QualifiedName of the value's type")
    size: int = Field(description="bytes stored")
    is_json: bool
    value: Any = Field(None, description="the value as JSON, when it can be")
    repr: str
    error: str | None = Field(None, description="why the value could not be loaded, if not")


def as_json(value: Any) -> tuple[bool, Any]:
    """``(True, jsonable)`` for values JSON can hold (pydantic models, dataclasses and
    dates included), ``(False, None)`` otherwise."""
    from pydantic_core import to_jsonable_python

    try:
        data = to_jsonable_python(value)
        text = json.dumps(data, allow_nan=False)
    except (TypeError, ValueError):
        return False, None
    if len(text) > MAX_JSON:
        return False, None
    return True, data


def task_result(instance: Instance, run_id: str, task_key: str) -> TaskResult:
    """The stored output of ``task_key`` in run ``run_id`` (``NotFoundError`` when the
    run, the task or its result is not there)."""
    rid = run_views.resolve_run(instance, run_id)
    pointer = instance.result_store.pointers(rid).get(task_key)
    if pointer is None:
        keys = [t.key for t in instance.run_details(rid).tasks]
        if task_key not in keys:
            raise NotFoundError(f"run {rid} has no task {task_key!r} (tasks: {', '.join(keys)})")
        raise NotFoundError(
            f"task {task_key!r} of run {rid} has no stored result; only tasks that succeeded "
            f"have one"
        )
    base = {
        "run_id": rid,
        "task_key": task_key,
        "type": str(pointer["type_name"]),
        "size": int(pointer["size"]),
    }
    try:
        value = instance.result_store.load(pointer)
    except Exception as e:
        why = f"the value cannot be loaded here: {type(e).__name__}: {e}"
        return TaskResult(**base, is_json=False, repr=f"<{base['type']}>", error=why)
    ok, data = as_json(value)
    return TaskResult(**base, is_json=ok, value=data, repr=_repr.repr(value))


@router.get("/runs/{run_id}/tasks/{task_key}/result")
def get_result(request: Request, run_id: str, task_key: str) -> TaskResult:
    """The task's output: JSON where it can be, otherwise its type, size and repr."""
    return task_result(state_of(request).instance, run_for(request, run_id).id, task_key)
