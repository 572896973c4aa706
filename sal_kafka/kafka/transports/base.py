"""The seam between a session and a broker: what makes producers, consumers and admin clients.

A `Session` asks its `Transport` for clients shaped like librdkafka's; the
transports side by side in this package are `KafkaTransport` (the real
librdkafka clients), `MemoryTransport` (a broker in memory, for tests, as
httpx's ``Client`` takes a ``transport``) and `TurnProducer` (a producer that
hands over what one turn of an event loop wrote, together).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Literal, Protocol

from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewTopic

__all__ = ["ProducerLike", "ConsumerLike", "AdminLike", "Transport"]


class ProducerLike(Protocol):
    """What writers use of a librdkafka ``Producer``."""

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        on_delivery: Callable[[Any, Any], None] | None = None,
    ) -> None: ...

    def poll(self, timeout: float = ...) -> int: ...

    def flush(self, timeout: float = ...) -> int: ...

    def __len__(self) -> int: ...


class ConsumerLike(Protocol):
    """What readers use of a librdkafka ``Consumer`` (partitions are assigned, never joined)."""

    def list_topics(self, topic: str | None = None, timeout: float = ...) -> Any: ...

    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float = ..., cached: bool = ...
    ) -> tuple[int, int]: ...

    def offsets_for_times(self, partitions: list[TopicPartition], timeout: float = ...) -> list[TopicPartition]: ...

    def assign(self, partitions: list[TopicPartition]) -> None: ...

    def seek(self, partition: TopicPartition) -> None: ...

    def pause(self, partitions: list[TopicPartition]) -> None: ...

    def resume(self, partitions: list[TopicPartition]) -> None: ...

    def incremental_assign(self, partitions: list[TopicPartition]) -> None: ...

    def incremental_unassign(self, partitions: list[TopicPartition]) -> None: ...

    def assignment(self) -> list[TopicPartition]: ...

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]: ...

    def consume(self, num_messages: int = ..., timeout: float = ...) -> list[Any]: ...

    def poll(self, timeout: float = ...) -> Any: ...

    def commit(self, *, offsets: list[TopicPartition], asynchronous: Literal[True] = ...) -> None: ...

    def close(self) -> None: ...


class AdminLike(Protocol):
    """What topic creation uses of a librdkafka ``AdminClient``."""

    def list_topics(self, topic: str | None = None, timeout: float = ...) -> Any: ...

    def create_topics(self, new_topics: list[NewTopic], **kwargs: Any) -> dict[str, Future[Any]]: ...

    def poll(self, timeout: float = ...) -> int: ...


class Transport(Protocol):
    """Makes the clients of a session from their librdkafka settings."""

    def producer(self, conf: dict[str, Any]) -> ProducerLike: ...

    def consumer(self, conf: dict[str, Any]) -> ConsumerLike: ...

    def admin(self, conf: dict[str, Any]) -> AdminLike: ...
