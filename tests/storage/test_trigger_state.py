"""Triggers switched off and on: every trigger is on until switched, on SQLite and
PostgreSQL."""

from __future__ import annotations

import pytest

from conveyor.errors import ConfigError
from conveyor.storage.instance import Instance
from conveyor.storage.trigger_state import TriggerState, sensor_trigger


def test_triggers_are_on_until_switched_off(durable: Instance) -> None:
    store = durable.trigger_states
    assert store.is_enabled("etl", "every:5m")
    assert store.disabled() == set()
    store.set_enabled("etl", "every:5m", False, at=100.0)
    store.set_enabled("new_files", sensor_trigger("new_files"), False, at=101.0)
    store.set_enabled("etl", "schedule:0 6 * * *", True, at=102.0)
    assert not store.is_enabled("etl", "every:5m")
    assert store.is_enabled("etl", "schedule:0 6 * * *")
    assert store.is_enabled("report", "every:5m")  # another job's trigger of the same text
    assert store.disabled() == {("etl", "every:5m"), ("new_files", "sensor:new_files")}
    store.set_enabled("etl", "every:5m", True, at=200.0)
    assert store.is_enabled("etl", "every:5m")
    assert store.disabled() == {("new_files", "sensor:new_files")}
    assert store.states()[("etl", "every:5m")] == TriggerState(enabled=True, changed_at=200.0)
    assert len(store.states()) == 3


def test_switching_stamps_the_time_of_the_switch(durable: Instance) -> None:
    import time

    before = time.time()
    durable.trigger_states.set_enabled("etl", "every:5m", False)
    state = durable.trigger_states.states()[("etl", "every:5m")]
    assert not state.enabled
    assert before <= state.changed_at <= time.time()


def test_bad_switches_are_config_errors(instance: Instance) -> None:
    store = instance.trigger_states
    with pytest.raises(ConfigError, match="owner ''"):
        store.set_enabled("", "every:5m", False)
    with pytest.raises(ConfigError, match="trigger ' '"):
        store.set_enabled("etl", " ", False)
    with pytest.raises(ConfigError, match="enabled='no'"):
        store.set_enabled("etl", "every:5m", "no")  # type: ignore[arg-type]
    assert store.disabled() == set()
