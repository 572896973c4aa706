"""Read topics of a component from Kafka, with ts_salobj's history rules."""

from __future__ import annotations

import asyncio
import datetime
import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from time import monotonic as _monotonic
from time import sleep as _sleep
from time import time as _time
from types import SimpleNamespace
from typing import Any, Literal

import attrs
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaError, KafkaException, TopicPartition

from .._classes import attrs_class, dataclass_class, msgspec_class
from .._codec import Codec
from .._errors import ConfigError, KafkaIOError, SalKafkaError
from .._model import ComponentInfo, TopicInfo
from .._registry import SchemaRegistry
from .._stats import LatencyHistogram
from .._types import POSTPROCESS, Arrays, Postprocess
from ._config import KafkaConfig
from ._session import RateLimit, Session
from ._time import TAI_MINUS_UTC

__all__ = ["Reader", "AsyncReader", "Received", "ReaderStats", "POSTPROCESS"]

log = logging.getLogger("sal_kafka.reader")
#: what the brokers report to a reader's error callback: a refused login or a lost
#: broker repeats on every reconnect attempt, so each kind is said once per 30 s
broker_log = logging.getLogger("sal_kafka.reader.broker")
broker_log.addFilter(RateLimit())

#: Where a reader starts instead of its history rules (a mapping: per (Kafka topic, partition),
#: the beginning for partitions it does not name).
StartPosition = Literal["beginning", "end"] | int | datetime.datetime | Mapping[tuple[str, int], int]


@attrs.define(slots=True)
class Received:
    """One message read: the topic's attr name, the data, where it was.

    ``key`` is the message's Kafka key (``b""`` for telemetry), ``timestamp``
    its Kafka timestamp in ms (creation time), ``history`` True for history
    delivered at start, ``kafka_topic`` the Kafka topic's name.
    """

    topic: str
    data: Any
    partition: int
    offset: int
    size: int
    history: bool = False
    key: bytes | None = None
    timestamp: int = 0
    kafka_topic: str = ""


@attrs.define
class ReaderStats:
    """Counters: ``received`` from Kafka, ``delivered`` to the caller,
    ``undecodable`` (logged and skipped), ``filtered`` (other salIndex),
    ``broker_down_events`` (times all brokers were reported down),
    ``offset_resets`` (positions the broker no longer had, e.g. removed by
    retention: reset to the first message it has; logged)."""

    received: int = 0
    delivered: int = 0
    undecodable: int = 0
    filtered: int = 0
    bytes_received: int = 0
    broker_down_events: int = 0
    offset_resets: int = 0


@attrs.define
class _Partition:
    """A partition whose history is being read: the newest message per salIndex
    so far, until its first end-of-partition event says the history is whole."""

    topic: TopicInfo
    pending: dict[Any, Received] = attrs.field(factory=dict)


#: What a broker answers while a partition's leader moves or a new topic's
#: leader is not yet known everywhere (librdkafka does not flag these errors
#: retriable when it gives them to a synchronous call).
_LEADER_MOVING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.FENCED_LEADER_EPOCH,
        KafkaError.UNKNOWN_LEADER_EPOCH,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError._TRANSPORT,
    }
)


