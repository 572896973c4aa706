"""Read topics of a component from Kafka, with ts_salobj's history rules (`_history`)."""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from time import monotonic as _monotonic
from time import time as _time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from .._stats import LatencyHistogram
from ..errors import ConfigError, KafkaIOError
from ..options import POSTPROCESS, Arrays, Postprocess
from ..registry import SchemaRegistry
from ..schemas._model import ComponentInfo
from ._broker_watch import BrokerWatch, ends, offset_at, watermarks
from ._config import KafkaConfig
from ._decoding import Decoder
from ._history import History, StartPosition, check_start, needs_watermarks, plan_start
from ._lookups import SchemaPending
from ._received import ReaderStats, Received
from ._session import MISSING_TOPIC, Session

__all__ = ["Reader", "Received", "ReaderStats", "POSTPROCESS", "StartPosition"]

log = logging.getLogger("sal_kafka.reader")

#: A reader's consumer: assigned, never joined; the end of a partition is what ends its
#: history; a position the broker no longer has (retention, a truncated log) is reported
#: to us and resumed from what exists; Apache Kafka answers a fetch as soon as data
#: arrives (fetch.min.bytes 1), so the wait bounds only an idle fetch; large fetches
#: (a 3 kB message at 30 kHz is 100 MB/s).
CONSUMER_SETTINGS: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.partition.eof": True,
    "auto.offset.reset": "error",
    "fetch.wait.max.ms": 100,
    "fetch.max.bytes": 52428800,
    "max.partition.fetch.bytes": 10485760,
    "queued.min.messages": 200000,
}


#: seconds between the reading thread's notes of its lags (`Reader.lags`)
LAGS_INTERVAL = 1.0


