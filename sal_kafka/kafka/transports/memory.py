"""An in-memory Kafka broker behind the `Transport` interface, for tests.

It keeps each partition's log in a list and gives producers, consumers and
admin clients with the methods sal-kafka uses, behaving as Apache Kafka
does for them: offsets from 0, the high watermark at the end of the log,
delivery reports served by ``poll``/``flush``, the partition-end event once
a consumer has read everything, ``TOPIC_ALREADY_EXISTS``. Failures are
injected on purpose (`MemoryTransport.fail_deliveries`), not by pointing a
client at a dead broker.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Literal

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic

__all__ = ["MemoryTransport", "MemoryMessage"]


class MemoryMessage:
    """A message (or an event, when `error` is set) with ``confluent_kafka.Message``'s getters."""

    __slots__ = ("_topic", "_partition", "_offset", "_key", "_value", "_error", "_timestamp", "_latency")

    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        error: KafkaError | None = None,
    ) -> None:
        self._topic, self._partition, self._offset = topic, partition, offset
        self._key, self._value, self._error = key, value, error
        self._timestamp = int(time.time() * 1000)
        self._latency: float | None = None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def error(self) -> KafkaError | None:
        return self._error

    def timestamp(self) -> tuple[int, int]:
        return (1, self._timestamp)  # TIMESTAMP_CREATE_TIME

    def latency(self) -> float | None:
        return self._latency


class _Metadata:
    def __init__(self, topics: dict[str, list[list[MemoryMessage]]]) -> None:
        self.topics = {name: _TopicMetadata(len(parts)) for name, parts in topics.items()}


class _TopicMetadata:
    def __init__(self, partitions: int) -> None:
        self.partitions = {i: _PartitionMetadata(i) for i in range(partitions)}
        self.error = None


class _PartitionMetadata:
    """As librdkafka's: every partition of this one broker is led by it (id 0)."""

    def __init__(self, partition: int) -> None:
        self.id = partition
        self.leader = 0
        self.replicas = [0]
        self.error = None


class MemoryTransport:
    """An in-memory broker: give it to `sal_kafka.Session` as ``transport``.

    Attributes
    ----------
    topics : dict
        ``{topic: [partition log, ...]}``; each log a list of messages.
    configs : dict
        ``{topic: topic settings}`` given at creation.
    committed : dict
        ``{group id: {(topic, partition): next offset}}`` committed by consumers.
    """

    def __init__(self) -> None:
        self.topics: dict[str, list[list[MemoryMessage]]] = {}
        self.configs: dict[str, dict[str, str]] = {}
        self.committed: dict[str, dict[tuple[str, int], int]] = {}
        self._condition = threading.Condition()
        self._failure: KafkaError | None = None

    def fail_deliveries(self, reason: int | None = KafkaError._MSG_TIMED_OUT) -> None:
        """From now on every produced message fails with this librdkafka error code
        (None: deliver again), as a broker that is gone would make it."""
        self._failure = None if reason is None else KafkaError(reason)

    # the Transport interface
    def producer(self, conf: dict[str, Any]) -> _Producer:
        return _Producer(self)

    def consumer(self, conf: dict[str, Any]) -> _Consumer:
        return _Consumer(self, bool(conf.get("enable.partition.eof", False)), str(conf.get("group.id", "")))

    def admin(self, conf: dict[str, Any]) -> _Admin:
        return _Admin(self)

    # the broker
    def _append(self, topic: str, partition: int, key: bytes | None, value: bytes | None) -> MemoryMessage:
        with self._condition:
            log = self.topics[topic][partition]
            message = MemoryMessage(topic, partition, len(log), key, value)
            log.append(message)
            self._condition.notify_all()
        return message


class _Admin:
    def __init__(self, broker: MemoryTransport) -> None:
        self._broker = broker

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> _Metadata:
        return _Metadata(self._broker.topics)

    def poll(self, timeout: float = 0) -> int:
        return 0  # no callbacks wait in memory

    def create_topics(self, new_topics: list[NewTopic], **kwargs: Any) -> dict[str, Future[Any]]:
        result: dict[str, Future[Any]] = {}
        with self._broker._condition:
            for new in new_topics:
                future: Future[Any] = Future()
                if new.topic in self._broker.topics:
                    future.set_exception(KafkaException(KafkaError(KafkaError.TOPIC_ALREADY_EXISTS)))
                else:
                    self._broker.topics[new.topic] = [[] for _ in range(max(1, new.num_partitions))]
                    self._broker.configs[new.topic] = dict(new.config or {})
                    future.set_result(None)
                result[new.topic] = future
        return result


