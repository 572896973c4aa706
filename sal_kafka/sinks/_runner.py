"""The exactly-once loop of every sink, apart from where the rows go.

A `SinkRunner` reads components' topics (one `Reader` per component, read in
turn), groups messages into batches (``batch_size`` rows or ``max_delay``
seconds), and hands each batch with the Kafka offsets it reaches to its
`Backend`, which stores both in one transaction. On start it resumes from the
offsets the back-end stored, so a sink killed at any moment and started again
stores every message once. A back-end that is down (`SinkUnavailableError`) is
retried with back-off (0.5 s doubling to 30 s) while the batch waits in memory.
A second back-end (InfluxDB, Parquet) implements `Backend`; this loop stays.

No message stops a sink or is lost: one that cannot be decoded, or whose row
cannot be made (a ``private_efdStamp`` of NaN or 1e20) or stored (the database
refuses it), is *set aside*: kept whole (topic, partition, offset, the raw
bytes, the reason) by the back-end in the same transaction as the batch,
counted (``SinkStats.set_aside``, ``sal_kafka_sink_refused_total``) and logged
once per topic and kind; the batch goes on.
"""

from __future__ import annotations

import collections
import datetime
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import attrs
from confluent_kafka import KafkaException, TopicPartition

from .._stats import LatencyHistogram
from ..errors import SinkError, SinkUnavailableError
from ..kafka import KafkaConfig, Reader, Received, Session
from ..schemas._model import ComponentInfo, TopicInfo

__all__ = ["Backend", "Batch", "SetAside", "SinkRunner", "SinkStats"]

log = logging.getLogger("sal_kafka.sink")


#: seconds between a sink's progress lines (logged at INFO: ``sal-kafka -v sink ...``)
PROGRESS_INTERVAL = 30.0


@attrs.frozen
class SetAside:
    """A message a sink could not store as a row, kept whole instead.

    ``kind`` is ``undecodable`` (not a message of its topic), ``row`` (its row
    cannot be made, e.g. a NaN ``private_efdStamp``) or ``refused`` (the store
    refused the row); ``reason`` says why; ``value`` is the message's bytes.
    """

    kafka_topic: str
    partition: int
    offset: int
    kind: str
    reason: str
    value: bytes
    timestamp: int = 0  # the message's Kafka timestamp, ms


@attrs.define
class Batch:
    """What one transaction stores: ``rows`` per topic (``sources``: the `Received` each
    row was made of, in the same order), the messages set ``aside``, and the next
    offset of each partition (``positions``)."""

    rows: dict[TopicInfo, list[Any]] = attrs.Factory(dict)
    sources: dict[TopicInfo, list[Received]] = attrs.Factory(dict)
    aside: list[SetAside] = attrs.Factory(list)
    positions: dict[tuple[str, int], int] = attrs.Factory(dict)
    count: int = 0
    newest: float = 0.0  # Kafka time (s) of the newest message
    first_at: float = 0.0  # monotonic time of its first message
    times: dict[tuple[str, int], float] = attrs.Factory(dict)  # newest Kafka time (s) per partition

    def add(self, topic: TopicInfo, row: Any, received: Received) -> None:
        rows = self.rows.get(topic)
        if rows is None:
            rows = self.rows[topic] = []
            self.sources[topic] = []
        rows.append(row)
        self.sources[topic].append(received)

    def reached(self, kafka_topic: str, partition: int, offset: int, timestamp_ms: int) -> None:
        """One more message read (stored, or set aside)."""
        self.positions[(kafka_topic, partition)] = offset + 1
        self.newest = max(self.newest, timestamp_ms / 1000.0)
        self.times[(kafka_topic, partition)] = timestamp_ms / 1000.0
        if self.count == 0:
            self.first_at = time.monotonic()
        self.count += 1


