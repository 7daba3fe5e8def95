"""The launchpad: a job's run config as a form (from its JSON schema) and as YAML/JSON text,
checked as the user types, then launched (queued) with a redirect to the new run's page.

The form and the editor are two views of one config. Whichever the user edited last
(the ``source`` input, kept by ``static/conveyor.js``) is read; the check answers
with the other view brought up to date and each field's error beside it, out of
band, so the input being typed in keeps its focus.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from conveyor.definitions.config import prefilled_defaults
from conveyor.definitions.job import Job
from conveyor.definitions.partitions import partition_label, shown_keys
from conveyor.errors import ConveyorError, NotFoundError
from conveyor.server import actions, job_views
from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow, audit, authorize, job_of, may
from conveyor.server.ui import forms
from conveyor.server.ui.formdata import form_data
from conveyor.server.ui.templating import not_found, render

router = APIRouter()

# The recent intervals the picker offers.
RECENT_INTERVALS = 30


@dataclass(slots=True)
class Check:
    """What checking the launchpad found: the config, its errors, and the form."""

    config: dict[str, Any]
    form: forms.Group
    text: str
    source: str
    errors: list[tuple[str, str]]
    other: list[tuple[str, str]]
    partition: str
    interval: str
    tags: str
    fresh: bool = False

    @property
    def shown(self) -> bool:
        """Whether the check has anything to say: nothing before the user's first input."""
        return not (self.fresh and self.ok)

    @property
    def ok(self) -> bool:
        return not self.errors


def recent_intervals(job: Job, now: datetime | None = None) -> list[tuple[str, str]]:
    """The job's last elapsed periods, newest first, as (value, label) for the picker."""
    from conveyor.scheduler.backfill import intervals_between

    if job.timed_trigger is None:
        return []
    end = now or datetime.now(UTC)
    if job.interval is not None and job.interval.end is not None:
        end = min(end, job.interval.end)
    found: list[Any] = []
    for days in (2, 14, 120, 800):
        start = end - timedelta(days=days)
        if job.interval is not None:
            start = max(start, job.interval.start)
        if start >= end:
            break
        try:
            found = intervals_between(job, start, end)
        except ConveyorError:
            return []
        if len(found) >= RECENT_INTERVALS or start == getattr(job.interval, "start", None):
            break
    return [
        (
            f"{i.start.isoformat()}|{i.end.isoformat()}",
            f"{i.start:%Y-%m-%d %H:%M} → {i.end:%Y-%m-%d %H:%M} UTC",
        )
        for i in reversed(found[-RECENT_INTERVALS:])
    ]


def _tags(text: str) -> dict[str, str]:
    """``key=value, key2=value2`` as tags; ``ValueError`` naming a pair without ``=``."""
    out: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"tags: {part.strip()!r} is not key=value")
        out[key.strip()] = value.strip()
    return out


def _interval(text: str) -> tuple[str, str] | None:
    if not text.strip():
        return None
    start, _, end = text.partition("|")
    return (start.strip(), end.strip())


# What the launchpad says when a partitioned job is launched without a partition.
PICK_PARTITION = "pick a partition"


def launch_schema(job: Job) -> dict[str, Any]:
    """The schema the launchpad's form is built from: the run config's, or for a job whose
    ``config=`` is a ``ConfigMapping``, the mapping's simplified config, which is what a
    run of it takes."""
    if job.config_mapping is None:
        return job_views.config_schema(job)
    schema = job.config_mapping.schema.model_json_schema()
    schema["title"] = f"run config of {job.name} ({job.config_mapping.schema.__name__})"
    return schema


def check(job: Job, form: dict[str, str] | None) -> Check:
    """Read the launchpad's inputs and check the launch they describe, recording nothing.

    Without ``form`` (the page as first shown) a missing partition is not an error yet,
    and the form shows the job's ``config=`` defaults (but its secrets), to be overridden.
    """
    fields = forms.build(launch_schema(job))
    data = form or {}
    source = data.get("source", "form")
    text = data.get("config_text", "")
    errors: list[tuple[str, str]] = []
    config: dict[str, Any] = {}
    if form is None:
        config = prefilled_defaults(job.default_config)
        forms.fill(fields, config)
        text = forms.to_text(config) if config else ""
    elif source == "editor":
        try:
            config = forms.from_text(text)
        except ValueError as e:
            errors.append(("", str(e)))
        forms.fill(fields, config)
    else:
        config = forms.config_from_form(data, fields)
        forms.fill_from_form(fields, data)
        text = forms.to_text(config)
    partition = data.get("partition", "")
    interval = data.get("interval", "")
    tags = data.get("tags", "")
    if not errors:
        try:
            _tags(tags)
        except ValueError as e:
            errors.append(("tags", str(e).removeprefix("tags: ")))
        checked = partition or None
        if checked is None and job.partitions is not None:
            # The partition's own message speaks of run() and --partition: the form's
            # words instead, and the config checked with any key meanwhile.
            if form is not None:
                errors.append(("partition", PICK_PARTITION))
            checked = next(iter(shown_keys(job.partitions) or []), None)
        try:
            actions.validate(job, config, partition=checked, interval=_interval(interval))
        except ConveyorError as e:
            errors += forms.split_errors(str(e))
    other = forms.place_errors(fields, errors)
    return Check(
        config, fields, text, source, errors, other, partition, interval, tags, form is None
    )


