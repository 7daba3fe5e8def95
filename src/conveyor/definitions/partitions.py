"""Partitions: the keys a job's runs split over, and static ones (regions, desks, tickers).

``@job(partitions=StaticPartitions(["us", "eu", "asia"]))`` gives each run one
key (``context.partition``): a backfill makes one run per key, a trigger one
run per key, and ``job.run(partition="eu")`` runs one by hand. Time and
multi-dimensional partitions (``time_partitions``) share the ``PartitionSet``
interface, so that launching, firing and backfilling treat every kind alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from conveyor.errors import ConfigError, DefinitionError

MAX_KEY_LENGTH = 255


class PartitionSet:
    """What every kind of partitions offers: its keys, a check of one, and what a key means.

    A set's keys may grow with time (a daily set gains a key each day), so they
    are asked for as of a moment (``keys_at``); iterating gives the keys as of now.
    """

    __slots__ = ()

    def keys_at(self, at: float | None = None) -> list[str]:
        """Every key as of ``at`` (a POSIX time; now when ``None``), in order."""
        raise NotImplementedError

    def check(self, key: object, owner: str, at: float | None = None) -> str:
        """``key`` if it is one of the keys as of ``at``; a ``ConfigError`` saying why not."""
        raise NotImplementedError

    def keys_for_tick(self, at: float) -> list[str]:
        """The keys a trigger firing at ``at`` makes a run of each: all of them by default."""
        return self.keys_at(at)

    def latest(self, n: int, at: float | None = None) -> list[str]:
        """The last ``n`` keys as of ``at`` (now when ``None``), oldest first: what a page
        lists of a set that may hold tens of thousands of hours."""
        return self.keys_at(at)[-n:] if n > 0 else []

    def keys_between(self, start: object, end: object, owner: str) -> list[str]:
        """The keys whose period starts in ``[start, end)`` (dates; naive ones in the
        partitions' time zone; ``None``: from the first key, up to now), for a backfill."""
        raise ConfigError(
            f"{owner}: {self!r} has no time dimension, so a backfill cannot take a start and "
            f"an end; pick keys with partitions=[...]"
        )

    def window(self, key: str) -> tuple[datetime, datetime] | None:
        """The ``(start, end)`` of the period a key covers (time partitions); else ``None``."""
        return None

    def dimensions(self, key: str) -> dict[str, str] | None:
        """The key per dimension (``MultiPartitions``); else ``None``."""
        return None

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys_at())

    def __len__(self) -> int:
        return len(self.keys_at())

    def __contains__(self, key: object) -> bool:
        try:
            self.check(key, "partitions")
        except ConfigError:
            return False
        return True


class StaticPartitions(PartitionSet):
    """A fixed, ordered set of partition keys (non-empty, unique strings)."""

    __slots__ = ("keys",)

    def __init__(self, keys: Iterable[str]) -> None:
        if isinstance(keys, str) or not isinstance(keys, Iterable):
            raise DefinitionError(
                f"StaticPartitions({keys!r}): give a list of keys, e.g. "
                f"StaticPartitions(['us', 'eu'])"
            )
        out: list[str] = []
        for key in keys:
            if not isinstance(key, str) or not key.strip() or key != key.strip():
                raise DefinitionError(
                    f"StaticPartitions: key {key!r} must be a non-empty string without "
                    f"surrounding spaces"
                )
            if len(key) > MAX_KEY_LENGTH or not key.isprintable():
                raise DefinitionError(
                    f"StaticPartitions: key {key[:40]!r}... must be printable and at most "
                    f"{MAX_KEY_LENGTH} characters"
                )
            if key in out:
                raise DefinitionError(f"StaticPartitions: key {key!r} is given twice")
            out.append(key)
        if not out:
            raise DefinitionError("StaticPartitions: give at least one key")
        self.keys: tuple[str, ...] = tuple(out)

    def keys_at(self, at: float | None = None) -> list[str]:
        return list(self.keys)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key: object) -> bool:
        return key in self.keys

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StaticPartitions) and other.keys == self.keys

    def __hash__(self) -> int:
        return hash(self.keys)

    def __repr__(self) -> str:
        return f"StaticPartitions({list(self.keys)!r})"

    def check(self, key: object, owner: str, at: float | None = None) -> str:
        """``key`` if it is one of the keys; a clear error naming them if not.

        ``None`` is refused too: a run of a partitioned job processes one key.
        """
        shown = ", ".join(self.keys[:20]) + (", ..." if len(self.keys) > 20 else "")
        if key is None:
            raise ConfigError(
                f"{owner} is partitioned, so a run processes one of its keys ({shown}): "
                f"pass partition={self.keys[0]!r} to run() (--partition {self.keys[0]} on "
                f"the command line), or backfill() for a run per key"
            )
        if key not in self.keys:
            raise ConfigError(f"{owner}: unknown partition {key!r}; its keys are {shown}")
        assert isinstance(key, str)
        return key


