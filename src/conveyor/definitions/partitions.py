"""Static partitions: a fixed set of keys (regions, desks, tickers) a job's runs split over.

``@job(partitions=StaticPartitions(["us", "eu", "asia"]))`` gives each run one
key (``context.partition``): a backfill makes one run per key, a trigger one
run per key, and ``job.run(partition="eu")`` runs one by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from conveyor.errors import ConfigError, DefinitionError

MAX_KEY_LENGTH = 255


class StaticPartitions:
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

    def check(self, key: object, owner: str) -> str:
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


def parse_partitions(value: object, owner: str) -> StaticPartitions | None:
    """``partitions=`` as given to a job: ``StaticPartitions``, a list of keys, or ``None``."""
    if value is None or isinstance(value, StaticPartitions):
        return value
    if isinstance(value, list | tuple):
        try:
            return StaticPartitions(value)
        except DefinitionError as e:
            raise DefinitionError(f"{owner}: {e}") from None
    raise DefinitionError(
        f"{owner}: partitions={value!r} must be StaticPartitions([...]) or a list of keys"
    )
