"""A sink back-end in memory: rows and offsets in dicts, committed together or not at all.

For tests of the sink loop (`sal_kafka.sinks.SinkRunner`) without a database,
and as the smallest example of a `sal_kafka.sinks.Backend`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import SinkUnavailableError
from ..kafka import Received
from ..schemas._model import TopicInfo

if TYPE_CHECKING:  # the sinks package imports psycopg; this back-end does not need it
    from ..sinks._runner import Batch, SetAside

__all__ = ["MemoryBackend"]


class MemoryBackend:
    """Stores ``(offset, record)`` rows per topic (``rows[attr_name]``) and the offsets.

    Set ``down`` to refuse writes with `SinkUnavailableError` (a store that went away);
    ``refuse(record)`` may return a reason to refuse a row (then set aside, as a
    database refuses a value); ``set_aside`` keeps what was set aside; ``writes``
    counts the transactions committed.
    """

    where = "the in-memory sink"

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self.offsets: dict[tuple[str, int], int] = {}
        self.down = False
        self.writes = 0
        self.prepared: list[str] = []
        self.set_aside: list[SetAside] = []
        self.refuse: Callable[[dict[str, Any]], str | None] | None = None

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

    def write(self, batch: Batch) -> list[SetAside]:
        from ..sinks._runner import SetAside

        if self.down:
            raise SinkUnavailableError("the in-memory store is down")
        refused = []
        for topic, rows in batch.rows.items():  # all of it, then the offsets: one transaction
            for row, source in zip(rows, batch.sources[topic], strict=True):
                reason = self.refuse(row[1]) if self.refuse is not None else None
                if reason is None:
                    self.rows[topic.attr_name].append(row)
                else:
                    refused.append(
                        SetAside(source.kafka_topic, source.partition, source.offset, "refused", reason, source.value)
                    )
        self.set_aside.extend((*batch.aside, *refused))
        self.offsets.update(batch.positions)
        self.writes += 1
        return refused

    def reconnect(self) -> None:
        pass

    def close(self) -> None:
        pass