class Backend(Protocol):
    """Where a sink stores its rows: one table (or measurement, or file) per topic, and
    the Kafka offsets each batch reaches, committed together."""

    #: what messages name the store by (a URL without its password)
    where: str

    def prepare(self, topics: Sequence[TopicInfo]) -> object:
        """Connect and make (or check) each topic's table; raise `SinkError` when it cannot.
        What it returns (a connection, say) is what `SinkRunner.connect` returns."""

    def stored_offsets(self) -> dict[tuple[str, int], int]:
        """``{(kafka topic, partition): next offset}`` committed so far."""

    def table_name(self, topic: TopicInfo) -> str:
        """The name rows of ``topic`` are counted under (``SinkStats.rows``)."""

    def row(self, topic: TopicInfo, received: Received) -> Any:
        """What `write` stores of one message (done as messages arrive)."""

    def write(self, batch: Batch) -> list[SetAside]:
        """Store every row of ``batch``, its messages set aside and its offsets in one
        transaction. A row the store refuses is found (the batch is split until it is),
        set aside too and returned; the others are stored. Raise `SinkUnavailableError`
        when the store is down (then nothing is stored, and it is retried), `SinkError`
        when it cannot store a topic at all (a table changed by hand)."""

    def reconnect(self) -> None:
        """After `SinkUnavailableError`: try to connect again (quietly: the next `write` says)."""

    def close(self) -> None: ...


