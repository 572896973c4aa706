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
import io
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import attrs
import fastavro

from ...components._enums import State
from ...errors import SinkError, SinkUnavailableError
from ...kafka import KafkaConfig, Received, Session
from ...kafka._lookups import SchemaPending
from ...schemas._model import ComponentInfo, TopicInfo
from .._runner import Batch, SetAside, SinkRunner, SinkStats
from ._arrays import register_array_dumpers
from ._driver import psycopg, sql
from ._tables import Column, Table, avro_sql_type, identifier, table_of

__all__ = [
    "PostgresBackend",
    "PostgresSink",
    "AsyncPostgresSink",
    "SinkError",
    "SinkStats",
    "OFFSETS_TABLE",
    "SET_ASIDE_TABLE",
]

log = logging.getLogger("sal_kafka.sink")

OFFSETS_TABLE = "sal_kafka_offsets"
ENUMS_TABLE = "sal_kafka_enumerations"
ENUM_COLUMNS_TABLE = "sal_kafka_enum_columns"
#: messages that could not be stored as rows: kept whole, with why
SET_ASIDE_TABLE = "sal_kafka_set_aside"
_UTC = datetime.UTC


class PostgresBackend:
    """Any PostgreSQL 14+ (TimescaleDB when it has the extension) by ``url``.

    What it cannot store as a row goes to ``sal_kafka_set_aside`` (`SET_ASIDE_TABLE`)
    in the same transaction: a batch the database refuses is split in halves,
    each under a savepoint, until the refused rows are found. A newer writer's
    fields (another schema id of the topic's subject) become new columns, after
    the sink's own; a field no column type holds is counted and logged.
    """

    def __init__(self, url: str, retention: str | None = None, aggregates: bool = False) -> None:
        self.url = url
        self.where = f"PostgreSQL at {_safe(url)}"
        #: TimescaleDB: drop chunks older than this interval (``"30 days"``), if given
        self.retention = retention
        #: TimescaleDB: a continuous aggregate of 1-minute means per telemetry table
        self.aggregates = aggregates
        self.tables: dict[str, Table] = {}
        self.timescale = False
        self._db: psycopg.Connection[Any] | None = None
        #: the writer schema of an id (a `Session.writer_schemas`), for newer writers' fields
        self.writer_schema: Callable[[int], Mapping[str, Any] | None] | None = None
        #: where dropped fields are counted (the sink's `SinkStats`)
        self.stats: SinkStats | None = None
        self._layouts: dict[tuple[str, int], _Layout | None] = {}  # (kafka topic, schema id)
        self._plans: dict[str, tuple[list[str], list[int], set[bytes]]] = {}  # per kafka topic: see _plan
        self._added: dict[str, list[Column]] = {}  # table: columns to add in the next transaction

    def prepare(self, topics: Sequence[TopicInfo]) -> psycopg.Connection[Any]:
        """Connect, and make the tables (idempotent); the connection; raise `SinkError` when it cannot."""
        self.tables = {t.kafka_name: table_of(t) for t in topics}
        self._plans, self._layouts = {}, {}
        try:
            db = _connect(self.url)
        except psycopg.Error as exc:
            raise SinkError(f"cannot connect to PostgreSQL at {_safe(self.url)}: {_one_line(exc)}") from None
        self._db = db
        try:
            self._prepare(db)
        except psycopg.OperationalError as exc:
            raise SinkError(f"{self.where}: {_one_line(exc)}") from None
        except psycopg.Error as exc:
            raise SinkError(f"{self.where}: cannot make the tables: {_one_line(exc)}") from None
        return db

    def _prepare(self, db: psycopg.Connection[Any]) -> None:
        with db.transaction():
            db.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (kafka_topic text, kafka_partition integer, "
                    "next_offset bigint NOT NULL, PRIMARY KEY (kafka_topic, kafka_partition))"
                ).format(sql.Identifier("public", OFFSETS_TABLE))
            )
            db.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (kafka_topic text, kafka_partition integer, "
                    "kafka_offset bigint, kind text NOT NULL, reason text NOT NULL, value bytea NOT NULL, "
                    "kafka_time timestamp with time zone, "
                    "set_aside_at timestamp with time zone NOT NULL DEFAULT now(), "
                    "PRIMARY KEY (kafka_topic, kafka_partition, kafka_offset))"
                ).format(sql.Identifier("public", SET_ASIDE_TABLE))
            )
            for schema in sorted({t.schema for t in self.tables.values()} - {"public"}):
                db.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            self.timescale = self._timescale(db)
        for table in self.tables.values():
            with db.transaction():
                self._ensure_table(db, table)
        with db.transaction():
            self._ensure_enumerations(db)
        if self.retention or self.aggregates:
            if not self.timescale:
                raise SinkError(
                    f"{self.where} has no TimescaleDB: a retention policy and continuous aggregates need it "
                    "(install the extension and preload it, or leave --retention and --aggregates out)"
                )
            for table in self.tables.values():
                with db.transaction():
                    self._ensure_policies(db, table)
        log.info(
            "PostgreSQL at %s: %d tables, %s",
            _safe(self.url),
            len(self.tables),
            "TimescaleDB hypertables on time" if self.timescale else "plain tables with a time index (no TimescaleDB)",
        )

    def _ensure_policies(self, db: psycopg.Connection[Any], table: Table) -> None:
        """TimescaleDB's retention policy on the table, and a continuous aggregate of its
        numeric scalar fields' 1-minute means (per salIndex), refreshed every minute."""
        regclass = table.ident.as_string(db)
        if self.retention:
            try:
                db.execute(
                    "SELECT add_retention_policy(%s::regclass, %s::interval, if_not_exists => TRUE)",
                    (regclass, self.retention),
                )
            except psycopg.DataError as exc:
                raise SinkError(
                    f"retention {self.retention!r} is not a PostgreSQL interval: {_one_line(exc)}"
                ) from None
        if not self.aggregates or table.topic.kind != "telemetry":
            return
        numeric = [
            c
            for c in table.field_columns
            if c.field is not None
            and c.field.count == 1
            and c.sql_type in ("smallint", "integer", "bigint", "real", "double precision")
            and not c.field.name.startswith("private_")
            and c.field.name != "salIndex"
        ]
        if not numeric:
            return
        view = sql.Identifier(table.schema, identifier(table.name + "_1m"))
        by = sql.SQL(", salindex") if table.topic.indexed else sql.SQL("")
        means = sql.SQL(", ").join(
            sql.SQL("avg({}) AS {}").format(sql.Identifier(c.name), sql.Identifier(c.name)) for c in numeric
        )
        db.execute(
            sql.SQL(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS {} WITH (timescaledb.continuous) AS "
                "SELECT time_bucket(INTERVAL '1 minute', time) AS bucket{}, count(*) AS messages, {} "
                "FROM {} GROUP BY bucket{} WITH NO DATA"
            ).format(view, by, means, table.ident, by)
        )
        db.execute(
            "SELECT add_continuous_aggregate_policy(%s::regclass, start_offset => INTERVAL '1 day', "
            "end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute', if_not_exists => TRUE)",
            (view.as_string(db),),
        )

    def _ensure_enumerations(self, db: psycopg.Connection[Any]) -> None:
        """The lookup tables of the enumerations: ``sal_kafka_enumerations`` (component,
        enumeration, member, value) and ``sal_kafka_enum_columns`` (which column of which
        table holds which enumeration's values), so that a query can show names::

            SELECT t.time, e.member FROM ktest_evt_teststate t
            JOIN sal_kafka_enum_columns c ON c.table_name = 'ktest_evt_teststate' AND c.column_name = 'state'
            JOIN sal_kafka_enumerations e USING (component, enumeration) WHERE e.value = t.state
        """
        db.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (component text, enumeration text, member text NOT NULL, "
                "value bigint, PRIMARY KEY (component, enumeration, value))"
            ).format(sql.Identifier("public", ENUMS_TABLE))
        )
        db.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (table_schema text, table_name text, column_name text, "
                "component text NOT NULL, enumeration text NOT NULL, "
                "PRIMARY KEY (table_schema, table_name, column_name))"
            ).format(sql.Identifier("public", ENUM_COLUMNS_TABLE))
        )
        members: set[tuple[str, str, str, int]] = set()
        columns: set[tuple[str, str, str, str, str]] = set()
        for table in self.tables.values():
            component = table.topic.component_name
            for column in table.field_columns:
                field = column.field
                if field is None:
                    continue
                enum = field.enum
                if enum is not None:
                    members.update((component, enum.name, name, value) for name, value in enum.members)
                    columns.add((table.schema, table.name, column.name, component, enum.name))
                elif field.name == "summaryState":  # SAL's State (ts_salobj's), declared by no XML
                    members.update(("sal", "State", s.name, int(s)) for s in State)
                    columns.add((table.schema, table.name, column.name, "sal", "State"))
        if members:
            db.cursor().executemany(
                sql.SQL(
                    "INSERT INTO {} (component, enumeration, member, value) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (component, enumeration, value) DO UPDATE SET member = excluded.member"
                ).format(sql.Identifier("public", ENUMS_TABLE)),
                sorted(members),
            )
        if columns:
            db.cursor().executemany(
                sql.SQL(
                    "INSERT INTO {} (table_schema, table_name, column_name, component, enumeration) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (table_schema, table_name, column_name) "
                    "DO UPDATE SET component = excluded.component, enumeration = excluded.enumeration"
                ).format(sql.Identifier("public", ENUM_COLUMNS_TABLE)),
                sorted(columns),
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

    @staticmethod
    def _columns(db: psycopg.Connection[Any], table: Table) -> dict[str, str] | None:
        """``{column: type}`` the table has in the database; None when it does not exist."""
        found = db.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped",
            (table.schema, table.name),
        ).fetchall()
        return dict(found) if found else None

    def _ensure_table(self, db: psycopg.Connection[Any], table: Table) -> None:
        """Create the table, or bring it to the schema: new fields become new columns;
        a field whose type changed is an error naming the topic and the field."""
        db.execute(table.create_sql())
        existing = self._columns(db, table) or {}
        for column in table.columns:
            have = existing.get(column.name)
            if have is None:
                db.execute(table.add_column_sql(column))
                log.info(
                    "%s: new field %s: column %s %s added",
                    table.topic.full_name,
                    column.field.name if column.field else column.extra,
                    column.name,
                    column.sql_type,
                )
            elif have != column.sql_type:
                raise self._changed(table, column, have)
        db.execute(table.index_sql())
        if self.timescale:
            db.execute(
                "SELECT create_hypertable(%s::regclass, 'time', if_not_exists => TRUE, migrate_data => TRUE)",
                (table.ident.as_string(db),),
            )
        try:
            db.execute(table.unique_sql(self.timescale))
        except Exception as exc:  # rows stored twice before this index existed
            raise SinkError(
                f"{table.qualified} holds more than one row of the same (kafka_partition, kafka_offset); the "
                f"sink's unique index cannot be made until they are removed: {str(exc).splitlines()[0]}"
            ) from None

    @staticmethod
    def _changed(table: Table, column: Column, have: str) -> SinkError:
        field = column.field.name if column.field else column.extra or column.name
        return SinkError(
            f"{table.topic.full_name}: field {field!r} is {column.sql_type} in the schema but column "
            f"{table.qualified}.{column.name} is {have}: an incompatible change (or one made by hand); "
            "migrate the table or store the new version elsewhere"
        )

    def _check_table(self, db: psycopg.Connection[Any], table: Table) -> None:
        """Raise `SinkError` when the table is not what the sink writes (dropped, or a
        column changed by hand): then no row of it can be stored, and splitting the batch
        would only set every row aside."""
        existing = self._columns(db, table)
        if existing is None:
            raise SinkError(f"{table.topic.full_name}: table {table.qualified} does not exist any more (dropped?)")
        for column in table.columns:
            have = existing.get(column.name)
            if have is None:
                raise SinkError(
                    f"{table.topic.full_name}: column {table.qualified}.{column.name} does not exist any more "
                    "(dropped by hand?)"
                )
            if have != column.sql_type:
                raise self._changed(table, column, have)

    def stored_offsets(self) -> dict[tuple[str, int], int]:
        db = self._connection()
        rows = db.execute(
            sql.SQL("SELECT kafka_topic, kafka_partition, next_offset FROM {}").format(
                sql.Identifier("public", OFFSETS_TABLE)
            )
        ).fetchall()
        db.commit()
        return {(t, p): o for t, p, o in rows}

    def set_aside(self) -> list[tuple[Any, ...]]:
        """The rows of ``sal_kafka_set_aside``: (kafka topic, partition, offset, kind, reason, value)."""
        db = self._connection()
        rows = db.execute(
            sql.SQL(
                "SELECT kafka_topic, kafka_partition, kafka_offset, kind, reason, value FROM {} "
                "ORDER BY kafka_topic, kafka_partition, kafka_offset"
            ).format(sql.Identifier("public", SET_ASIDE_TABLE))
        ).fetchall()
        db.commit()
        return rows

    def _connection(self) -> psycopg.Connection[Any]:
        if self._db is None:
            raise SinkError(f"{self.where}: not connected (prepare first)")
        return self._db

    def table_name(self, topic: TopicInfo) -> str:
        return self.tables[topic.kafka_name].qualified

    # ------------------------------------------------------------------ rows

    def row(self, topic: TopicInfo, received: Received) -> tuple[Any, ...]:
        """The row of a message: a ValueError says why it cannot be one (then set aside)."""
        data = received.data
        plan = self._plans.get(topic.kafka_name)
        if plan is None:
            plan = self._plan(topic)
        names, texts, plain = plan
        stamp = data["private_efdStamp"]
        if not _MIN_STAMP <= stamp <= _MAX_STAMP:  # NaN too
            raise ValueError(f"private_efdStamp {stamp!r} is not a time (expected seconds since 1970, years 1 to 9999)")
        values = [data[name] for name in names]
        for i in texts:
            if "\x00" in values[i]:
                raise ValueError(f"field {names[i]!r} holds a NUL character, which PostgreSQL text cannot store")
        row = (datetime.datetime.fromtimestamp(stamp, _UTC), *values, received.partition, received.offset)
        value = received.value
        if value[1:5] in plain or self.writer_schema is None or len(value) < 5:
            return row
        return self._with_writer_fields(self.tables[topic.kafka_name], received, row)

    def _plan(self, topic: TopicInfo) -> tuple[list[str], list[int], set[bytes]]:
        """What making a row of ``topic`` needs, worked out once: the field of each
        column, the text ones (NUL is checked), the frame headers with no new field."""
        table = self.tables[topic.kafka_name]
        names = [c.field.name for c in table.field_columns if c.field is not None]
        texts = [i for i, c in enumerate(table.field_columns) if c.sql_type == "text"]
        plan = self._plans[topic.kafka_name] = (names, texts, set())
        return plan

    def _with_writer_fields(self, table: Table, received: Received, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """A message of another schema id: its writer's fields the topic lacks, as columns."""
        key = (received.kafka_topic, int.from_bytes(received.value[1:5], "big"))
        layout: Any = self._layouts.get(key, _UNKNOWN)
        if layout is _UNKNOWN:
            try:
                layout = self._layout(table, key[1])
            except SchemaPending:  # the registry cannot say now: asked again at the next row
                return row
            self._layouts[key] = layout
        table = self.tables[received.kafka_topic]
        if layout is None:
            if not any(c.extra for c in table.columns):  # this id's rows need nothing more
                self._plans[received.kafka_topic][2].add(received.value[1:5])
            return row
        record: Any = fastavro.schemaless_reader(io.BytesIO(received.value[5:]), layout.parsed, None)
        for name in layout.dropped:
            self._count_dropped(received.kafka_topic, name)
        extra = {c.extra: record.get(c.extra) for c in table.columns if c.extra is not None}
        return (*row, *(extra[c.extra] for c in table.columns if c.extra is not None))

    def _layout(self, table: Table, schema_id: int) -> _Layout | None:
        """What a writer schema adds to the topic's fields: new columns (added to the table
        in the next transaction), and fields no column can hold. None: nothing."""
        assert self.writer_schema is not None
        schema = self.writer_schema(schema_id)
        if schema is None:
            return None
        known = {f.name for f in table.topic.fields.values()} | {c.extra for c in table.columns if c.extra}
        new = [f for f in schema.get("fields", []) if f.get("name") not in known]
        if not new and not any(c.extra for c in table.columns):
            return None
        taken = {c.name for c in table.columns}
        added, dropped = [], []
        for field in new:
            kind = avro_sql_type(field.get("type"))
            try:
                name = identifier(field["name"])
            except (SinkError, KeyError, TypeError):
                kind = None
            if kind is None:
                dropped.append(str(field.get("name")))
                continue
            while name in taken:
                name = identifier(name + "_2")
            taken.add(name)
            added.append(Column(name, kind, extra=field["name"]))
        if added:
            table = table.with_columns(added)
            self.tables[table.topic.kafka_name] = table
            self._added.setdefault(table.topic.kafka_name, []).extend(added)
            log.info(
                "%s: schema id %d has fields the topic's XML lacks: columns %s added",
                table.topic.full_name,
                schema_id,
                ", ".join(f"{c.name} {c.sql_type}" for c in added),
            )
        for name in dropped:
            log.warning(
                "%s: schema id %d field %r has a type no column holds: its values are dropped (counted in "
                "sal_kafka_sink_dropped_fields_total)",
                table.topic.full_name,
                schema_id,
                name,
            )
        return _Layout(fastavro.parse_schema(dict(schema)), tuple(dropped))

    def _count_dropped(self, kafka_topic: str, field: str) -> None:
        if self.stats is not None:
            key = (kafka_topic, field)
            self.stats.dropped_fields[key] = self.stats.dropped_fields.get(key, 0) + 1

    # ------------------------------------------------------------------ transactions

    def write(self, batch: Batch) -> list[SetAside]:
        try:
            return self._write(self._connection(), batch)
        except psycopg.OperationalError as exc:
            raise SinkUnavailableError(_one_line(exc)) from None
        except psycopg.Error as exc:  # not a row's fault (those are found and set aside)
            raise SinkError(f"{self.where}: {_one_line(exc)}") from None

    def _write(self, db: psycopg.Connection[Any], batch: Batch) -> list[SetAside]:
        refused: list[SetAside] = []
        with db.transaction(), db.cursor() as cursor:
            for kafka_name, columns in list(self._added.items()):
                table = self.tables[kafka_name]
                for column in columns:
                    cursor.execute(table.add_column_sql(column))
            for topic, rows in batch.rows.items():
                table = self.tables[topic.kafka_name]
                self._copy(db, cursor, table, rows, batch.sources[topic], 0, len(rows), refused)
            aside = [*batch.aside, *refused]
            if aside:
                cursor.executemany(
                    sql.SQL(
                        "INSERT INTO {} (kafka_topic, kafka_partition, kafka_offset, kind, reason, value, kafka_time) "
                        "VALUES (%s, %s, %s, %s, %s, %s, to_timestamp(%s / 1000.0)) ON CONFLICT DO NOTHING"
                    ).format(sql.Identifier("public", SET_ASIDE_TABLE)),
                    [
                        (a.kafka_topic, a.partition, a.offset, a.kind, _text(a.reason), a.value, a.timestamp)
                        for a in aside
                    ],
                )
            cursor.executemany(
                sql.SQL(
                    "INSERT INTO {} (kafka_topic, kafka_partition, next_offset) VALUES (%s, %s, %s) "
                    "ON CONFLICT (kafka_topic, kafka_partition) DO UPDATE SET next_offset = excluded.next_offset"
                ).format(sql.Identifier("public", OFFSETS_TABLE)),
                [(t, p, o) for (t, p), o in batch.positions.items()],
            )
        self._added.clear()
        return refused

    def _copy(
        self,
        db: psycopg.Connection[Any],
        cursor: psycopg.Cursor[Any],
        table: Table,
        rows: list[Any],
        sources: list[Received],
        lo: int,
        hi: int,
        refused: list[SetAside],
    ) -> None:
        """COPY ``rows[lo:hi]`` under a savepoint; when the database refuses, split in halves
        until the refused rows are found (set aside), the others stored."""
        width = len(table.columns)
        try:
            with db.transaction(), cursor.copy(table.copy_sql()) as copy:
                copy.set_types([c.psycopg_type for c in table.columns])
                for row in rows[lo:hi]:
                    copy.write_row(row if len(row) == width else (*row, *([None] * (width - len(row)))))
        except psycopg.OperationalError:
            raise
        except (psycopg.Error, ValueError, OverflowError, TypeError) as exc:
            if lo == 0 and hi == len(rows):
                self._check_table(db, table)  # changed by hand: one SinkError, not every row set aside
            if hi - lo > 1:
                mid = (lo + hi) // 2
                self._copy(db, cursor, table, rows, sources, lo, mid, refused)
                self._copy(db, cursor, table, rows, sources, mid, hi, refused)
                return
            source = sources[lo]
            refused.append(
                SetAside(
                    source.kafka_topic,
                    source.partition,
                    source.offset,
                    "refused",
                    f"{table.qualified}: {_one_line(exc)}",
                    source.value,
                    source.timestamp,
                )
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


@attrs.frozen
class _Layout:
    """A writer schema of a topic whose fields the topic's XML lacks."""

    parsed: Any  # fastavro's parsed writer schema
    dropped: tuple[str, ...]  # its fields no column holds


_UNKNOWN: Final = object()

#: the efdStamps a timestamptz (and Python's datetime) holds: years 1 to 9999
_MIN_STAMP: Final = -62135596800.0
_MAX_STAMP: Final = 253402300799.0


def _text(reason: str) -> str:
    """A reason as PostgreSQL text holds it (a NUL it quotes, e.g. of a refused value, as \\x00)."""
    return reason.replace("\x00", "\\x00")


def _one_line(exc: BaseException) -> str:
    """psycopg's messages span lines (DETAIL, CONTEXT): one line."""
    return " ".join(str(exc).split())


class PostgresSink(SinkRunner):
    """Store the messages of components' topics in PostgreSQL tables, one per topic.

    Parameters
    ----------
    url : str
        ``postgresql://...`` of any PostgreSQL 14+ (TimescaleDB when it has the extension).
    components : sequence of str or ComponentInfo
        The components whose events and telemetry (and commands, acks) are stored.
    config, session, batch_size, max_delay, topics, group_id
        As `sal_kafka.sinks.SinkRunner`'s (``group_id``: the consumer group the
        offsets are also committed to, after the database).
    retention : str, optional
        TimescaleDB: drop chunks older than this PostgreSQL interval (``"30 days"``).
    aggregates : bool
        TimescaleDB: a continuous aggregate ``<table>_1m`` of each telemetry table's
        1-minute means (per salIndex), refreshed every minute.
    since, until : datetime, optional
        A backfill: partitions never stored start at the first message at or after
        ``since`` (else the beginning); `run` returns once every message up to
        ``until`` is stored (none after it is).

    Raises
    ------
    SinkError
        At `connect` (or `run`), ``retention`` or ``aggregates`` on a database
        without TimescaleDB.
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
        group_id: str = "sal-kafka-sink",
        retention: str | None = None,
        aggregates: bool = False,
        since: datetime.datetime | None = None,
        until: datetime.datetime | None = None,
    ) -> None:
        super().__init__(
            PostgresBackend(url, retention=retention, aggregates=aggregates),
            components,
            config=config,
            session=session,
            batch_size=batch_size,
            max_delay=max_delay,
            topics=topics,
            group_id=group_id,
            since=since,
            until=until,
        )
        self.url = url
        self.tables = {t.kafka_name: table_of(t) for t in self.topics}
        self.backend.writer_schema = self.session.writer_schemas
        self.backend.stats = self.stats

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
