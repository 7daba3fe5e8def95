"""Sensors: user functions the daemon calls every ``interval``, outside its pass.

A sensor is user code: it may be slow, hang, or raise. Each evaluation runs
in a thread of its own, so a pass never waits for one: the pass starts the
evaluations that are due and takes up, in a later pass, the ones that have
returned. A sensor still running after ``SENSOR_TIMEOUT`` is logged, once,
and is not evaluated again until it returns (a thread cannot be stopped from
outside; the threads are daemon threads, so a hung sensor does not keep the
process from exiting).

A sensor switched off (``storage.trigger_state``, as the sensor's name and
``sensor:<name>``) is not evaluated; an evaluation already running when it was
switched off is still taken up.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from conveyor.definitions.sensor import RunRequest, Sensor, SensorContext
from conveyor.errors import ConveyorError
from conveyor.execution.launch import check_partition, prepare
from conveyor.scheduler.firing import Scope
from conveyor.storage.trigger_state import sensor_trigger

log = logging.getLogger("conveyor.daemon")

# Seconds a sensor may run before it is logged as hung.
SENSOR_TIMEOUT = 60.0


@dataclass(slots=True)
class _Evaluation:
    sensor: Sensor
    context: SensorContext
    # The cursor before the call, and when the call was due (the daemon's clock).
    cursor: str | None
    at: float
    began: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    requests: list[RunRequest] = field(default_factory=list)
    error: BaseException | None = None
    overdue: bool = False

    def run(self) -> None:
        try:
            self.requests = self.sensor.evaluate(self.context)
        except BaseException as e:  # user code: whatever it raises is its failure
            self.error = e
        finally:
            self.done.set()


class Sensors:
    """The daemon's step: start the due evaluations, take up the finished ones."""

    def __init__(self, scope: Scope, *, timeout: float = SENSOR_TIMEOUT) -> None:
        self.scope = scope
        self.timeout = timeout
        self.running: dict[str, _Evaluation] = {}

    def __call__(self, now: float, *, wait: float = 0.0) -> None:
        """One look at the sensors; with ``wait``, up to that many seconds for the
        evaluations to return before their results are taken up."""
        self._take_up()
        store = self.scope.instance.sensor_store
        switched = self.scope.trigger_states()
        for sensor in self.scope.workspace.sensors.values():
            if sensor.name in self.running:
                continue
            state = switched.get((sensor.name, sensor_trigger(sensor.name)))
            if state is not None and not state.enabled:
                continue
            cursor, last = store.get(sensor.name)
            if last is not None and now - last < sensor.interval:
                continue
            evaluation = _Evaluation(sensor, SensorContext(sensor.name, cursor, last), cursor, now)
            self.running[sensor.name] = evaluation
            threading.Thread(
                target=evaluation.run, name=f"sensor {sensor.name}", daemon=True
            ).start()
        if wait > 0:
            deadline = time.monotonic() + wait
            for evaluation in list(self.running.values()):
                evaluation.done.wait(max(0.0, deadline - time.monotonic()))
        self._take_up()

    def _take_up(self) -> None:
        for name, evaluation in list(self.running.items()):
            took = time.monotonic() - evaluation.began
            if not evaluation.done.is_set():
                if took > self.timeout and not evaluation.overdue:
                    evaluation.overdue = True
                    log.warning(
                        "sensor %s has run for more than %gs; it is evaluated again only "
                        "after it returns",
                        name,
                        self.timeout,
                    )
                continue
            if evaluation.overdue:
                log.info("sensor %s returned after %.0fs", name, took)
            self._finish(evaluation)
            del self.running[name]

    def _finish(self, evaluation: _Evaluation) -> None:
        sensor, store = evaluation.sensor, self.scope.instance.sensor_store
        if evaluation.error is not None:
            log.error(
                "sensor %s failed; its cursor stays where it was",
                sensor.name,
                exc_info=evaluation.error,
            )
            store.save(sensor.name, evaluation.cursor, evaluation.at)
            return
        job = self.scope.jobs[sensor.job_name]
        at = evaluation.at
        for request in evaluation.requests:
            try:
                # Without a key, a partitioned job gets a run per key (below).
                partition = (
                    None if request.partition is None else check_partition(job, request.partition)
                )
                _, cfg = prepare(job, request.run_config, None, None, partition)
            except ConveyorError as e:
                log.error(
                    "sensor %s asked for a run of %s that cannot run: %s",
                    sensor.name,
                    job.name,
                    e,
                )
                continue
            key = request.run_key if request.run_key is not None else f"{at:.6f}"
            tags = {
                **request.tags,
                **({"run_key": request.run_key} if request.run_key is not None else {}),
            }
            self.scope.ticks.add(
                job,
                f"{job.name}/sensor:{sensor.name}@{key}",
                sensor_trigger(sensor.name),
                at,
                tags=tags,
                run_config=cfg.raw,
                partition=partition,
            )
        self.scope.ticks.flush()
        store.save(sensor.name, evaluation.context.cursor, at)