class SinkStats:
    """What a sink did: ``rows`` (per table), ``batches``, ``set_aside``
    (``{(kafka topic, kind): n}``, see `SetAside`), ``dropped_fields``
    (``{(kafka topic, field): n}``: a newer writer's values no column holds),
    ``batch_seconds`` (a histogram), ``retries`` (store down)."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.set_aside: dict[tuple[str, str], int] = {}
        self.dropped_fields: dict[tuple[str, str], int] = {}  # (kafka topic, field): values dropped
        self.batches = 0
        self.retries = 0
        self.last_kafka_time = 0.0  # Kafka timestamp (s) of the newest message committed
        #: ``{(kafka topic, partition): next offset}`` committed (from the store at start)
        self.committed: dict[tuple[str, int], int] = {}
        #: ``{(kafka topic, partition): Kafka time (s)}`` of the newest message committed
        self.committed_times: dict[tuple[str, int], float] = {}
        self.batch_seconds = LatencyHistogram(resolution=0.001, limit=10.0)


class SinkRunner:
    """Store the messages of components' topics through ``backend``, exactly once.

    Parameters
    ----------
    backend : Backend
    components : sequence of str or ComponentInfo
        The components whose events and telemetry (and commands, acks) are stored.
    config : KafkaConfig, optional
        Kafka and registry settings (default from the environment).
    session : Session, optional
        The process's session (metrics, shared registry client).
    batch_size : int
        Rows per transaction at most.
    max_delay : float
        Seconds a row waits for its batch to fill at most.
    topics : iterable of str, optional
        Only these attr names (``tel_x``, ``evt_x``); default every topic.
    """

    def __init__(
        self,
        backend: Backend,
        components: Sequence[str | ComponentInfo],
        *,
        config: KafkaConfig | None = None,
        session: Session | None = None,
        batch_size: int = 5000,
        max_delay: float = 0.5,
        topics: Iterable[str] | None = None,
        group_id: str = "sal-kafka-sink",
        since: datetime.datetime | None = None,
        until: datetime.datetime | None = None,
    ) -> None:
        self.backend = backend
        self.group_id = group_id
        #: where partitions never stored start (the first message at or after it; else the beginning)
        self.since = since
        #: the end of a backfill: `run` returns once every partition is stored up to it
        self.until = until
        self._own_session = session is None
        self.session = session or Session(config)
        self.components = [self.session.component(c) for c in components]
        wanted = set(topics) if topics is not None else None
        self.topics = [t for c in self.components for t in c if wanted is None or t.attr_name in wanted]
        if not self.topics:
            raise SinkError(f"no topic to store (components {[c.name for c in self.components]}, topics {wanted})")
        self._by_name = {t.kafka_name: t for t in self.topics}
        self.batch_size = batch_size
        self.max_delay = max_delay
        self.stats = SinkStats()
        self._reader: _MultiReader | None = None  # while it runs: its readers note the high watermarks
        self._started = time.time()
        self._prepared = False
        self._stop = threading.Event()
        if self.session.metrics is not None:
            self.session.metrics.add_source(self._samples)

    def connect(self) -> object:
        """Connect the back-end and make its tables (idempotent); raise `SinkError` when it
        cannot. Returns what the back-end's `Backend.prepare` gives."""
        prepared = self.backend.prepare(self.topics)
        self._prepared = True
        return prepared

    def stored_offsets(self) -> dict[tuple[str, int], int]:
        """``{(kafka topic, partition): next offset}`` committed so far (of this sink's topics)."""
        if not self._prepared:
            self.connect()
        return {k: v for k, v in self.backend.stored_offsets().items() if k[0] in self._by_name}

    def stop(self) -> None:
        """Ask `run` to commit what it has and return."""
        self._stop.set()

    def run(self, duration: float | None = None) -> None:
        """Read and store until `stop` (or ``duration`` seconds); then commit and close.

        Raises
        ------
        SinkError
            When the back-end cannot be used at start (down, refused, an incompatible table).
        """
        offsets = self.stored_offsets()
        partitions: list[tuple[str, int]] = []
        if self.since is not None or self.until is not None:
            partitions, offsets = self._range_start(offsets)
        until_ms = int(self.until.timestamp() * 1000) if self.until is not None else None
        past_until: set[tuple[str, int]] = set()
        batch = Batch()

        def undecodable(message: Any, exc: Exception) -> None:  # kept, never skipped
            kafka_time = message.timestamp()[1]
            batch.aside.append(
                SetAside(
                    message.topic(),
                    message.partition(),
                    message.offset(),
                    "undecodable",
                    str(exc),
                    message.value() or b"",
                    kafka_time,
                )
            )
            batch.reached(message.topic(), message.partition(), message.offset(), kafka_time)

        self.stats.committed.update(offsets)
        reader = self._reader = _MultiReader(
            self.session, self.components, self.topics, offsets, undecodable, self.group_id
        )
        end = None if duration is None else time.monotonic() + duration
        row, by_name = self.backend.row, self._by_name
        log.info(
            "storing %d topics of %s in %s from Kafka at %s (resuming %d partitions from the store's offsets; "
            "offsets also committed to the consumer group %s); batches of %d rows or %.1f s",
            len(self.topics),
            ", ".join(c.name for c in self.components),
            self.backend.where,
            self.session.config.bootstrap_servers,
            len(offsets),
            self.group_id,
            self.batch_size,
            self.max_delay,
        )
        progress_at, progress_rows = time.monotonic() + PROGRESS_INTERVAL, 0
        try:
            while not self._stop.is_set() and (end is None or time.monotonic() < end):
                received = reader.next(min(0.1, self.max_delay))
                if received is not None and until_ms is not None and received.timestamp > until_ms:
                    past_until.add((received.kafka_topic, received.partition))  # not stored, nor committed past
                    received = None
                if received is not None:
                    topic = by_name[received.kafka_topic]
                    try:
                        batch.add(topic, row(topic, received), received)
                    except Exception as exc:  # a row that cannot be made: kept whole, never a stop
                        batch.aside.append(
                            SetAside(
                                received.kafka_topic,
                                received.partition,
                                received.offset,
                                "row",
                                f"{type(exc).__name__}: {exc}",
                                received.value,
                                received.timestamp,
                            )
                        )
                    batch.reached(received.kafka_topic, received.partition, received.offset, received.timestamp)
                if batch.count and (
                    batch.count >= self.batch_size or time.monotonic() - batch.first_at >= self.max_delay
                ):
                    self._commit(batch)
                    batch = Batch()
                if until_ms is not None and self._backfilled(partitions, past_until, batch, reader):
                    log.info("stored every message up to %s: the backfill is done", self.until)
                    break
                if time.monotonic() >= progress_at:
                    stored = sum(self.stats.rows.values())
                    log.info(
                        "stored %d rows in %d tables (%.0f rows/s over the last %g s), %d set aside, %d batches",
                        stored,
                        len(self.stats.rows),
                        (stored - progress_rows) / PROGRESS_INTERVAL,
                        PROGRESS_INTERVAL,
                        sum(self.stats.set_aside.values()),
                        self.stats.batches,
                    )
                    progress_at, progress_rows = time.monotonic() + PROGRESS_INTERVAL, stored
            if batch.count:
                self._commit(batch)
        finally:
            self._reader = None
            reader.close()
            self.backend.close()
            self._prepared = False
            if self._own_session:
                self.session.close()

    def _commit(self, batch: Batch) -> None:
        """One transaction: every table's rows, what is set aside, then the offsets they
        reach; retried with back-off while the store is down (the rows wait here, in memory)."""
        delay = 0.5
        while True:
            start = time.monotonic()
            try:
                refused = self.backend.write(batch)
                break
            except SinkUnavailableError as exc:
                self.stats.retries += 1
                log.error("%s: %s; retrying in %.1f s (nothing is committed yet)", self.backend.where, exc, delay)
                if self._stop.wait(delay):
                    raise SinkError(
                        f"stopped while {self.backend.where} was down: the last batch is not stored"
                    ) from None
                delay = min(delay * 2, 30.0)
                self.backend.reconnect()
        self.stats.batch_seconds.add(time.monotonic() - start)
        self.stats.batches += 1
        self.stats.last_kafka_time = max(self.stats.last_kafka_time, batch.newest)
        self.stats.committed.update(batch.positions)
        self.stats.committed_times.update(batch.times)
        if self._reader is not None:  # after the store's commit: the store stays the source of truth
            self._reader.commit_offsets(batch.positions)
        refused_at = {(a.kafka_topic, a.partition, a.offset) for a in refused}
        for topic, sources in batch.sources.items():
            name = self.backend.table_name(topic)
            stored = len(sources) - sum((r.kafka_topic, r.partition, r.offset) in refused_at for r in sources)
            self.stats.rows[name] = self.stats.rows.get(name, 0) + stored
        for aside in (*batch.aside, *refused):
            key = (aside.kafka_topic, aside.kind)
            if key not in self.stats.set_aside:
                log.warning(
                    "%s [%d] offset %d set aside (%s): %s; kept whole in %s, counted in "
                    "sal_kafka_sink_refused_total (logged once per topic and kind)",
                    aside.kafka_topic,
                    aside.partition,
                    aside.offset,
                    aside.kind,
                    aside.reason,
                    self.backend.where,
                )
            self.stats.set_aside[key] = self.stats.set_aside.get(key, 0) + 1

    def _range_start(
        self, offsets: dict[tuple[str, int], int]
    ) -> tuple[list[tuple[str, int]], dict[tuple[str, int], int]]:
        """For a backfill, with one consumer: ``(kafka topic, partition)`` of every topic
        stored (asked of the broker), and ``offsets`` with, for each partition never stored
        and a `since`, the first offset at or after it (the broker's ``offsets_for_times``;
        its end when nothing is that new)."""
        consumer = self.session.consumer(**{"group.id": self.group_id})
        try:
            metadata = consumer.list_topics(timeout=self.session.config.timeout)
            partitions = []
            for topic in self.topics:
                meta = metadata.topics.get(topic.kafka_name)
                if meta is not None and meta.error is None:
                    partitions += [(topic.kafka_name, p) for p in sorted(meta.partitions)]
            new = [tp for tp in partitions if tp not in offsets]
            if self.since is None or not new:
                return partitions, offsets
            at = int(self.since.timestamp() * 1000)
            found = consumer.offsets_for_times([TopicPartition(t, p, at) for t, p in new], timeout=10)
            result = dict(offsets)
            for tp in found:
                if tp.offset >= 0:
                    result[(tp.topic, tp.partition)] = tp.offset
                else:  # nothing at or after since: from its end
                    result[(tp.topic, tp.partition)] = consumer.get_watermark_offsets(tp, timeout=10)[1]
            log.info("%d partitions never stored start at %s", len(new), self.since)
            return partitions, result
        except KafkaException as exc:
            raise SinkError(
                f"cannot find where to start at Kafka {self.session.config.bootstrap_servers}: {exc}"
            ) from None
        finally:
            consumer.close()

    def _backfilled(
        self,
        partitions: list[tuple[str, int]],
        past_until: set[tuple[str, int]],
        batch: Batch,
        reader: _MultiReader,
    ) -> bool:
        """True once every partition has shown a message after `until`, or is read to the
        end that its reader last noted."""
        highs = reader.high_watermarks()
        for tp in partitions:
            if tp in past_until:
                continue
            reached = batch.positions.get(tp, self.stats.committed.get(tp, 0))
            if tp not in highs or reached < highs[tp]:
                return False
        return True

    def _samples(self, families: Any) -> None:
        from ..observe._metrics import add_histogram  # metrics are on: prometheus-client is there

        for table, n in self.stats.rows.items():
            families.add("sal_kafka_sink_rows_total", (table,), n)
        families.add("sal_kafka_sink_batches_total", (), self.stats.batches)
        for (kafka_topic, kind), n in self.stats.set_aside.items():
            families.add("sal_kafka_sink_refused_total", (kafka_topic, kind), n)
        for (kafka_topic, field), n in self.stats.dropped_fields.items():
            families.add("sal_kafka_sink_dropped_fields_total", (kafka_topic, field), n)
        add_histogram(families.get("sal_kafka_sink_batch_seconds"), [], self.stats.batch_seconds)
        reader = self._reader
        if reader is None:
            return
        now = time.time()
        for (kafka_topic, partition), high in reader.high_watermarks().items():
            # behind the broker's end: what is written and not committed to the store
            behind = max(0, high - self.stats.committed.get((kafka_topic, partition), 0))
            families.add("sal_kafka_sink_lag_messages", (kafka_topic, str(partition)), behind)
            # a quiet partition all stored is 0 s behind, however old its last message
            stored_at = self.stats.committed_times.get((kafka_topic, partition))
            if not behind:
                families.add("sal_kafka_sink_lag_seconds", (kafka_topic, str(partition)), 0.0)
            elif stored_at is not None:
                families.add("sal_kafka_sink_lag_seconds", (kafka_topic, str(partition)), max(0.0, now - stored_at))
            else:  # nothing of it stored by this sink yet: behind by at least its run time
                families.add("sal_kafka_sink_lag_seconds", (kafka_topic, str(partition)), now - self._started)


