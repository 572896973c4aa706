"""SAL topics into PostgreSQL (TimescaleDB when the server has it), exactly once.

Each batch of rows (binary ``COPY``, per table) and the Kafka offsets it
covers are committed in one database transaction; on start the sink resumes
from the offsets stored in the database (``sal_kafka_offsets``). So a sink
killed at any moment and started again stores every message once: what it
had not committed is read again, what it had is not.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from .._errors import SalKafkaError
from .._kafka import KafkaConfig, Reader, Received, Session
from .._model import ComponentInfo, TopicInfo
from .._stats import LatencyHistogram
from ._arrays import register_array_dumpers
from ._tables import Table, table_of

__all__ = ["PostgresSink", "AsyncPostgresSink", "SinkError", "SinkStats", "OFFSETS_TABLE"]

log = logging.getLogger("sal_kafka.sink")

OFFSETS_TABLE = "sal_kafka_offsets"
_UTC = datetime.UTC


class SinkError(SalKafkaError):
    """The sink cannot store a topic (an incompatible table, an unusable database)."""


class SinkStats:
    """What a sink did: ``rows`` (per table), ``batches``, ``refused`` (undecodable,
    counted by its reader), ``batch_seconds`` (a histogram), ``retries`` (database down)."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.batches = 0
        self.retries = 0
        self.last_kafka_time = 0.0  # Kafka timestamp (s) of the newest message committed
        self.batch_seconds = LatencyHistogram(resolution=0.001, limit=10.0)