class Reader:
    """Reads one or more topics of a component instance (or all instances).

    Partitions are assigned directly (no consumer-group join): every reader
    sees every message, and starts at once.

    Parameters
    ----------
    component : str or ComponentInfo
    topics : sequence of str
        Topic names (``tel_x``, ``evt_x``, SAL names or bare names).
    index : int, optional
        Only messages of this ``salIndex`` (indexed components).
    config : KafkaConfig, optional
        Addresses and settings, for a private session.
    session : Session, optional
        The process's shared connections (registry client, topic creation);
        default a private session, closed with the reader.
    history : bool, optional
        Read history at start: by default events yes (their latest message;
        for an indexed component, the newest per salIndex within the last
        ``max_history_read`` messages), telemetry and commands no.
    start : {"beginning", "end"}, int, datetime, mapping or None
        Where to start instead of the history rules: the beginning of every
        partition, its end (only what is written from now on), an offset, a
        time (the first message at or after it, by the broker's
        ``offsets_for_times``; a naive datetime is UTC), or
        ``{(kafka topic, partition): offset}`` (the beginning for the others:
        how a sink resumes). Messages from a start position are live ones.
    max_history_read : int, optional
        How far back an indexed component's history looks; default
        ``config.max_history_read`` (``$LSST_MAX_HISTORY_READ`` works too).
    postprocess : Postprocess
        ``none`` (dicts), ``simple_namespace``, ``dataclass``, ``attrs``, ``msgspec``.
    arrays : {"list", "numpy"}
        Array fields as lists, or as numpy arrays (float and double ones are
        read-only views of the message: about 3x faster on large telemetry).
    queue_size : int
        At most this many decoded messages wait in memory (async reader:
        batches); a full queue stops reading from Kafka (no message is dropped).
    on_undecodable : callable, optional
        ``on_undecodable(message, error)`` for each message that cannot be
        decoded (counted and logged in any case), e.g. a sink's set-aside.
        A message whose writer's schema the registry cannot be asked for now is
        not undecodable: its partition is held there and retried
        (`sal_kafka.kafka._lookups`).
    group_id : str, optional
        The consumer group `commit_offsets` commits to (default: one of its own).
        Partitions are assigned, never balanced among a group's members.
    """

    def __init__(
        self,
        component: str | ComponentInfo,
        topics: Sequence[str],
        *,
        index: int | None = None,
        config: KafkaConfig | None = None,
        session: Session | None = None,
        history: bool | None = None,
        start: StartPosition | None = None,
        max_history_read: int | None = None,
        postprocess: Postprocess = "none",
        arrays: Arrays = "list",
        queue_size: int = 10_000,
        registry: SchemaRegistry | None = None,
        create_topics: bool = True,
        on_undecodable: Callable[[Any, Exception], None] | None = None,
        group_id: str | None = None,
    ) -> None:
        if postprocess not in POSTPROCESS:
            raise ConfigError(f"unknown postprocess {postprocess!r}; expected one of {', '.join(POSTPROCESS)}")
        check_start(start)
        self._own_session = session is None
        self.session = session or Session(config, registry=registry)
        self._closed = False
        self.queue_size = queue_size
        try:
            self.config = self.session.config
            self.component = component = self.session.component(component)
            self.topics = [component.topic(t) for t in topics]
            if index and not component.indexed:  # as the writer: never a wait for messages that cannot come
                raise ConfigError(f"{component.name} is not indexed: index must be 0, got {index}")
            self.index = index or None
            self.postprocess = postprocess
            self._group_id = group_id or f"sal-kafka-reader-{uuid.uuid4().hex}"
            self._start(history, start, max_history_read, arrays, create_topics, on_undecodable)
        except BaseException:
            if self._own_session:
                self.session.close()
            raise

    def _start(
        self,
        history: bool | None,
        start: StartPosition | None,
        max_history_read: int | None,
        arrays: Arrays,
        create_topics: bool,
        on_undecodable: Callable[[Any, Exception], None] | None,
    ) -> None:
        session = self.session
        self.max_history_read = self.config.max_history_read if max_history_read is None else max_history_read
        self.stats = ReaderStats()
        self._watch = BrokerWatch(session, self.stats, on_missing=lambda why: session.recreate_lost(self.topics, why))
        self._buffer: deque[Any] = deque()  # raw Kafka messages, and decoded history
        self._history = History()
        self._held: dict[tuple[str, int], int] = {}  # partition: the schema id it waits for
        self._ends: list[tuple[str, int, int, int]] = []
        self._lags_at = 0.0
        self._schemas = session.writer_schemas
        if create_topics:
            session.ensure_topics(self.topics)
        self._decode = Decoder(
            session,
            self.topics,
            self.stats,
            index=self.index,
            postprocess=self.postprocess,
            arrays=arrays,
            latencies=session.metrics is not None,
            on_undecodable=on_undecodable,
        )
        self.consumer = session.consumer(
            **{
                **CONSUMER_SETTINGS,
                "group.id": self._group_id,
                "error_cb": self._watch.on_error,
            }
        )
        if session.metrics is not None:
            session.metrics.watch_reader(self)
        self._history_deadline = _monotonic() + 3 * self.config.timeout
        try:
            self._assign(history, start)
        except BaseException:
            self.consumer.close()
            raise

    # ------------------------------------------------------------------ start positions

    def _assign(self, history: bool | None, start: StartPosition | None) -> None:
        """Assign every partition where `plan_start` says; read the history partitions
        until each one's end (its first end-of-partition event), so that history comes
        whole and first, and live is exactly what is written after the start."""
        try:
            metadata = self.consumer.list_topics(timeout=self.config.timeout)
        except KafkaException as exc:
            raise KafkaIOError(
                f"cannot reach the Kafka broker at {self.config.bootstrap_servers}: "
                f"{self.session.unreachable(exc, self.consumer)}"
            ) from None
        assignment = []
        for topic in self.topics:
            meta = metadata.topics.get(topic.kafka_name)
            if meta is None or meta.error is not None:
                raise KafkaIOError(f"topic {topic.kafka_name} does not exist at {self.config.bootstrap_servers}")
            for partition in sorted(meta.partitions):
                tp = TopicPartition(topic.kafka_name, partition)
                marks = watermarks(self.consumer, tp, self.config) if needs_watermarks(start) else (0, 0)
                plan = plan_start(topic, partition, start, history, marks, self.max_history_read)
                if plan.history:
                    self._history.open(topic.kafka_name, partition)
                offset = plan.offset
                if plan.time_ms is not None:
                    offset = offset_at(self.consumer, tp, plan.time_ms, self.config.timeout, plan.offset)
                assignment.append(TopicPartition(topic.kafka_name, partition, offset))
        self.consumer.assign(assignment)
        deadline = _monotonic() + self.config.timeout
        while self._history and _monotonic() < deadline:
            self._fill(0.05)

    # ------------------------------------------------------------------ reading

    def _take(self, messages: list[Any]) -> None:
        """Queue a batch. Live messages stay raw and are decoded one by one in
        `next`: a batch of decoded 3 kB records (10^5 float objects) costs
        twice as much to build as records decoded and dropped one at a time."""
        history, buffer, held = self._history, self._buffer, self._held
        for message in messages:
            if held and (message.topic(), message.partition()) in held:
                continue  # fetched before the hold: read again from the held offset
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    # all of the partition that existed is read (also when compaction removed its last messages)
                    buffer.extend(history.close(message.topic(), message.partition()))
                elif error.code() == KafkaError._AUTO_OFFSET_RESET:
                    self._watch.resume_from_start(self.consumer, message.topic(), message.partition(), error)
                elif error.code() in MISSING_TOPIC:
                    self.session.recreate_lost(self.topics, error.str())
                else:
                    log.warning("Kafka error on %s: %s", message.topic(), error.str())
            elif not (history and history.reading(message.topic(), message.partition())):
                buffer.append(message)
            else:
                try:
                    received = self._decode(message)
                except SchemaPending as pending:
                    self._hold(message, pending)
                    continue
                if received is not None:
                    history.offer(message.topic(), message.partition(), received)

    @property
    def broker_down(self) -> bool:
        """True while the brokers are unreachable (librdkafka reported all of them down)."""
        return self._watch.down_since is not None

    @property
    def broker_down_for(self) -> float:
        """Seconds the brokers have been down (0 when they are up)."""
        return self._watch.down_for

    def drain(self, limit: int) -> list[Received]:
        """Up to ``limit`` messages already fetched, without waiting (counted as delivered)."""
        taken: list[Received] = []
        while len(taken) < limit and (received := self._pop()) is not None:
            taken.append(received)
        self.stats.delivered += len(taken)
        return taken

    def _pop(self) -> Received | None:
        """The next decoded message of the buffer, or None when it is empty."""
        buffer, decode = self._buffer, self._decode
        while buffer:
            item = buffer.popleft()
            if type(item) is Received:
                return item
            try:
                received = decode(item)
            except SchemaPending as pending:
                self._hold(item, pending)
                continue
            if received is not None:
                return received
        return None

    def _hold(self, message: Any, pending: SchemaPending) -> None:
        """Stop a partition at ``message`` until its writer's schema can be known: paused,
        positioned back at it, and what was fetched after it dropped (fetched again)."""
        key = (message.topic(), message.partition())
        if key not in self._held:
            log.warning(
                "%s [%d] held at offset %d: %s (nothing after it is delivered until the registry answers)",
                key[0],
                key[1],
                message.offset(),
                pending,
            )
        self._held[key] = pending.schema_id
        self.stats.holds += 1
        tp = TopicPartition(key[0], key[1], message.offset())
        try:
            self.consumer.pause([tp])
            self.consumer.seek(tp)
        except KafkaException as exc:
            raise KafkaIOError(f"cannot hold {key[0]} [{key[1]}] at offset {message.offset()}: {exc}") from None
        kept = [m for m in self._buffer if type(m) is Received or (m.topic(), m.partition()) != key]
        self._buffer.clear()  # in place: `_pop` is iterating over this very deque
        self._buffer.extend(kept)

    def _release(self) -> None:
        """Resume the held partitions whose schema can now be decided (found, missing,
        or its retry time came)."""
        ready = [key for key, sid in self._held.items() if self._schemas.ready(sid)]
        for key in ready:
            del self._held[key]
        if ready:
            self.consumer.resume([TopicPartition(t, p) for t, p in ready])

    def _fill(self, timeout: float) -> None:
        """Take what Kafka has ready; wait up to ``timeout`` only when it has nothing.

        ``consume(n, t)`` would wait for ``n`` messages or ``t``: at 50 Hz that
        is a second of latency. ``poll`` returns the first message as it comes.
        """
        consumer = self.consumer
        if self._held:
            self._release()
        try:
            messages = consumer.consume(num_messages=500, timeout=0)
            if not messages:
                first = consumer.poll(timeout)
                if first is not None:
                    messages = [first, *consumer.consume(num_messages=499, timeout=0)]
        except KafkaException as exc:
            raise KafkaIOError(f"reading from {self.config.bootstrap_servers}: {exc}") from None
        if _monotonic() - self._lags_at >= LAGS_INTERVAL:
            # noted here, on the reading thread: a metrics scrape must never call the
            # consumer (librdkafka serializes calls behind a running poll: scrapes hung)
            self._ends, self._lags_at = ends(consumer), _monotonic()
        if messages:
            self._watch.back()
            self._take(messages)
        elif self._watch.down_since is not None:
            self._watch.probe(consumer)
        elif self._history and _monotonic() > self._history_deadline:
            # an end should have been reported long ago (librdkafka reports it after
            # every fetch that reaches it): deliver the history rather than hold it
            self._buffer.extend(self._history.close_all())

    def next(self, timeout: float | None = None) -> Received | None:
        """The next message, or None if none came within ``timeout`` seconds (None: wait)."""
        received = self._pop()
        if received is None:
            deadline = None if timeout is None else _time() + timeout
            while received is None:
                left = 1.0 if deadline is None else deadline - _time()
                if left <= 0:
                    return None
                self._fill(min(left, 1.0))
                received = self._pop()
        self.stats.delivered += 1
        return received

    def __iter__(self) -> Iterator[Received]:
        while not self._closed:
            received = self.next(1.0)
            if received is not None:
                yield received

    def run(self, callback: Callable[[Received], Any], stop: threading.Event | None = None) -> None:
        """Call ``callback`` for each message until ``stop`` is set or the reader closed."""
        while not self._closed and not (stop is not None and stop.is_set()):
            received = self.next(0.2)
            if received is not None:
                callback(received)

    @property
    def closed(self) -> bool:
        return self._closed

    def topic_counts(self) -> dict[str, tuple[int, int, int]]:
        """``{attr_name: (messages, bytes, undecodable)}`` received per topic."""
        return self._decode.topic_counts()

    def latencies(self) -> dict[str, LatencyHistogram]:
        """``{attr_name: histogram}`` of ``private_rcvStamp - private_sndStamp`` (kept with metrics on)."""
        return self._decode.topic_latencies()

    def lags(self) -> list[tuple[str, int, int]]:
        """``(kafka topic, partition, high watermark - position)`` of every assigned partition,
        as the reading thread last noted them (every `LAGS_INTERVAL` s while it reads):
        any thread may ask, and the consumer is never called (it would wait behind a poll)."""
        return [] if self._closed else [(t, p, max(0, high - position)) for t, p, high, position in self._ends]

    def commit_offsets(self, offsets: dict[tuple[str, int], int]) -> None:
        """Commit ``{(kafka topic, partition): next offset}`` to the reader's consumer group
        (``group_id``), asynchronously: standard Kafka lag tools then see how far it is.
        The reader does not read them back (its start comes from ``start``)."""
        mine = {tp.kafka_name for tp in self.topics}
        wanted = [TopicPartition(t, p, o) for (t, p), o in offsets.items() if t in mine]
        if wanted and not self._closed:
            try:
                self.consumer.commit(offsets=wanted, asynchronous=True)
            except KafkaException as exc:  # the database stays the source of truth
                log.warning("%s: committing offsets to group %s failed: %s", self.component.name, self._group_id, exc)

    def high_watermarks(self) -> dict[tuple[str, int], int]:
        """``{(kafka topic, partition): high watermark}`` of the assigned partitions, as the
        reading thread last noted them (with `lags`; the consumer is not called)."""
        return {} if self._closed else {(t, p): high for t, p, high, _ in self._ends}

    @property
    def held(self) -> dict[tuple[str, int], int]:
        """``{(kafka topic, partition): schema id}`` of the partitions held for the registry."""
        return dict(self._held)

    @property
    def history_done(self) -> bool:
        """True once the history of every partition is in (history first, then live)."""
        return not self._history

    def close(self) -> None:
        """Close the consumer (and a private session)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.consumer.close()
        finally:
            if self._own_session:
                self.session.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
