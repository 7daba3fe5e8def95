"""Schedules and sensors: switched on and off, their last and next ticks, and the ticks
they fired with the runs those made. Built on the API's read functions."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from conveyor.errors import ConveyorError
from conveyor.server.api.schedules import schedules, tick_history, timed_trigger
from conveyor.server.api.sensors import sensor_of, sensor_view
from conveyor.server.app import state_of
from conveyor.server.auth import (
    Action,
    allow,
    allow_on_job,
    audit,
    job_of,
    may,
    visible_jobs,
    visible_sensors,
)
from conveyor.server.ui.formdata import form_data
from conveyor.server.ui.templating import not_found, render
from conveyor.storage.trigger_state import sensor_trigger

router = APIRouter()

# Ticks shown per schedule or sensor.
TICKS = 10


@router.get("/schedules", dependencies=[Depends(allow(Action.READ))])
def schedules_page(request: Request) -> Response:
    """Every timed trigger and sensor, with its switch and its recent ticks."""
    state = state_of(request)
    instance = state.instance
    timed = schedules(instance, visible_jobs(request))
    sensors = [sensor_view(instance, s) for _, s in sorted(visible_sensors(request).items())]
    ticks = {s.job_name: tick_history(instance, s.job_name, s.trigger, TICKS) for s in timed}
    sensor_ticks = {
        s.name: tick_history(instance, s.job_name, sensor_trigger(s.name), TICKS) for s in sensors
    }
    return render(
        request,
        "schedules.html",
        {
            "schedules": timed,
            "sensors": sensors,
            "ticks": ticks,
            "sensor_ticks": sensor_ticks,
            "can_switch": {
                name: may(request, Action.OPERATE, name)
                for name in {s.job_name for s in timed} | {s.job_name for s in sensors}
            },
        },
    )


@router.post("/schedules/{job_name}/switch", dependencies=[Depends(allow(Action.OPERATE))])
async def switch_schedule(request: Request, job_name: str) -> Response:
    """Switch a job's timed trigger on or off (the form's ``enabled``: ``on``/``off``)."""
    state = state_of(request)
    enabled = (await form_data(request)).get("enabled") == "on"
    try:
        job = job_of(request, job_name)
        trigger = timed_trigger(job)
    except ConveyorError as e:
        return not_found(request, str(e))
    await run_in_threadpool(
        state.instance.trigger_states.set_enabled, job.name, str(trigger), enabled
    )
    audit(request, "switch schedule", job.name, trigger=str(trigger), enabled=enabled)
    return RedirectResponse(f"/schedules#schedule-{job.name}", status_code=303)


@router.post("/sensors/{name}/switch", dependencies=[Depends(allow_on_job(Action.OPERATE))])
async def switch_sensor(request: Request, name: str) -> Response:
    """Switch a sensor on or off."""
    state = state_of(request)
    enabled = (await form_data(request)).get("enabled") == "on"
    try:
        sensor = sensor_of(request, name, Action.OPERATE)
    except ConveyorError as e:
        return not_found(request, str(e))
    await run_in_threadpool(
        state.instance.trigger_states.set_enabled,
        sensor.name,
        sensor_trigger(sensor.name),
        enabled,
    )
    audit(request, "switch sensor", sensor.name, job=sensor.job_name, enabled=enabled)
    return RedirectResponse(f"/schedules#sensor-{sensor.name}", status_code=303)