class _Producer:
    def __init__(self, broker: MemoryTransport) -> None:
        self._broker = broker
        self._reports: deque[tuple[Callable[[Any, Any], None] | None, KafkaError | None, MemoryMessage]] = deque()
        self._lock = threading.Lock()
        self._next_partition = 0

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        on_delivery: Callable[[Any, Any], None] | None = None,
    ) -> None:
        start = time.monotonic()
        error = self._broker._failure
        partitions = self._broker.topics.get(topic)
        if error is None and partitions is None:
            error = KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)
        if error is None:
            assert partitions is not None
            partition = 0 if key else self._next_partition % len(partitions)
            self._next_partition += 1
            message = self._broker._append(topic, partition, key, value)
        else:
            message = MemoryMessage(topic, -1, -1, key, value, error)
        message._latency = time.monotonic() - start
        with self._lock:
            self._reports.append((on_delivery, error, message))

    def poll(self, timeout: float = 0) -> int:
        served = 0
        while True:
            with self._lock:
                if not self._reports:
                    return served
                callback, error, message = self._reports.popleft()
            if callback is not None:
                callback(error, message)
            served += 1

    def flush(self, timeout: float = -1) -> int:
        self.poll()
        return 0

    def __len__(self) -> int:
        return len(self._reports)


class _Consumer:
    def __init__(self, broker: MemoryTransport, partition_eof: bool, group_id: str = "") -> None:
        self._broker = broker
        self._group_id = group_id
        self._partition_eof = partition_eof
        self._positions: dict[tuple[str, int], int] = {}
        self._eof_sent: set[tuple[str, int]] = set()
        self._paused: set[tuple[str, int]] = set()
        self._closed = False

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> _Metadata:
        return _Metadata(self._broker.topics)

    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float = -1, cached: bool = False
    ) -> tuple[int, int]:
        log = self._broker.topics[partition.topic][partition.partition]
        return 0, len(log)

    def offsets_for_times(self, partitions: list[TopicPartition], timeout: float = -1) -> list[TopicPartition]:
        result = []
        for tp in partitions:
            log = self._broker.topics[tp.topic][tp.partition]
            found = next((m.offset() for m in log if m._timestamp >= tp.offset), -1)
            result.append(TopicPartition(tp.topic, tp.partition, found))
        return result

    def assign(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            log = self._broker.topics[tp.topic][tp.partition]
            offset = tp.offset
            if offset < 0:  # OFFSET_BEGINNING -2, OFFSET_END -1
                offset = len(log) if offset == -1 else 0
            self._positions[(tp.topic, tp.partition)] = offset

    def seek(self, partition: TopicPartition) -> None:
        self.assign([partition])

    def pause(self, partitions: list[TopicPartition]) -> None:
        self._paused.update((tp.topic, tp.partition) for tp in partitions)

    def resume(self, partitions: list[TopicPartition]) -> None:
        self._paused.difference_update((tp.topic, tp.partition) for tp in partitions)
        with self._broker._condition:
            self._broker._condition.notify_all()

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        self.assign(partitions)

    def incremental_unassign(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._positions.pop((tp.topic, tp.partition), None)

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(t, p) for t, p in self._positions]

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self._positions[(tp.topic, tp.partition)]) for tp in partitions]

    def _ready(self, limit: int) -> list[MemoryMessage]:
        taken: list[MemoryMessage] = []
        for (topic, partition), position in self._positions.items():
            if (topic, partition) in self._paused:
                continue
            log = self._broker.topics[topic][partition]
            batch = log[position : position + limit - len(taken)]
            taken.extend(batch)
            position += len(batch)
            self._positions[(topic, partition)] = position
            if batch:
                self._eof_sent.discard((topic, partition))
            if self._partition_eof and position == len(log) and (topic, partition) not in self._eof_sent:
                self._eof_sent.add((topic, partition))
                taken.append(
                    MemoryMessage(topic, partition, position, None, None, KafkaError(KafkaError._PARTITION_EOF))
                )
            if len(taken) >= limit:
                break
        return taken

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[MemoryMessage]:
        if self._closed:
            raise RuntimeError("Consumer closed")
        deadline = time.monotonic() + (timeout if timeout >= 0 else 1e9)
        with self._broker._condition:
            while True:
                taken = self._ready(num_messages)
                left = deadline - time.monotonic()
                if taken or left <= 0:
                    return taken
                self._broker._condition.wait(left)

    def poll(self, timeout: float = -1) -> MemoryMessage | None:
        taken = self.consume(1, timeout)
        return taken[0] if taken else None

    def commit(self, *, offsets: list[TopicPartition], asynchronous: Literal[True] = True) -> None:
        with self._broker._condition:
            group = self._broker.committed.setdefault(self._group_id, {})
            for tp in offsets:
                group[(tp.topic, tp.partition)] = tp.offset

    def close(self) -> None:
        self._closed = True