@dataclass(frozen=True, slots=True)
class FromRun:
    """The run the launchpad was opened from (``?from=ID``): its config, tags, partition
    and interval fill the form, and it can be rerun from failure with the edited config."""

    id: str
    status: str
    ended: bool

    @property
    def short(self) -> str:
        return self.id[:8]


def _from_run(state: Any, job: Job, run_id: str) -> tuple[FromRun, dict[str, str]] | None:
    """The run ``run_id`` of ``job`` and the launchpad's inputs it fills; None if there
    is no such run of this job."""
    from conveyor.server import run_views

    try:
        run = state.instance.run(run_views.resolve_run(state.instance, run_id))
    except ConveyorError:
        return None
    if run.job_name != job.name:
        return None
    interval = ""
    if run.interval_start is not None and run.interval_end is not None:
        interval = f"{run.interval_start.isoformat()}|{run.interval_end.isoformat()}"
    tags = ", ".join(f"{k}={v}" for k, v in run.tags.items() if not k.startswith("conveyor/"))
    data = {
        "source": "editor",
        "config_text": forms.to_text(run.run_config),
        "partition": run.partition_key or "",
        "interval": interval,
        "tags": tags,
    }
    status = str(getattr(run.status, "value", run.status))
    return FromRun(run.id, status, status in ("success", "failure", "canceled")), data


def _context(
    request: Request, state: Any, job: Job, result: Check, origin: FromRun | None = None
) -> dict[str, Any]:
    partitions = shown_keys(job.partitions)
    intervals = recent_intervals(job)
    if result.interval and all(value != result.interval for value, _ in intervals):
        # The run opened from covered an older interval than the picker offers.
        start, _, end = result.interval.partition("|")
        intervals.insert(0, (result.interval, f"{start} → {end}"))
    schema = launch_schema(job)
    return {
        "job": job,
        "check": result,
        "partitions": partitions,
        "partition_label": partition_label(job.partitions),
        "intervals": intervals,
        "needs_interval": job.timed_trigger is not None,
        "schema_text": json.dumps(schema, indent=2),
        "scaffold": forms.scaffold(schema),
        "origin": origin,
        "can_launch": may(request, Action.LAUNCH, job.name),
    }


@router.get("/jobs/{job_name}/launch", dependencies=[Depends(allow(Action.READ))])
def launchpad(
    request: Request, job_name: str, from_: str | None = Query(None, alias="from")
) -> Response:
    """The launch form of a job, with its config's fields and the YAML editor; filled
    from a run of the job with ``?from=RUN_ID``."""
    state = state_of(request)
    try:
        job = job_of(request, job_name)
    except ConveyorError as e:
        return not_found(request, str(e))
    if from_:
        found = _from_run(state, job, from_)
        if found is None:
            return not_found(request, f"no run {from_!r} of job {job.name!r}")
        origin, data = found
        result = check(job, data)
        return render(request, "launchpad.html", _context(request, state, job, result, origin))
    result = check(job, None)
    return render(request, "launchpad.html", _context(request, state, job, result))


@router.post(
    "/jobs/{job_name}/launch/check",
    include_in_schema=False,
    dependencies=[Depends(allow(Action.READ))],
)
async def check_launch(request: Request, job_name: str) -> Response:
    """Check the launchpad as the user types: errors beside their fields, the other view
    (form or editor) brought up to date. Always 200: a bad config is an answer."""
    state = state_of(request)
    try:
        job = job_of(request, job_name)
    except ConveyorError as e:
        return not_found(request, str(e))
    result = await run_in_threadpool(check, job, await form_data(request))
    return render(request, "launch_check.html", _context(request, state, job, result))


@router.post("/jobs/{job_name}/launch", dependencies=[Depends(allow(Action.LAUNCH))])
async def launch(request: Request, job_name: str) -> Response:
    """Queue the run the launchpad describes and show its page; the form again, with its
    errors, when the config is wrong."""
    state = state_of(request)
    try:
        job = job_of(request, job_name)
    except NotFoundError as e:
        return not_found(request, str(e))
    label = authorize(request, Action.LAUNCH, job.name).label
    data = await form_data(request)
    result = await run_in_threadpool(check, job, data)
    origin: FromRun | None = None
    if data.get("from_run"):
        found = await run_in_threadpool(_from_run, state, job, data["from_run"])
        origin = found[0] if found is not None else None
    if result.ok and origin is not None and data.get("action") == "rerun":
        rerun_of = origin.id
        try:
            new = await run_in_threadpool(
                lambda: actions.rerun(
                    state, rerun_of, full=False, run_config=result.config, launched_by=label
                )
            )
        except ConveyorError as e:
            result.errors += forms.split_errors(str(e))
            result.other = forms.place_errors(result.form, result.errors)
        else:
            audit(request, "rerun", new.id, job=job.name, of=rerun_of, full=False)
            return RedirectResponse(f"/runs/{new.id}", status_code=303)
    elif result.ok:
        try:
            run = await run_in_threadpool(
                lambda: actions.launch(
                    state,
                    job.name,
                    result.config,
                    tags=_tags(result.tags),
                    partition=result.partition or None,
                    interval=_interval(result.interval),
                    launched_by=label,
                )
            )
        except ConveyorError as e:
            result.errors += forms.split_errors(str(e))
            result.other = forms.place_errors(result.form, result.errors)
        else:
            audit(request, "launch", run.id, job=job.name)
            return RedirectResponse(f"/runs/{run.id}", status_code=303)
    return render(request, "launchpad.html", _context(request, state, job, result, origin))