class PostgresSink:
    """Store the messages of components' topics in PostgreSQL tables, one per topic.

    Parameters
    ----------
    url : str
        ``postgresql://...`` of any PostgreSQL 14+ (TimescaleDB when it has the extension).
    components : sequence of str, ComponentInfo or (name, index)
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
        url: str,
        components: Sequence[str | ComponentInfo],
        *,
        config: KafkaConfig | None = None,
        session: Session | None = None,
        batch_size: int = 5000,
        max_delay: float = 0.5,
        topics: Iterable[str] | None = None,
    ) -> None:
        self.url = url
        self._own_session = session is None
        self.session = session or Session(config)
        self.components = [self.session.component(c) for c in components]
        wanted = set(topics) if topics is not None else None
        self.topics = [t for c in self.components for t in c if wanted is None or t.attr_name in wanted]
        if not self.topics:
            raise SinkError(f"no topic to store (components {[c.name for c in self.components]}, topics {wanted})")
        self.tables = {t.kafka_name: table_of(t) for t in self.topics}
        self.batch_size = batch_size
        self.max_delay = max_delay
        self.stats = SinkStats()
        self.timescale = False
        self._db: psycopg.Connection[Any] | None = None
        self._stop = threading.Event()
        if self.session.metrics is not None:
            self.session.metrics.add_source(self._samples)

    # ------------------------------------------------------------------ the database

    def connect(self) -> psycopg.Connection[Any]:
        """Connect, and make the tables (idempotent); raise `SinkError` when it cannot."""
        try:
            db = _connect(self.url)
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split())  # psycopg's message spans lines: one line
            raise SinkError(f"cannot connect to PostgreSQL at {_safe(self.url)}: {reason}") from None
        self._db = db
        self._prepare(db)
        return db

    def _prepare(self, db: psycopg.Connection[Any]) -> None:
        with db.transaction():
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {OFFSETS_TABLE} (kafka_topic text, kafka_partition integer, "
                "next_offset bigint NOT NULL, PRIMARY KEY (kafka_topic, kafka_partition))"
            )
            self.timescale = self._timescale(db)
        for table in self.tables.values():
            with db.transaction():
                self._ensure_table(db, table)
        log.info(
            "PostgreSQL at %s: %d tables, %s",
            _safe(self.url),
            len(self.tables),
            "TimescaleDB hypertables on time" if self.timescale else "plain tables with a time index (no TimescaleDB)",
        )

    @staticmethod
    def _timescale(db: psycopg.Connection[Any]) -> bool:
        available = db.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
        if available is None:
            return False
        try:
            with db.transaction():
                db.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            return True
        except psycopg.Error as exc:
            log.warning("TimescaleDB is available but cannot be enabled (%s): plain tables", exc)
            return False

    def _ensure_table(self, db: psycopg.Connection[Any], table: Table) -> None:
        """Create the table, or bring it to the schema: new fields become new columns;
        a field whose type changed is an error naming the topic and the field."""
        db.execute(table.create_sql())
        existing = dict(
            db.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                (table.name,),
            ).fetchall()
        )
        for column in table.columns:
            have = existing.get(column.name)
            if have is None:
                db.execute(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {column.sql_type}")
                log.info(
                    "%s: new field %s: column %s %s added",
                    table.topic.full_name,
                    column.field,
                    column.name,
                    column.sql_type,
                )
            elif have != column.sql_type:
                field = column.field.name if column.field else column.name
                raise SinkError(
                    f"{table.topic.full_name}: field {field!r} is {column.sql_type} in the schema but column "
                    f"{table.name}.{column.name} is {have}: an incompatible change; migrate the table or store "
                    "the new version elsewhere"
                )
        db.execute(table.index_sql())
        if self.timescale:
            db.execute(
                "SELECT create_hypertable(%s, 'time', if_not_exists => TRUE, migrate_data => TRUE)", (table.name,)
            )

    def stored_offsets(self) -> dict[tuple[str, int], int]:
        """``{(kafka topic, partition): next offset}`` committed so far."""
        db = self._db or self.connect()
        rows = db.execute(f"SELECT kafka_topic, kafka_partition, next_offset FROM {OFFSETS_TABLE}").fetchall()
        db.commit()
        return {(t, p): o for t, p, o in rows if t in self.tables}

    # ------------------------------------------------------------------ running

    def stop(self) -> None:
        """Ask `run` to commit what it has and return."""
        self._stop.set()

    def run(self, duration: float | None = None) -> None:
        """Read and store until `stop` (or ``duration`` seconds); then commit and close.

        Raises
        ------
        SinkError
            When the database cannot be used at start (down, refused, an incompatible table).
        """
        db = self._db or self.connect()
        offsets = self.stored_offsets()
        reader = _MultiReader(self.session, self.components, self.topics, offsets)
        end = None if duration is None else time.monotonic() + duration
        batch: dict[str, list[tuple[Any, ...]]] = {}
        positions: dict[tuple[str, int], int] = {}
        count, first_at, newest = 0, 0.0, 0.0
        try:
            while not self._stop.is_set() and (end is None or time.monotonic() < end):
                received = reader.next(min(0.1, self.max_delay))
                if received is not None:
                    kafka_topic = received.kafka_topic
                    batch.setdefault(kafka_topic, []).append(self._row(kafka_topic, received))
                    positions[(kafka_topic, received.partition)] = received.offset + 1
                    newest = max(newest, received.timestamp / 1000.0)
                    if count == 0:
                        first_at = time.monotonic()
                    count += 1
                if count and (count >= self.batch_size or time.monotonic() - first_at >= self.max_delay):
                    db = self._commit(db, batch, positions, newest)
                    batch, positions, count = {}, {}, 0
            if count:
                db = self._commit(db, batch, positions, newest)
        finally:
            reader.close()
            db.close()
            self._db = None
            if self._own_session:
                self.session.close()

    def _row(self, kafka_topic: str, received: Received) -> tuple[Any, ...]:
        data = received.data
        table = self.tables[kafka_topic]
        stamp = datetime.datetime.fromtimestamp(data["private_efdStamp"], _UTC)
        values = [data[c.field.name] for c in table.field_columns]  # type: ignore[union-attr]
        return (stamp, *values, received.partition, received.offset)

    def _commit(
        self,
        db: psycopg.Connection[Any],
        batch: dict[str, list[tuple[Any, ...]]],
        positions: dict[tuple[str, int], int],
        newest: float,
    ) -> psycopg.Connection[Any]:
        """One transaction: every table's rows, then the offsets they reach. Retried
        with back-off while the database is down (the rows wait here, in memory)."""
        delay = 0.5
        while True:
            start = time.monotonic()
            try:
                self._write(db, batch, positions)
                break
            except psycopg.OperationalError as exc:
                self.stats.retries += 1
                log.error(
                    "PostgreSQL at %s: %s; retrying in %.1f s (nothing is committed yet)",
                    _safe(self.url),
                    str(exc).strip(),
                    delay,
                )
                if self._stop.wait(delay):
                    raise SinkError(
                        f"stopped while PostgreSQL at {_safe(self.url)} was down: the last batch is not stored"
                    ) from None
                delay = min(delay * 2, 30.0)
                db = self._reconnect(db)
        self.stats.batch_seconds.add(time.monotonic() - start)
        self.stats.batches += 1
        self.stats.last_kafka_time = max(self.stats.last_kafka_time, newest)
        for kafka_topic, rows in batch.items():
            name = self.tables[kafka_topic].name
            self.stats.rows[name] = self.stats.rows.get(name, 0) + len(rows)
        return db

    def _write(
        self,
        db: psycopg.Connection[Any],
        batch: dict[str, list[tuple[Any, ...]]],
        positions: dict[tuple[str, int], int],
    ) -> None:
        with db.transaction(), db.cursor() as cursor:
            for kafka_topic, rows in batch.items():
                table = self.tables[kafka_topic]
                names = ", ".join(c.name for c in table.columns)
                with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types([c.psycopg_type for c in table.columns])
                    for row in rows:
                        copy.write_row(row)
            cursor.executemany(
                f"INSERT INTO {OFFSETS_TABLE} (kafka_topic, kafka_partition, next_offset) VALUES (%s, %s, %s) "
                "ON CONFLICT (kafka_topic, kafka_partition) DO UPDATE SET next_offset = excluded.next_offset",
                [(t, p, o) for (t, p), o in positions.items()],
            )

    def _reconnect(self, db: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
        with contextlib.suppress(psycopg.Error):
            db.close()
        try:
            return _connect(self.url)
        except psycopg.OperationalError:
            return db  # still down: the next try says so

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
                arrays="numpy",  # no Python float per array item: dumped from the buffer
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


def _connect(url: str) -> psycopg.Connection[Any]:
    db = psycopg.connect(url, autocommit=False)
    register_array_dumpers(db.adapters)  # SAL arrays, read as numpy arrays, dumped without a list
    return db


def _safe(url: str) -> str:
    """The URL without its password."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"


class AsyncPostgresSink:
    """asyncio face of `PostgresSink`: same arguments; ``await start()``, ``await stop()``.

    The sink runs in a worker thread (psycopg and librdkafka block); the event
    loop only starts and stops it, and can read `stats` meanwhile.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sink = PostgresSink(*args, **kwargs)
        self._task: asyncio.Future[None] | None = None

    @property
    def stats(self) -> SinkStats:
        return self.sink.stats

    async def start(self) -> AsyncPostgresSink:
        """Connect and make the tables (raises `SinkError` as `PostgresSink.connect`), then run."""
        await asyncio.to_thread(self.sink.connect)
        self._task = asyncio.ensure_future(asyncio.to_thread(self.sink.run))
        return self

    async def stop(self) -> None:
        """Commit what is read and stop; raises what the sink raised, if anything."""
        self.sink.stop()
        if self._task is not None:
            await self._task

    async def __aenter__(self) -> AsyncPostgresSink:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
