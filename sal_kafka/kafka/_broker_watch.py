"""What a reader knows of its brokers: down or up, and the offsets it asks of them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import monotonic as _monotonic
from time import sleep as _sleep

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from ..errors import KafkaIOError
from ._config import KafkaConfig
from ._history import BEGINNING
from ._received import ReaderStats
from ._session import MISSING_TOPIC, RateLimit, Session, retriable
from .transports.base import ConsumerLike

__all__ = ["BrokerWatch", "watermarks", "offset_at", "lags"]

log = logging.getLogger("sal_kafka.reader")
#: what the brokers report to a reader's error callback: a refused login or a lost
#: broker repeats on every reconnect attempt, so each kind is said once per 30 s
broker_log = logging.getLogger("sal_kafka.reader.broker")
broker_log.addFilter(RateLimit())


class BrokerWatch:
    """Down from librdkafka's "all brokers down" until a fetch or a metadata request is
    answered again; `on_error` is the consumer's error callback (a librdkafka thread)."""

    def __init__(self, session: Session, stats: ReaderStats, on_missing: Callable[[str], None] | None = None) -> None:
        self.session = session
        self.on_missing = on_missing  # a topic of the reader does not exist (any more)
        self.stats = stats
        self.down_since: float | None = None  # monotonic time the brokers were reported down
        self._next_probe = 0.0

    @property
    def where(self) -> str:
        return self.session.config.bootstrap_servers

    def on_error(self, error: KafkaError) -> None:
        self.session.note_broker_error(error)
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            if self.down_since is None:
                self.down_since = _monotonic()
                self.stats.broker_down_events += 1
                log.error("all brokers at %s are down: the reader waits for them", self.where)
        elif error.code() != KafkaError._TRANSPORT:  # transport errors come with every reconnect attempt
            broker_log.warning("Kafka error: %s", error.str())
            if error.code() in MISSING_TOPIC and self.on_missing is not None:
                self.on_missing(error.str())

    @property
    def down_for(self) -> float:
        return 0.0 if self.down_since is None else _monotonic() - self.down_since

    def back(self) -> None:
        """A broker answered."""
        if self.down_since is not None:
            log.warning("the brokers at %s are back after %.1f s", self.where, self.down_for)
            self.down_since = None

    def resume_from_start(self, consumer: ConsumerLike, topic: str, partition: int, error: KafkaError) -> None:
        """The broker no longer has a position ("offset out of range": retention, a truncated
        log): go on from the first message it has, and say so."""
        self.stats.offset_resets += 1
        log.warning(
            "%s [%d]: the broker no longer has this reader's position (its log was lost or truncated): "
            "reading resumes from the first message it has (%s)",
            topic,
            partition,
            error.str(),
        )
        try:  # the partition stopped on the error: a seek is refused ("erroneous state"), a new assignment is not
            consumer.incremental_unassign([TopicPartition(topic, partition)])
            consumer.incremental_assign([TopicPartition(topic, partition, BEGINNING)])
        except KafkaException as exc:
            log.error("%s [%d]: cannot resume: %s", topic, partition, exc)

    def probe(self, consumer: ConsumerLike) -> None:
        """While down and idle, ask for metadata once a second: an answer means the brokers are back."""
        if _monotonic() >= self._next_probe:
            self._next_probe = _monotonic() + 1.0
            try:
                consumer.list_topics(timeout=0.5)
            except KafkaException:
                return
            self.back()


def watermarks(consumer: ConsumerLike, tp: TopicPartition, config: KafkaConfig) -> tuple[int, int]:
    """A partition's low and high watermarks, retried while the broker answers with a
    retriable error (a topic another process just made has no leader for a moment)."""
    deadline = _monotonic() + config.timeout
    while True:
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=config.timeout)
            return int(low), int(high)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if not (isinstance(error, KafkaError) and retriable(error)) or _monotonic() > deadline:
                reason = error.str() if isinstance(error, KafkaError) else exc
                raise KafkaIOError(
                    f"{tp.topic} [{tp.partition}]: cannot read its offsets at {config.bootstrap_servers}: {reason}"
                ) from None
            _sleep(0.05)


def offset_at(consumer: ConsumerLike, tp: TopicPartition, time_ms: int, timeout: float, end: int) -> int:
    """The first offset at or after ``time_ms`` (the broker's offsets_for_times), else ``end``."""
    try:
        (found,) = consumer.offsets_for_times([TopicPartition(tp.topic, tp.partition, time_ms)], timeout=timeout)
    except KafkaException as exc:
        raise KafkaIOError(f"{tp.topic}: cannot find the offset at {time_ms} ms: {exc}") from None
    return int(found.offset) if found.offset >= 0 else end


def lags(consumer: ConsumerLike) -> list[tuple[str, int, int]]:
    """``(kafka topic, partition, high watermark - position)`` of every assigned partition,
    from librdkafka's cached watermarks (no request to the broker)."""
    return [(topic, partition, max(0, high - position)) for topic, partition, high, position in ends(consumer)]


def ends(consumer: ConsumerLike) -> list[tuple[str, int, int, int]]:
    """``(kafka topic, partition, high watermark, position)`` of every assigned partition
    with both known, from librdkafka's cached watermarks (no request to the broker)."""
    try:
        positions = consumer.position(consumer.assignment())
    except KafkaException:
        return []
    found = []
    for tp in positions:
        try:
            high = consumer.get_watermark_offsets(tp, cached=True)[1] if tp.offset >= 0 else -1
        except KafkaException:
            continue
        if high >= 0:
            found.append((tp.topic, tp.partition, high, tp.offset))
    return found
