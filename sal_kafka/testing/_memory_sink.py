"""A sink back-end in memory: rows and offsets in dicts, committed together or not at all.

For tests of the sink loop (`sal_kafka.sinks.SinkRunner`) without a database,
and as the smallest example of a `sal_kafka.sinks.Backend`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import SinkUnavailableError
from ..kafka import Received
from ..schemas._model import TopicInfo

__all__ = ["MemoryBackend"]


class MemoryBackend:
    """Stores ``(offset, record)`` rows per topic (``rows[attr_name]``) and the offsets.

    Set ``down`` to refuse writes with `SinkUnavailableError` (a store that went away);
    ``writes`` counts the transactions committed.
    """

    where = "the in-memory sink"

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self.offsets: dict[tuple[str, int], int] = {}
        self.down = False
        self.writes = 0
        self.prepared: list[str] = []

    def prepare(self, topics: Sequence[TopicInfo]) -> None:
        self.prepared = [t.attr_name for t in topics]
        for topic in topics:
            self.rows.setdefault(topic.attr_name, [])

    def stored_offsets(self) -> dict[tuple[str, int], int]:
        return dict(self.offsets)

    def table_name(self, topic: TopicInfo) -> str:
        return topic.attr_name

    def row(self, topic: TopicInfo, received: Received) -> tuple[int, dict[str, Any]]:
        data = received.data
        return received.offset, {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in data.items()}

    def write(self, batch: Mapping[TopicInfo, list[Any]], positions: Mapping[tuple[str, int], int]) -> None:
        if self.down:
            raise SinkUnavailableError("the in-memory store is down")
        for topic, rows in batch.items():  # all of it, then the offsets: one transaction
            self.rows[topic.attr_name].extend(rows)
        self.offsets.update(positions)
        self.writes += 1

    def reconnect(self) -> None:
        pass

    def close(self) -> None:
        pass