def _retriable(error: KafkaError) -> bool:
    return bool(error.retriable()) or error.code() in _LEADER_MOVING


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
    ) -> None:
        if postprocess not in POSTPROCESS:
            raise ConfigError(f"unknown postprocess {postprocess!r}; expected one of {', '.join(POSTPROCESS)}")
        self._own_session = session is None
        self.session = session or Session(config, registry=registry)
        self._closed = False
        self._start_position = start
        try:
            self._start(
                component, topics, index, history, max_history_read, postprocess, arrays, queue_size, create_topics
            )
        except BaseException:
            if self._own_session:
                self.session.close()
            raise

    def _start(
        self,
        component: str | ComponentInfo,
        topics: Sequence[str],
        index: int | None,
        history: bool | None,
        max_history_read: int | None,
        postprocess: Postprocess,
        arrays: Arrays,
        queue_size: int,
        create_topics: bool,
    ) -> None:
        session = self.session
        self.config = session.config
        self.component = component = session.component(component)
        self.topics = [component.topic(t) for t in topics]
        self.index = index or None
        self.postprocess = postprocess
        self.max_history_read = self.config.max_history_read if max_history_read is None else max_history_read
        self.queue_size = queue_size
        self.stats = ReaderStats()
        self._down_since: float | None = None  # monotonic time the brokers were reported down
        self._next_probe = 0.0
        self._buffer: deque[Any] = deque()  # raw Kafka messages, and decoded history
        if create_topics:
            session.ensure_topics(self.topics)
        registry = session.registry
        self._attr_names = {t.kafka_name: t.attr_name for t in self.topics}
        # per Kafka topic, what decoding a message needs: one lookup per message
        self._routes = {
            t.kafka_name: (
                Codec(t, schema_id=session.schema_id(t, register=False), arrays=arrays).decode_message,
                self._class_of(t),
                t.attr_name,
            )
            for t in self.topics
        }
        self._writer_schema = registry.writer_schema
        self.consumer = session.consumer(
            **{
                "group.id": f"sal-kafka-reader-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                # the end of a partition is what ends its history (see _take)
                "enable.partition.eof": True,
                # Apache Kafka answers a fetch as soon as data arrives (fetch.min.bytes
                # 1), so this bound only matters for brokers that hold fetches to it
                "fetch.wait.max.ms": 100,
                # large fetches: a 3 kB message at 30 kHz is 100 MB/s
                "fetch.max.bytes": 52428800,
                "max.partition.fetch.bytes": 10485760,
                "queued.min.messages": 200000,
                # a position the broker no longer has (retention, a truncated log)
                # is reported to us, and we resume from what exists (_take)
                "auto.offset.reset": "error",
                "error_cb": self._on_error,
            }
        )
        # per Kafka topic: [messages, bytes, undecodable]; latencies only when metrics are on
        self._counts: dict[str, list[int]] = {t.kafka_name: [0, 0, 0] for t in self.topics}
        self._latencies: dict[str, LatencyHistogram] | None = None
        if session.metrics is not None:
            self._latencies = {t.kafka_name: LatencyHistogram() for t in self.topics}
            session.metrics.watch_reader(self)
        self._partitions: dict[tuple[str, int], _Partition] = {}
        self._history_deadline = _monotonic() + 3 * self.config.timeout
        try:
            self._assign(history)
        except BaseException:
            self.consumer.close()
            raise

    def _class_of(self, topic: TopicInfo) -> Callable[..., Any] | None:
        return {
            "none": None,
            "simple_namespace": SimpleNamespace,
            "dataclass": dataclass_class(topic),
            "attrs": attrs_class(topic),
            "msgspec": msgspec_class(topic),
        }[self.postprocess]

    # ------------------------------------------------------------------ start positions

    def _assign(self, history: bool | None) -> None:
        """Assign every partition at its start; read the history partitions until
        each one's end (its first end-of-partition event), so that history comes
        whole and first. Live reading starts at the high watermark the broker
        reported, which is the partition's end (the last committed offset + 1)."""
        timeout = self.config.timeout
        try:
            metadata = self.consumer.list_topics(timeout=timeout)
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
            wants_history = topic.kind == "event" if history is None else history
            for partition in sorted(meta.partitions):
                tp = TopicPartition(topic.kafka_name, partition)
                if self._start_position not in (None, "end"):
                    assignment.append(TopicPartition(topic.kafka_name, partition, self._offset_of(tp)))
                    continue
                wants_history = wants_history and self._start_position is None
                low, high = self._watermarks(tp)
                if not wants_history or high <= low:
                    assignment.append(TopicPartition(topic.kafka_name, partition, high))
                    continue
                # the newest per salIndex within a bounded look-back (one message when not indexed; a
                # compacted topic may have gaps, so the look-back ends at the end-of-partition event)
                start = max(low, high - self.max_history_read) if topic.indexed else high - 1
                self._partitions[(topic.kafka_name, partition)] = _Partition(topic)
                assignment.append(TopicPartition(topic.kafka_name, partition, start))
        self.consumer.assign(assignment)
        deadline = _monotonic() + timeout
        while self._partitions and _monotonic() < deadline:
            self._fill(0.05)

    def _watermarks(self, tp: TopicPartition) -> tuple[int, int]:
        """A partition's low and high watermarks, retried while the broker answers with a
        retriable error (a topic another process just made has no leader for a moment)."""
        deadline = _monotonic() + self.config.timeout
        while True:
            try:
                low, high = self.consumer.get_watermark_offsets(tp, timeout=self.config.timeout)
                return int(low), int(high)
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                if not (isinstance(error, KafkaError) and _retriable(error)) or _monotonic() > deadline:
                    raise KafkaIOError(
                        f"{tp.topic} [{tp.partition}]: cannot read its offsets at {self.config.bootstrap_servers}: "
                        f"{error.str() if isinstance(error, KafkaError) else exc}"
                    ) from None
                _sleep(0.05)

    def _offset_of(self, tp: TopicPartition) -> int:
        """The offset a start position names in one partition."""
        start = self._start_position
        if isinstance(start, Mapping):
            return int(start.get((tp.topic, tp.partition), OFFSET_BEGINNING))
        if start == "beginning":
            return OFFSET_BEGINNING
        if isinstance(start, int):
            return start
        if isinstance(start, datetime.datetime):
            moment = start if start.tzinfo else start.replace(tzinfo=datetime.UTC)
            wanted = TopicPartition(tp.topic, tp.partition, int(moment.timestamp() * 1000))
            try:
                (found,) = self.consumer.offsets_for_times([wanted], timeout=self.config.timeout)
            except KafkaException as exc:
                raise KafkaIOError(f"{tp.topic}: cannot find the offset of {moment.isoformat()}: {exc}") from None
            return found.offset if found.offset >= 0 else OFFSET_END  # none at or after it: the end
        raise ConfigError(f"start must be 'beginning', 'end', an offset or a datetime, got {start!r}")

    # ------------------------------------------------------------------ reading

    def _decode(self, message: Any, name: str, offset: int) -> Received | None:
        value = message.value() or b""
        stats = self.stats
        stats.received += 1
        stats.bytes_received += len(value)
        counts = self._counts[name]
        counts[0] += 1
        counts[1] += len(value)
        decode, cls, attr_name = self._routes[name]
        try:  # straight into the class when there is one: no intermediate dict
            data = decode(value, cls, self._writer_schema)
        except (SalKafkaError, TypeError) as exc:
            stats.undecodable += 1
            counts[2] += 1
            log.warning("undecodable message on %s [%d] at offset %d: %s", name, message.partition(), offset, exc)
            return None
        rcv = _time() + TAI_MINUS_UTC
        if cls is None:
            if self.index is not None and data.get("salIndex") != self.index:
                stats.filtered += 1
                return None
            data["private_rcvStamp"] = rcv
            if self._latencies is not None:
                self._latencies[name].add(rcv - data["private_sndStamp"])
        else:
            if self.index is not None and getattr(data, "salIndex", None) != self.index:
                stats.filtered += 1
                return None
            data.private_rcvStamp = rcv
            if self._latencies is not None:
                self._latencies[name].add(rcv - data.private_sndStamp)
        return Received(
            attr_name, data, message.partition(), offset, len(value), False, message.key(), message.timestamp()[1], name
        )

    def _take(self, messages: list[Any]) -> None:
        """Queue a batch. Live messages stay raw and are decoded one by one in
        `next`: a batch of decoded 3 kB records (10^5 float objects) costs
        twice as much to build as records decoded and dropped one at a time."""
        partitions, buffer = self._partitions, self._buffer
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    # all of the partition that existed is read: its end at start is known
                    # (also when compaction removed its last messages)
                    state = partitions.pop((message.topic(), message.partition()), None)
                    if state is not None:
                        self._release(state)
                elif error.code() == KafkaError._AUTO_OFFSET_RESET:
                    self._resume_from_start(message.topic(), message.partition(), error)
                else:
                    log.warning("Kafka error on %s: %s", message.topic(), error.str())
                continue
            state = partitions.get((message.topic(), message.partition())) if partitions else None
            if state is None:
                buffer.append(message)
            elif (received := self._decode(message, message.topic(), message.offset())) is not None:
                received.history = True  # keep the newest per salIndex
                data = received.data
                key = data.get("salIndex") if isinstance(data, dict) else getattr(data, "salIndex", None)
                state.pending[key] = received

    # ------------------------------------------------------------------ the broker's state

    def _on_error(self, error: KafkaError) -> None:
        """librdkafka's error callback (in a librdkafka thread)."""
        self.session.note_broker_error(error)
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            if self._down_since is None:
                self._down_since = _monotonic()
                self.stats.broker_down_events += 1
                log.error("all brokers at %s are down: the reader waits for them", self.config.bootstrap_servers)
        elif error.code() != KafkaError._TRANSPORT:  # transport errors come with every reconnect attempt
            broker_log.warning("Kafka error: %s", error.str())

    @property
    def broker_down(self) -> bool:
        """True while the brokers are unreachable (librdkafka reported all of them down)."""
        return self._down_since is not None

    @property
    def broker_down_for(self) -> float:
        """Seconds the brokers have been down (0 when they are up)."""
        return 0.0 if self._down_since is None else _monotonic() - self._down_since

    def _broker_back(self) -> None:
        if self._down_since is not None:
            log.warning("the brokers at %s are back after %.1f s", self.config.bootstrap_servers, self.broker_down_for)
            self._down_since = None

    def _probe(self) -> None:
        """While down and idle, ask for metadata now and then: an answer means the brokers are back."""
        now = _monotonic()
        if now < self._next_probe:
            return
        self._next_probe = now + 1.0
        try:
            self.consumer.list_topics(timeout=0.5)
        except KafkaException:
            return
        self._broker_back()

    def _resume_from_start(self, topic: str, partition: int, error: KafkaError | str) -> None:
        """The broker no longer has our position (its log was lost or truncated):
        go on from the first message it has, and say so."""
        self.stats.offset_resets += 1
        log.warning(
            "%s [%d]: the broker no longer has this reader's position (its log was lost or truncated): "
            "reading resumes from the first message it has (%s)",
            topic,
            partition,
            error if isinstance(error, str) else error.str(),
        )
        try:  # the partition stopped on the error: a seek is refused ("erroneous state"), a new assignment is not
            self.consumer.incremental_unassign([TopicPartition(topic, partition)])
            self.consumer.incremental_assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        except KafkaException as exc:
            log.error("%s [%d]: cannot resume: %s", topic, partition, exc)

    def drain(self, limit: int) -> list[Received]:
        """Up to ``limit`` messages already fetched, without waiting (counted as delivered)."""
        taken: list[Received] = []
        while len(taken) < limit and (received := self._pop()) is not None:
            taken.append(received)
        self.stats.delivered += len(taken)
        return taken

    def _pop(self) -> Received | None:
        """The next decoded message of the buffer, or None when it is empty."""
        buffer = self._buffer
        while buffer:
            item = buffer.popleft()
            if type(item) is Received:
                return item
            received = self._decode(item, item.topic(), item.offset())
            if received is not None:
                return received
        return None

    def _release(self, state: _Partition) -> None:
        """The partition's history is whole: deliver it (oldest first), then live."""
        self._buffer.extend(sorted(state.pending.values(), key=lambda r: r.offset))

    def _fill(self, timeout: float) -> None:
        """Take what Kafka has ready; wait up to ``timeout`` only when it has nothing.

        ``consume(n, t)`` would wait for ``n`` messages or ``t``: at 50 Hz that
        is a second of latency. ``poll`` returns the first message as it comes.
        """
        consumer = self.consumer
        try:
            messages = consumer.consume(num_messages=500, timeout=0)
            if not messages:
                first = consumer.poll(timeout)
                if first is not None:
                    messages = [first, *consumer.consume(num_messages=499, timeout=0)]
        except KafkaException as exc:
            raise KafkaIOError(f"reading from {self.config.bootstrap_servers}: {exc}") from None
        if messages:
            if self._down_since is not None:
                self._broker_back()
            self._take(messages)
        elif self._down_since is not None:
            self._probe()
        elif self._partitions and _monotonic() > self._history_deadline:
            # a partition's end should have been reported long ago (librdkafka reports
            # it after every fetch that reaches it): deliver its history rather than hold it
            for key in list(self._partitions):
                self._release(self._partitions.pop(key))

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
        return {self._attr_names[k]: (c[0], c[1], c[2]) for k, c in self._counts.items()}

    def latencies(self) -> dict[str, LatencyHistogram]:
        """``{attr_name: histogram}`` of ``private_rcvStamp - private_sndStamp`` (kept with metrics on)."""
        return {self._attr_names[k]: h for k, h in (self._latencies or {}).items()}

    def lags(self) -> list[tuple[str, int, int]]:
        """``(kafka topic, partition, high watermark - position)`` of every assigned partition,
        from librdkafka's cached watermarks (no request to the broker)."""
        if self._closed:
            return []
        try:
            positions = self.consumer.position(self.consumer.assignment())
        except KafkaException:
            return []
        lags = []
        for tp in positions:
            if tp.offset < 0:
                continue
            try:
                _, high = self.consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                continue
            if high >= 0:
                lags.append((tp.topic, tp.partition, max(0, high - tp.offset)))
        return lags

    @property
    def history_done(self) -> bool:
        """True once the history of every partition is in (history first, then live)."""
        return not self._partitions

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


