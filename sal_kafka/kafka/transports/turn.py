"""A producer that hands over what one turn of an asyncio event loop wrote, all together."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from .base import ProducerLike

__all__ = ["TurnProducer"]

log = logging.getLogger("sal_kafka.writer")


class TurnProducer:
    """A producer that hands what the event loop's thread writes to librdkafka
    at the end of the loop's turn, all together, in the order written.

    With ``linger.ms`` 0 each ``produce`` wakes librdkafka's broker thread at
    once, so a command callback that writes an event, then a telemetry message,
    then the ack made three produce requests, the ack's queued behind the
    others at the broker. Handed over together they go in one request. The
    delay added is the rest of the loop's turn, since the loop runs the hand-over
    as soon as the writing code awaits. Messages written on other threads
    (a logging handler's) go straight through.
    """

    def __init__(self, producer: ProducerLike, loop: asyncio.AbstractEventLoop, thread_id: int) -> None:
        self._producer = producer
        self._loop = loop
        self._thread_id = thread_id
        self._pending: list[tuple[str, bytes | None, bytes | None, Callable[[Any, Any], None] | None]] = []
        self._lock = threading.Lock()  # flush may run in a worker thread

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        on_delivery: Callable[[Any, Any], None] | None = None,
    ) -> None:
        if threading.get_ident() != self._thread_id or self._loop.is_closed():
            self._producer.produce(topic, value, key, on_delivery=on_delivery)
            return
        with self._lock:
            self._pending.append((topic, value, key, on_delivery))
            first = len(self._pending) == 1
        if first:
            self._loop.call_soon(self.hand_over)

    def hand_over(self) -> None:
        """Produce what is pending. A message librdkafka refuses (a full local queue, a
        message larger than ``message.max.bytes``, an unknown topic) is reported failed
        through its delivery report, and the others of the turn still go."""
        with self._lock:
            pending, self._pending = self._pending, []
        producer = self._producer
        for topic, value, key, on_delivery in pending:
            try:
                try:
                    producer.produce(topic, value, key, on_delivery=on_delivery)
                except BufferError:
                    producer.poll(1.0)  # serve delivery reports to make room, once
                    producer.produce(topic, value, key, on_delivery=on_delivery)
            except BufferError:
                _refused(on_delivery, KafkaError(KafkaError._QUEUE_FULL, "the producer's local queue is full"))
            except KafkaException as exc:
                error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                _refused(on_delivery, error or KafkaError(KafkaError._FAIL, str(exc)))
        producer.poll(0)

    def poll(self, timeout: float = 0.0) -> int:
        return self._producer.poll(timeout)

    def flush(self, timeout: float = -1) -> int:
        self.hand_over()
        return self._producer.flush(timeout)

    def __len__(self) -> int:
        return len(self._producer) + len(self._pending)


def _refused(on_delivery: Callable[[Any, Any], None] | None, error: KafkaError) -> None:
    if on_delivery is not None:  # counted, logged and given to on_delivery_error by the writer
        on_delivery(error, None)
    else:
        log.error("a message was refused by the producer: %s", error.str())