class _MultiReader:
    """One `Reader` per component, read in turn (a sink of several components)."""

    def __init__(
        self,
        session: Session,
        components: list[ComponentInfo],
        topics: list[TopicInfo],
        offsets: dict[tuple[str, int], int],
        on_undecodable: Callable[[Any, Exception], None],
        group_id: str,
    ) -> None:
        self.readers = [
            Reader(
                c,
                [t.attr_name for t in topics if t.component_name == c.name],
                session=session,
                start=offsets,
                arrays="numpy",  # no Python float per array item: stored from the buffer
                on_undecodable=on_undecodable,
                group_id=group_id,
            )
            for c in components
            if any(t.component_name == c.name for t in topics)
        ]
        self._next = 0
        self._ready: collections.deque[Received] = collections.deque()

    def next(self, timeout: float) -> Received | None:
        """The next message of any reader: first what any has ready (in turn, a batch at
        a time), then a wait shared among them (an idle component must not slow a busy one)."""
        if self._ready:
            return self._ready.popleft()
        for wait in (0.001, timeout / len(self.readers)):
            for _ in range(len(self.readers)):
                reader = self.readers[self._next]
                self._next = (self._next + 1) % len(self.readers)
                received = reader.next(wait)
                if received is not None:
                    self._ready.extend(reader.drain(999))
                    return received
        return None

    def commit_offsets(self, offsets: dict[tuple[str, int], int]) -> None:
        for reader in self.readers:
            reader.commit_offsets(offsets)

    def high_watermarks(self) -> dict[tuple[str, int], int]:
        """Every reader's `Reader.high_watermarks` (noted by its reading thread)."""
        found: dict[tuple[str, int], int] = {}
        for reader in self.readers:
            found.update(reader.high_watermarks())
        return found

    def close(self) -> None:
        for reader in self.readers:
            reader.close()