def parse_partitions(value: object, owner: str) -> PartitionSet | None:
    """``partitions=`` as given to a job: a ``PartitionSet`` (``StaticPartitions``,
    ``DailyPartitions``...), a list of keys, or ``None``."""
    if value is None or isinstance(value, PartitionSet):
        return value
    if isinstance(value, list | tuple):
        try:
            return StaticPartitions(value)
        except DefinitionError as e:
            raise DefinitionError(f"{owner}: {e}") from None
    raise DefinitionError(
        f"{owner}: partitions={value!r} must be StaticPartitions([...]), DailyPartitions(...) "
        f"(or Hourly, Weekly, Monthly), MultiPartitions({{...}}) or a list of keys"
    )


class PartitionConfig:
    """A job's default run config made per partition: ``partition_config(fn)``."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[str], Any]) -> None:
        if not callable(fn):
            raise DefinitionError(
                f"partition_config({fn!r}): give a function from a partition key to a run "
                f"config, e.g. partition_config(lambda key: {{'config': {{'day': key}}}})"
            )
        self.fn = fn

    def __repr__(self) -> str:
        return f"partition_config({getattr(self.fn, '__qualname__', self.fn)!r})"

    def config_for(self, key: str) -> Any:
        """What the function gives for ``key``; an error from it names the key.

        Raises:
            ConfigError: the function raised, or gave neither a mapping nor a ``RunConfig``.
        """
        try:
            out = self.fn(key)
        except Exception as e:
            raise ConfigError(
                f"{self!r} raised {type(e).__name__}: {e} for partition {key!r}; fix the "
                f"function or the key"
            ) from e
        if out is not None and not isinstance(out, Mapping) and not hasattr(out, "to_dict"):
            raise ConfigError(
                f"{self!r} returned {type(out).__name__} for partition {key!r}; return a run "
                f"config dict or a RunConfig"
            )
        return out


def partition_config(fn: Callable[[str], Any]) -> PartitionConfig:
    """Config that depends on the partition: each run's default config is ``fn(key)``.

    Give it as a job's ``config=``; a run's own config is laid over it field by
    field, as over a plain ``config=``. Dagster's ``@partitioned_config``.
    """
    return PartitionConfig(fn)


SHOWN_KEYS = 500


def shown_keys(partitions: PartitionSet | None, n: int = SHOWN_KEYS) -> list[str] | None:
    """The keys a page lists: every key of a static set, the latest ``n`` of a set that
    grows with time (an hourly set from 2020 holds tens of thousands)."""
    if partitions is None:
        return None
    if isinstance(partitions, StaticPartitions):
        return list(partitions.keys)
    return partitions.latest(n)


def partition_label(partitions: PartitionSet | None) -> str:
    """How a page names a set: ``3 keys`` for a static one, else as it is written
    (``DailyPartitions(start='2024-01-01', timezone='UTC')``)."""
    if partitions is None:
        return ""
    if isinstance(partitions, StaticPartitions):
        n = len(partitions)
        return f"{n} key{'' if n == 1 else 's'}"
    return repr(partitions)