class AsyncReader:
    """asyncio face of `Reader`: same arguments; ``async for`` and ``await next()``.

    A worker thread reads Kafka and hands batches to the loop through a bounded
    queue; when the queue is full the thread waits (backpressure, no loss).
    Callbacks (functions or coroutine functions) given to `add_callback` are
    called in the loop, for each message `next` returns.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args, self._kwargs = args, kwargs
        self.reader: Reader | None = None
        self._queue: asyncio.Queue[list[Received]] | None = None
        self._pending: deque[Received] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._callbacks: list[Callable[[Received], Any]] = []
        self._error: BaseException | None = None

    async def start(self) -> AsyncReader:
        """Assign partitions (in a thread: network calls), then start reading."""
        self.reader = await asyncio.to_thread(Reader, *self._args, **self._kwargs)
        loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue(maxsize=max(1, self.reader.queue_size // 500))
        self._thread = threading.Thread(target=self._pump, args=(loop,), name="sal-kafka-reader", daemon=True)
        self._thread.start()
        return self

    def add_callback(self, callback: Callable[[Received], Any]) -> None:
        """Call ``callback(received)`` for each message."""
        self._callbacks.append(callback)

    def _pump(self, loop: asyncio.AbstractEventLoop) -> None:
        reader, queue = self.reader, self._queue
        assert reader is not None and queue is not None
        try:
            while not self._stop.is_set():
                first = reader.next(0.2)
                if first is None:
                    continue
                batch = [first, *reader.drain(499)]
                future = asyncio.run_coroutine_threadsafe(queue.put(batch), loop)
                while not self._stop.is_set():  # wait for room: backpressure, no loss
                    try:
                        future.result(0.2)
                        break
                    except TimeoutError:
                        continue
        except BaseException as exc:  # surfaced by next()
            self._error = exc
            loop.call_soon_threadsafe(queue.put_nowait, [])

    async def next(self, timeout: float | None = None) -> Received | None:
        """The next message, or None after ``timeout`` seconds."""
        if self._queue is None:
            raise KafkaIOError("the reader is not started: call 'await reader.start()' first")
        while not self._pending:
            if self._error is not None:
                raise KafkaIOError(f"the reader thread failed: {self._error}") from self._error
            try:
                batch = await asyncio.wait_for(self._queue.get(), timeout)
            except TimeoutError:
                return None
            self._pending.extend(batch)
        received = self._pending.popleft()
        for callback in self._callbacks:
            result = callback(received)
            if asyncio.iscoroutine(result):
                await result
        return received

    def __aiter__(self) -> AsyncReader:
        return self

    async def __anext__(self) -> Received:
        while True:
            received = await self.next(1.0)
            if received is not None:
                return received
            if self._stop.is_set():
                raise StopAsyncIteration

    async def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)
        if self.reader is not None:
            await asyncio.to_thread(self.reader.close)

    async def __aenter__(self) -> AsyncReader:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def stats(self) -> ReaderStats:
        if self.reader is None:
            raise KafkaIOError("the reader is not started: call 'await reader.start()' first")
        return self.reader.stats
