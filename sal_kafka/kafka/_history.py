"""Where a reader starts, and what its history is: ts_salobj's rules, apart from any consumer.

Pure: `plan_start` turns a partition's watermarks and the reader's options
into the offset to assign (or a time to look up), `History` keeps the newest
message per ``salIndex`` of each partition read for history until the broker
reports that partition's end. The reader (`sal_kafka.Reader`) does the I/O.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from ..errors import ConfigError
from ..schemas._model import TopicInfo

__all__ = ["BEGINNING", "END", "StartPosition", "Start", "check_start", "plan_start", "History"]

#: The first message a partition has / the next one written (librdkafka's values for them).
BEGINNING = -2
END = -1

#: Where a reader starts instead of its history rules (a mapping: per (Kafka topic, partition),
#: the beginning for partitions it does not name).
StartPosition = Literal["beginning", "end"] | int | datetime.datetime | Mapping[tuple[str, int], int]


@attrs.frozen
class Start:
    """Where one partition is read from: ``offset`` (or `BEGINNING`/`END`), or, when
    ``time_ms`` is given, the first message at or after it (to look up; else the end);
    ``history``: read up to its end first."""

    offset: int = END
    time_ms: int | None = None
    history: bool = False


def check_start(start: StartPosition | None) -> None:
    """Refuse what is not a start position, before anything is asked of a broker."""
    if start is None or start in ("beginning", "end") or isinstance(start, int | datetime.datetime | Mapping):
        return
    raise ConfigError(f"start must be 'beginning', 'end', an offset or a datetime, got {start!r}")


def needs_watermarks(start: StartPosition | None) -> bool:
    """True when the start depends on the partition's low and high watermarks."""
    return start is None or start == "end"


def plan_start(
    topic: TopicInfo,
    partition: int,
    start: StartPosition | None,
    history: bool | None,
    watermarks: tuple[int, int] = (0, 0),
    max_history_read: int = 1000,
) -> Start:
    """Where ``topic``'s ``partition`` starts.

    With no ``start`` the history rules hold: events give their latest
    message (for an indexed component, the newest per salIndex within the last
    ``max_history_read``), telemetry and commands none (``history`` overrides
    which); live reading starts at the high watermark. ``watermarks`` (low,
    high) are needed only then (`needs_watermarks`).
    """
    if needs_watermarks(start):
        low, high = watermarks
        wants = (topic.kind == "event" if history is None else history) and start is None
        if not wants or high <= low:
            return Start(offset=high)
        # a compacted topic may have gaps: the look-back ends at the end-of-partition event
        return Start(offset=max(low, high - max_history_read) if topic.indexed else high - 1, history=True)
    if isinstance(start, Mapping):
        return Start(offset=int(start.get((topic.kafka_name, partition), BEGINNING)))
    if start == "beginning":
        return Start(offset=BEGINNING)
    if isinstance(start, datetime.datetime):
        moment = start if start.tzinfo else start.replace(tzinfo=datetime.UTC)
        return Start(time_ms=int(moment.timestamp() * 1000))
    if isinstance(start, int):
        return Start(offset=start)
    check_start(start)
    raise AssertionError("unreachable")  # pragma: no cover


class History:
    """The newest message per salIndex of each partition being read for history."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, int], dict[Any, Any]] = {}

    def open(self, kafka_topic: str, partition: int) -> None:
        self._pending[(kafka_topic, partition)] = {}

    def __bool__(self) -> bool:
        return bool(self._pending)

    def reading(self, kafka_topic: str, partition: int) -> bool:
        """True while the partition's history is not whole."""
        return (kafka_topic, partition) in self._pending

    def offer(self, kafka_topic: str, partition: int, received: Any) -> None:
        """Keep ``received`` (a `Received` of that partition) as its salIndex's newest."""
        data = received.data
        key = data.get("salIndex") if isinstance(data, dict) else getattr(data, "salIndex", None)
        received.history = True
        self._pending[(kafka_topic, partition)][key] = received

    def close(self, kafka_topic: str, partition: int) -> list[Any]:
        """The partition's end is reported: its history, oldest first (empty when not reading it)."""
        pending = self._pending.pop((kafka_topic, partition), {})
        return sorted(pending.values(), key=lambda r: r.offset)

    def close_all(self) -> list[Any]:
        """Every partition's history, oldest first within each (no end came in time)."""
        return [r for key in list(self._pending) for r in self.close(*key)]
