from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.definitions.durations import format_duration, parse_duration, parse_memory
from conveyor.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        ("90", 90.0),
        ("2s", 2.0),
        ("30m", 1800.0),
        ("1.5h", 5400.0),
        ("4 h", 14400.0),
        ("1d", 86400.0),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),
        ("2 hours", 7200.0),
        ("250ms", 0.25),
        ("1w", 604800.0),
        ("  10s ", 10.0),
        ("1H", 3600.0),
        ("0", 0.0),
    ],
)
def test_durations_parse(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ("", "empty"),
        ("abc", "cannot read"),
        ("10x", "unknown unit 'x'"),
        ("-5s", "cannot read"),
        ("30m1h", "largest to smallest"),
        ("1h 30", "has no unit"),
        ("h", "cannot read"),
        (-1, ">= 0"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (True, "invalid"),
        (None, "invalid"),
        ([1], "invalid"),
    ],
)
def test_bad_durations_quote_the_input(bad: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_duration(bad, what="timeout")
    assert fragment in str(err.value)
    assert "timeout" in str(err.value)
    if isinstance(bad, str) and bad:
        assert repr(bad) in str(err.value)


@given(st.text(max_size=20))
def test_any_text_parses_or_raises_config_error(text: str) -> None:
    try:
        assert parse_duration(text) >= 0
    except ConfigError:
        pass


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (1024, 1024),
        ("128m", 128_000_000),
        ("2g", 2_000_000_000),
        ("512Mi", 512 * 1024**2),
        ("1.5GiB", int(1.5 * 1024**3)),
        ("100MB", 100_000_000),
        ("64k", 64_000),
        ("2Gi", 2 * 1024**3),
        ("2GIB", 2 * 1024**3),
        (" 512 mb ", 512_000_000),
        ("1.5g", 1_500_000_000),
        (".5Ki", 512),
        ("4096", 4096),
    ],
)
def test_memory_parses(text: object, size: int) -> None:
    assert parse_memory(text) == size


@pytest.mark.parametrize("bad", ["", "lots", "12q", "-5m", "0", 0, -3, 1.5, True, None, "m"])
def test_bad_memory_is_a_clear_error(bad: object) -> None:
    with pytest.raises(ConfigError, match="invalid memory"):
        parse_memory(bad)


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ("", "write a number and a unit, such as '512m'"),
        ("lots", "write a number and a unit"),
        ("-5m", "write a number and a unit"),
        ("2g of RAM", "write a number and a unit"),
        ("1.5.5g", "write a number and a unit"),
        ("12q", "unknown unit 'q'; units are k, m, g, t"),
        ("3 zb", "unknown unit 'zb'"),
        ("5ib", "unknown unit 'ib'"),
        ("1kbit", "unknown unit 'kbit'"),
        ("9" * 400 + "eb", "cannot read it as a size"),
        ("0", "must be more than 0 bytes"),
        ("0.0001k", "must be more than 0 bytes"),
        (-3, "must be more than 0 bytes"),
        (1.5, "expected bytes as an integer or a string like '512m'"),
        (True, "expected bytes as an integer"),
        (b"2g", "expected bytes as an integer"),
    ],
)
def test_bad_memory_says_what_is_wrong_and_quotes_it(bad: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_memory(bad)
    message = str(err.value)
    assert message.startswith(f"invalid memory {bad!r}: ")
    assert fragment in message


@given(st.text(max_size=12))
def test_any_text_is_memory_or_config_error(text: str) -> None:
    try:
        assert parse_memory(text) > 0
    except ConfigError:
        pass


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.0123, "12ms"), (4.2, "4.2s"), (125, "2m 05s"), (3725, "1h 02m")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
