"""The exactly-once loop of every sink, apart from where the rows go.

A `SinkRunner` reads components' topics (one `Reader` per component, read in
turn), groups messages into batches (``batch_size`` rows or ``max_delay``
seconds), and hands each batch with the Kafka offsets it reaches to its
`Backend`, which stores both in one transaction. On start it resumes from the
offsets the back-end stored, so a sink killed at any moment and started again
stores every message once. A back-end that is down (`SinkUnavailableError`) is
retried with back-off (0.5 s doubling to 30 s) while the batch waits in memory.
A second back-end (InfluxDB, Parquet) implements `Backend`; this loop stays.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from .._stats import LatencyHistogram
from ..errors import SinkError, SinkUnavailableError
from ..kafka import KafkaConfig, Reader, Received, Session
from ..schemas._model import ComponentInfo, TopicInfo

__all__ = ["Backend", "SinkRunner", "SinkStats"]

log = logging.getLogger("sal_kafka.sink")


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

    def write(self, batch: Mapping[TopicInfo, list[Any]], positions: Mapping[tuple[str, int], int]) -> None:
        """Store every row of ``batch`` and the offsets ``positions`` in one transaction; raise
        `SinkUnavailableError` when the store is down (then nothing is stored, and it is retried)."""

    def reconnect(self) -> None:
        """After `SinkUnavailableError`: try to connect again (quietly: the next `write` says)."""

    def close(self) -> None: ...


class SinkStats:
    """What a sink did: ``rows`` (per table), ``batches``, ``refused`` (undecodable,
    counted by its reader), ``batch_seconds`` (a histogram), ``retries`` (store down)."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.batches = 0
        self.retries = 0
        self.last_kafka_time = 0.0  # Kafka timestamp (s) of the newest message committed
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
    ) -> None:
        self.backend = backend
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
        reader = _MultiReader(self.session, self.components, self.topics, offsets)
        end = None if duration is None else time.monotonic() + duration
        batch: dict[TopicInfo, list[Any]] = {}
        positions: dict[tuple[str, int], int] = {}
        count, first_at, newest = 0, 0.0, 0.0
        row, by_name = self.backend.row, self._by_name
        try:
            while not self._stop.is_set() and (end is None or time.monotonic() < end):
                received = reader.next(min(0.1, self.max_delay))
                if received is not None:
                    topic = by_name[received.kafka_topic]
                    batch.setdefault(topic, []).append(row(topic, received))
                    positions[(received.kafka_topic, received.partition)] = received.offset + 1
                    newest = max(newest, received.timestamp / 1000.0)
                    if count == 0:
                        first_at = time.monotonic()
                    count += 1
                if count and (count >= self.batch_size or time.monotonic() - first_at >= self.max_delay):
                    self._commit(batch, positions, newest)
                    batch, positions, count = {}, {}, 0
            if count:
                self._commit(batch, positions, newest)
        finally:
            reader.close()
            self.backend.close()
            self._prepared = False
            if self._own_session:
                self.session.close()

    def _commit(self, batch: dict[TopicInfo, list[Any]], positions: dict[tuple[str, int], int], newest: float) -> None:
        """One transaction: every table's rows, then the offsets they reach; retried with
        back-off while the store is down (the rows wait here, in memory)."""
        delay = 0.5
        while True:
            start = time.monotonic()
            try:
                self.backend.write(batch, positions)
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
        self.stats.last_kafka_time = max(self.stats.last_kafka_time, newest)
        for topic, rows in batch.items():
            name = self.backend.table_name(topic)
            self.stats.rows[name] = self.stats.rows.get(name, 0) + len(rows)

    def _samples(self, families: Any) -> None:
        for table, n in self.stats.rows.items():
            families.add("sal_kafka_sink_rows_total", (table,), n)
        families.add("sal_kafka_sink_batches_total", (), self.stats.batches)
        if self.stats.last_kafka_time:
            families.add("sal_kafka_sink_lag_seconds", (), max(0.0, time.time() - self.stats.last_kafka_time))


class _MultiReader:
    """One `Reader` per component, read in turn (a sink of several components)."""

    def __init__(
        self,
        session: Session,
        components: list[ComponentInfo],
        topics: list[TopicInfo],
        offsets: dict[tuple[str, int], int],
    ) -> None:
        self.readers = [
            Reader(
                c,
                [t.attr_name for t in topics if t.component_name == c.name],
                session=session,
                start=offsets,
                arrays="numpy",  # no Python float per array item: stored from the buffer
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

    def close(self) -> None:
        for reader in self.readers:
            reader.close()
