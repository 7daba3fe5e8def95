"""``/api/sensors``: the workspace's sensors, switched on and off, their cursors and the
ticks (runs) they asked for."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, Field

from conveyor.definitions.sensor import Sensor as SensorDefinition
from conveyor.errors import NotFoundError
from conveyor.server.api.schedules import MAX_TICKS, Tick, tick_history
from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow, allow_on_job, audit, authorize, visible_sensors
from conveyor.server.state import ServerState
from conveyor.storage.instance import Instance
from conveyor.storage.trigger_state import sensor_trigger

router = APIRouter(prefix="/sensors", tags=["sensors"])
READ = [Depends(allow(Action.READ))]
# A sensor's switch and cursor need operate on its job: the route names the job.
OPERATE = [Depends(allow_on_job(Action.OPERATE))]


class Sensor(BaseModel):
    """A sensor: the job it runs, how often it is evaluated, its stored cursor."""

    name: str
    job_name: str
    interval: float = Field(description="seconds between evaluations")
    description: str | None
    enabled: bool
    cursor: str | None
    last_evaluated_at: datetime | None


class CursorIn(BaseModel):
    cursor: str | None = Field(description="the sensor's new cursor; null starts it afresh")


def sensor_of(request: Request, name: str, action: Action = Action.READ) -> SensorDefinition:
    """Sensor ``name`` of the workspace, if the caller may do ``action`` on its job;
    ``NotFoundError`` naming the sensors the caller may read otherwise (a sensor of a
    job it may not read is not there for it)."""
    state: ServerState = state_of(request)
    sensors = visible_sensors(request)
    missing = (
        f"no sensor {name!r} in {state.workspace.description}; its sensors: "
        f"{', '.join(sorted(sensors)) or 'none'}"
    )
    if name not in sensors:
        raise NotFoundError(missing)
    authorize(request, action, sensors[name].job_name, missing=missing)
    return sensors[name]


def sensor_view(instance: Instance, sensor: SensorDefinition) -> Sensor:
    cursor, evaluated = instance.sensor_store.get(sensor.name)
    doc = sensor.fn.__doc__
    return Sensor(
        name=sensor.name,
        job_name=sensor.job_name,
        interval=sensor.interval,
        description=doc.strip() if doc else None,
        enabled=instance.trigger_states.is_enabled(sensor.name, sensor_trigger(sensor.name)),
        cursor=cursor,
        last_evaluated_at=datetime.fromtimestamp(evaluated, UTC) if evaluated else None,
    )


@router.get("", dependencies=READ)
def list_sensors(request: Request) -> list[Sensor]:
    """The workspace's sensors, by name."""
    sensors = visible_sensors(request)
    return [sensor_view(state_of(request).instance, sensors[n]) for n in sorted(sensors)]


@router.get("/{name}", dependencies=READ)
def get_sensor(request: Request, name: str) -> Sensor:
    """One sensor, with its cursor and when it was last evaluated."""
    return sensor_view(state_of(request).instance, sensor_of(request, name))


def _switch(request: Request, name: str, enabled: bool) -> Sensor:
    state = state_of(request)
    sensor = sensor_of(request, name, Action.OPERATE)
    state.instance.trigger_states.set_enabled(sensor.name, sensor_trigger(sensor.name), enabled)
    audit(request, "switch sensor", sensor.name, job=sensor.job_name, enabled=enabled)
    return sensor_view(state.instance, sensor)


@router.post("/{name}/on", dependencies=OPERATE)
def switch_on(request: Request, name: str) -> Sensor:
    """Switch the sensor on: the daemon evaluates it again."""
    return _switch(request, name, True)


@router.post("/{name}/off", dependencies=OPERATE)
def switch_off(request: Request, name: str) -> Sensor:
    """Switch the sensor off: the daemon does not evaluate it until it is on again."""
    return _switch(request, name, False)


@router.put("/{name}/cursor", dependencies=OPERATE)
def set_cursor(request: Request, name: str, body: Annotated[CursorIn, Body()]) -> Sensor:
    """Set the sensor's cursor (what its next evaluation starts from)."""
    state = state_of(request)
    sensor = sensor_of(request, name, Action.OPERATE)
    _, evaluated = state.instance.sensor_store.get(sensor.name)
    state.instance.sensor_store.save(sensor.name, body.cursor, evaluated or 0.0)
    audit(request, "set sensor cursor", sensor.name, job=sensor.job_name, cursor=body.cursor)
    return sensor_view(state.instance, sensor)


@router.get("/{name}/ticks", dependencies=READ)
def get_ticks(
    request: Request, name: str, limit: Annotated[int, Query(ge=1, le=MAX_TICKS)] = 50
) -> list[Tick]:
    """The runs the sensor asked for, newest first."""
    state = state_of(request)
    sensor = sensor_of(request, name)
    return tick_history(state.instance, sensor.job_name, sensor_trigger(sensor.name), limit)
