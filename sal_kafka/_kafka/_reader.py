"""Read topics of a component from Kafka, with ts_salobj's history rules."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from time import monotonic as _monotonic
from time import time as _time
from types import SimpleNamespace
from typing import Any

import attrs
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from .._classes import attrs_class, dataclass_class, msgspec_class
from .._codec import Codec
from .._errors import ConfigError, KafkaIOError, SalKafkaError
from .._model import ComponentInfo, TopicInfo
from .._registry import SchemaRegistry
from .._types import POSTPROCESS, Arrays, Postprocess
from ._config import KafkaConfig
from ._session import Session
from ._time import TAI_MINUS_UTC

__all__ = ["Reader", "AsyncReader", "Received", "ReaderStats", "POSTPROCESS"]

log = logging.getLogger("sal_kafka.reader")


@attrs.define(slots=True)
class Received:
    """One message read: the topic's attr name, the data, where it was.

    ``key`` is the message's Kafka key (``b""`` for telemetry), ``timestamp``
    its Kafka timestamp in ms (creation time), ``history`` True for history
    delivered at start.
    """

    topic: str
    data: Any
    partition: int
    offset: int
    size: int
    history: bool = False
    key: bytes | None = None
    timestamp: int = 0


@attrs.define
class ReaderStats:
    """Counters: ``received`` from Kafka, ``delivered`` to the caller,
    ``undecodable`` (logged and skipped), ``filtered`` (other salIndex)."""

    received: int = 0
    delivered: int = 0
    undecodable: int = 0
    filtered: int = 0
    bytes_received: int = 0


@attrs.define
class _Partition:
    """History bookkeeping of one assigned partition."""

    topic: TopicInfo
    history_end: int  # offsets below are history
    pending: dict[Any, Received] = attrs.field(factory=dict)


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
        self._buffer: deque[Any] = deque()  # raw Kafka messages, and decoded history
        if create_topics:
            session.ensure_topics(self.topics)
        registry = session.registry
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
            }
        )
        self._partitions: dict[tuple[str, int], _Partition] = {}
        try:
            self._assign(history)
        except BaseException:
            self.consumer.close()
            raise
        self._history_deadline = _monotonic() + 3 * self.config.timeout

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
        timeout = self.config.timeout
        try:
            metadata = self.consumer.list_topics(timeout=timeout)
        except KafkaException as exc:
            raise KafkaIOError(f"cannot reach the Kafka broker at {self.config.bootstrap_servers}: {exc}") from None
        assignment = []
        for topic in self.topics:
            meta = metadata.topics.get(topic.kafka_name)
            if meta is None or meta.error is not None:
                raise KafkaIOError(f"topic {topic.kafka_name} does not exist at {self.config.bootstrap_servers}")
            wants_history = topic.kind == "event" if history is None else history
            for partition in sorted(meta.partitions):
                tp = TopicPartition(topic.kafka_name, partition)
                low, high = self.consumer.get_watermark_offsets(tp, timeout=timeout)
                if not wants_history or high <= low:
                    start = high
                elif topic.indexed:  # the newest per salIndex, within a bounded look-back
                    start = max(low, high - self.max_history_read)
                else:
                    start = high - 1
                if wants_history and start < high:
                    self._partitions[(topic.kafka_name, partition)] = _Partition(topic, high)
                assignment.append(TopicPartition(topic.kafka_name, partition, start))
        self.consumer.assign(assignment)

    # ------------------------------------------------------------------ reading

    def _decode(self, message: Any, name: str, offset: int) -> Received | None:
        value = message.value() or b""
        stats = self.stats
        stats.received += 1
        stats.bytes_received += len(value)
        decode, cls, attr_name = self._routes[name]
        try:  # straight into the class when there is one: no intermediate dict
            data = decode(value, cls, self._writer_schema)
        except (SalKafkaError, TypeError) as exc:
            stats.undecodable += 1
            log.warning("undecodable message on %s [%d] at offset %d: %s", name, message.partition(), offset, exc)
            return None
        rcv = _time() + TAI_MINUS_UTC
        if cls is None:
            if self.index is not None and data.get("salIndex") != self.index:
                stats.filtered += 1
                return None
            data["private_rcvStamp"] = rcv
        else:
            if self.index is not None and getattr(data, "salIndex", None) != self.index:
                stats.filtered += 1
                return None
            data.private_rcvStamp = rcv
        return Received(
            attr_name, data, message.partition(), offset, len(value), False, message.key(), message.timestamp()[1]
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
                    # all of the partition that existed is read: its history is complete
                    # (also when compaction removed its last messages)
                    state = partitions.get((message.topic(), message.partition()))
                    if state is not None:
                        self._release(state)
                else:
                    log.warning("Kafka error on %s: %s", message.topic(), error.str())
                continue
            state = partitions.get((message.topic(), message.partition())) if partitions else None
            if state is None:
                buffer.append(message)
                continue
            offset = message.offset()
            if offset >= state.history_end:  # live: history, if any, goes first
                self._release(state)
                buffer.append(message)
                continue
            received = self._decode(message, message.topic(), offset)
            if received is not None:  # history: keep the newest per salIndex
                received.history = True
                data = received.data
                key = data.get("salIndex") if isinstance(data, dict) else getattr(data, "salIndex", None)
                state.pending[key] = received
            if offset >= state.history_end - 1:
                self._release(state)

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
        """Deliver a partition's history; from now on it is live and untracked."""
        self._buffer.extend(sorted(state.pending.values(), key=lambda r: r.offset))
        state.pending.clear()
        for key, value in list(self._partitions.items()):
            if value is state:
                del self._partitions[key]

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
            self._take(messages)
        elif self._partitions and _monotonic() > self._history_deadline:
            # a partition's end should have been reported long ago: deliver its
            # history rather than hold it (never reached on a broker that reports it)
            for state in list(self._partitions.values()):
                self._release(state)

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
