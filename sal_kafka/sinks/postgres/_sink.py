"""SAL topics into PostgreSQL (TimescaleDB when the server has it), exactly once.

`PostgresBackend` is the `sal_kafka.sinks.Backend` of PostgreSQL: a table per
topic (binary ``COPY`` batches), and the Kafka offsets of each batch in
``sal_kafka_offsets``, committed in the same transaction. `PostgresSink` is
the sink loop (`sal_kafka.sinks.SinkRunner`) over it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

try:
    import psycopg
except ImportError as exc:  # an extra: say which
    from ..._util import missing

    raise missing("psycopg", "sink", "the PostgreSQL sink (sal_kafka.sinks)") from exc

from ...errors import SinkError, SinkUnavailableError
from ...kafka import KafkaConfig, Received, Session
from ...schemas._model import ComponentInfo, TopicInfo
from .._runner import SinkRunner, SinkStats
from ._arrays import register_array_dumpers
from ._tables import Table, table_of

__all__ = ["PostgresBackend", "PostgresSink", "AsyncPostgresSink", "SinkError", "SinkStats", "OFFSETS_TABLE"]

log = logging.getLogger("sal_kafka.sink")

OFFSETS_TABLE = "sal_kafka_offsets"
_UTC = datetime.UTC


class PostgresBackend:
    """Any PostgreSQL 14+ (TimescaleDB when it has the extension) by ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.where = f"PostgreSQL at {_safe(url)}"
        self.tables: dict[str, Table] = {}
        self.timescale = False
        self._db: psycopg.Connection[Any] | None = None

    def prepare(self, topics: Sequence[TopicInfo]) -> psycopg.Connection[Any]:
        """Connect, and make the tables (idempotent); the connection; raise `SinkError` when it cannot."""
        self.tables = {t.kafka_name: table_of(t) for t in topics}
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
        db = self._connection()
        rows = db.execute(f"SELECT kafka_topic, kafka_partition, next_offset FROM {OFFSETS_TABLE}").fetchall()
        db.commit()
        return {(t, p): o for t, p, o in rows}

    def _connection(self) -> psycopg.Connection[Any]:
        if self._db is None:
            raise SinkError(f"{self.where}: not connected (prepare first)")
        return self._db

    def table_name(self, topic: TopicInfo) -> str:
        return self.tables[topic.kafka_name].name

    def row(self, topic: TopicInfo, received: Received) -> tuple[Any, ...]:
        data = received.data
        table = self.tables[topic.kafka_name]
        stamp = datetime.datetime.fromtimestamp(data["private_efdStamp"], _UTC)
        values = [data[c.field.name] for c in table.field_columns]  # type: ignore[union-attr]
        return (stamp, *values, received.partition, received.offset)

    def write(self, batch: Mapping[TopicInfo, list[Any]], positions: Mapping[tuple[str, int], int]) -> None:
        try:
            self._write(self._connection(), batch, positions)
        except psycopg.OperationalError as exc:
            raise SinkUnavailableError(str(exc).strip()) from None

    def _write(
        self,
        db: psycopg.Connection[Any],
        batch: Mapping[TopicInfo, list[Any]],
        positions: Mapping[tuple[str, int], int],
    ) -> None:
        with db.transaction(), db.cursor() as cursor:
            for topic, rows in batch.items():
                table = self.tables[topic.kafka_name]
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

    def reconnect(self) -> None:
        if self._db is not None:
            with contextlib.suppress(psycopg.Error):
                self._db.close()
        with contextlib.suppress(psycopg.OperationalError):  # still down: the next write says so
            self._db = _connect(self.url)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class PostgresSink(SinkRunner):
    """Store the messages of components' topics in PostgreSQL tables, one per topic.

    Parameters
    ----------
    url : str
        ``postgresql://...`` of any PostgreSQL 14+ (TimescaleDB when it has the extension).
    components : sequence of str or ComponentInfo
        The components whose events and telemetry (and commands, acks) are stored.
    config, session, batch_size, max_delay, topics
        As `sal_kafka.sinks.SinkRunner`'s.
    """

    backend: PostgresBackend

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
        super().__init__(
            PostgresBackend(url),
            components,
            config=config,
            session=session,
            batch_size=batch_size,
            max_delay=max_delay,
            topics=topics,
        )
        self.url = url
        self.tables = {t.kafka_name: table_of(t) for t in self.topics}

    def connect(self) -> psycopg.Connection[Any]:
        """Connect and make the tables (idempotent); the connection (the sink's own)."""
        super().connect()
        return self.backend._connection()

    @property
    def timescale(self) -> bool:
        """True when the tables are TimescaleDB hypertables (known once connected)."""
        return self.backend.timescale


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
