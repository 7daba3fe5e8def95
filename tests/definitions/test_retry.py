from __future__ import annotations

import random

import pytest

from conveyor import ConfigError, RetryPolicy


def test_exponential_waits_double() -> None:
    p = RetryPolicy(max_retries=3, delay=1, backoff="exponential")
    assert [p.wait_before(n) for n in (1, 2, 3)] == [1, 2, 4]


def test_linear_and_fixed_waits() -> None:
    assert [RetryPolicy(3, delay="2s", backoff="linear").wait_before(n) for n in (1, 2, 3)] == [
        2,
        4,
        6,
    ]
    assert [RetryPolicy(3, delay=5).wait_before(n) for n in (1, 2, 3)] == [5, 5, 5]


def test_max_delay_caps_and_jitter_stays_in_band() -> None:
    p = RetryPolicy(10, delay=1, backoff="exponential", max_delay="5s")
    assert p.wait_before(8) == 5
    j = RetryPolicy(3, delay=10, jitter=0.2)
    rng = random.Random(1)
    waits = [j.wait_before(1, rng) for _ in range(200)]
    assert all(8 <= w <= 12 for w in waits)
    assert len(set(waits)) > 1


def test_retry_on_limits_which_errors_retry() -> None:
    p = RetryPolicy(2, retry_on=ConnectionError)
    assert p.should_retry(ConnectionError(), 1)
    assert not p.should_retry(ValueError(), 1)
    assert not p.should_retry(ConnectionError(), 3)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"delay": "soon"}, "retry delay"),
        ({"backoff": "random"}, "backoff"),
        ({"jitter": 2}, "jitter"),
        ({"max_delay": "x"}, "max_delay"),
        ({"retry_on": (ValueError, "oops")}, "retry_on"),
        ({"retry_on": ()}, "retry_on"),
    ],
)
def test_bad_policies(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
