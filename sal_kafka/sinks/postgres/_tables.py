"""Tables of topics: names, columns and PostgreSQL types, from the model (no I/O).

The naming rule, so that a Grafana query needs no quotes: every identifier is
lowercase (PostgreSQL folds unquoted names to lowercase). A topic's table is
``<component>_<attr_name>``, e.g. ``mtm1m3_tel_forceactuatordata``,
``ktest_evt_summarystate``; a field's column is its name in lowercase
(``zForce`` -> ``zforce``, ``private_sndStamp`` -> ``private_sndstamp``); a
reserved SQL word gets a trailing underscore (``user`` -> ``user_``), a name
that two fields share once lowercase gets ``_2``; names are cut to 63
bytes with a short hash when longer. Each table also has ``time``
(``timestamptz``, from ``private_efdStamp``, UTC), ``kafka_partition`` and
``kafka_offset``.

A topic sub-namespace other than ``sal`` (``$SAL_KAFKA_TOPIC_SUBNAME``, e.g. a
test run's) has its tables in a PostgreSQL schema of its own, named after it
(lowercase; one with capitals gets a short hash of its exact name too), so that
rows of ``lsst.test.KTest.x`` never mix with rows of ``lsst.sal.KTest.x``.

Every statement is composed with `psycopg.sql` (identifiers quoted by psycopg),
never by string formatting; names are also checked by `identifier`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Final

import attrs

from ...errors import SinkError
from ...schemas._model import FieldInfo, TopicInfo
from ...schemas._saltypes import SAL_TYPE_TABLE, SalType
from ._driver import sql

__all__ = [
    "Column",
    "Table",
    "table_of",
    "identifier",
    "schema_of",
    "sql_type",
    "avro_sql_type",
    "PSYCOPG_TYPES",
    "EXTRA_COLUMNS",
]

_SAFE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# PostgreSQL's reserved key words (those that cannot be a column name unquoted)
_RESERVED: Final = frozenset(
    [
        "all",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "authorization",
        "binary",
        "both",
        "case",
        "cast",
        "check",
        "collate",
        "collation",
        "column",
        "concurrently",
        "constraint",
        "create",
        "cross",
        "current_catalog",
        "current_date",
        "current_role",
        "current_schema",
        "current_time",
        "current_timestamp",
        "current_user",
        "default",
        "deferrable",
        "desc",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "false",
        "fetch",
        "for",
        "foreign",
        "freeze",
        "from",
        "full",
        "grant",
        "group",
        "having",
        "ilike",
        "in",
        "initially",
        "inner",
        "intersect",
        "into",
        "is",
        "isnull",
        "join",
        "lateral",
        "leading",
        "left",
        "like",
        "limit",
        "localtime",
        "localtimestamp",
        "natural",
        "not",
        "notnull",
        "null",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "outer",
        "overlaps",
        "placing",
        "primary",
        "references",
        "returning",
        "right",
        "select",
        "session_user",
        "similar",
        "some",
        "symmetric",
        "system_user",
        "table",
        "tablesample",
        "then",
        "to",
        "trailing",
        "true",
        "union",
        "unique",
        "user",
        "using",
        "variadic",
        "verbose",
        "when",
        "where",
        "window",
        "with",
        "time",
    ]
)
_MAX_IDENTIFIER: Final = 63

#: psycopg's name of each SQL type of the SAL type table (binary COPY needs them)
PSYCOPG_TYPES: Final = {
    "boolean": "bool",
    "smallint": "int2",
    "integer": "int4",
    "bigint": "int8",
    "real": "float4",
    "double precision": "float8",
    "text": "text",
}


def identifier(name: str) -> str:
    """A name as an unquoted PostgreSQL identifier: lowercase, not reserved, at most 63 bytes.

    Raises
    ------
    SinkError
        For a name that is not ``[A-Za-z_][A-Za-z0-9_]*`` (the loaders refuse such names
        already; this keeps any other source of names out of the SQL text too).
    """
    if _SAFE.fullmatch(name) is None:
        raise SinkError(f"{name!r} cannot be a table or column name: expected letters, digits and '_'")
    text = name.lower()
    if text in _RESERVED:
        text += "_"
    if len(text.encode()) > _MAX_IDENTIFIER:
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        text = text.encode()[: _MAX_IDENTIFIER - 9].decode(errors="ignore") + "_" + digest
    return text


@attrs.frozen
class Column:
    """One column: its name, SQL type, and the field it stores (None for the sink's own);
    ``extra`` is the field name of a newer writer's field the topic's XML lacks."""

    name: str
    sql_type: str
    field: FieldInfo | None = None
    extra: str | None = None

    @property
    def own(self) -> bool:
        """One of the sink's own columns (time, kafka_partition, kafka_offset)."""
        return self.field is None and self.extra is None

    @property
    def psycopg_type(self) -> str:
        base = PSYCOPG_TYPES.get(self.sql_type.removesuffix("[]"), self.sql_type)
        return base + "[]" if self.sql_type.endswith("[]") else base


#: the sink's own columns, besides the fields
EXTRA_COLUMNS: Final = (
    Column("time", "timestamp with time zone"),
    Column("kafka_partition", "integer"),
    Column("kafka_offset", "bigint"),
)


@attrs.frozen
class Table:
    """The table of one topic: ``schema.name``, and its columns.

    ``columns`` are the topic's fields between the sink's own columns; a
    newer writer's fields added at run time (`with_columns`) come after them.
    """

    name: str
    topic: TopicInfo
    columns: tuple[Column, ...]
    schema: str = "public"

    @property
    def field_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.field is not None)

    @property
    def qualified(self) -> str:
        """``schema.name``, or ``name`` in the ``public`` schema (as a query names it)."""
        return self.name if self.schema == "public" else f"{self.schema}.{self.name}"

    @property
    def ident(self) -> sql.Composable:
        return sql.Identifier(self.schema, self.name)

    def with_columns(self, added: Iterable[Column]) -> Table:
        """This table with columns added at the end (a newer schema's fields)."""
        return attrs.evolve(self, columns=(*self.columns, *added))

    def create_sql(self) -> sql.Composed:
        body = sql.SQL(",\n    ").join(
            sql.SQL("{} {}{}").format(
                sql.Identifier(c.name),
                sql.SQL(_checked_type(c.sql_type)),
                sql.SQL(" NOT NULL" if c.own else ""),
            )
            for c in self.columns
        )
        return sql.SQL("CREATE TABLE IF NOT EXISTS {} (\n    {}\n)").format(self.ident, body)

    def add_column_sql(self, column: Column) -> sql.Composed:
        return sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
            self.ident, sql.Identifier(column.name), sql.SQL(_checked_type(column.sql_type))
        )

    def copy_sql(self) -> sql.Composed:
        names = sql.SQL(", ").join(sql.Identifier(c.name) for c in self.columns)
        return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(self.ident, names)

    def unique_sql(self, timescale: bool) -> sql.Composed:
        """The safety net: a message is one row (its topic is the table's; TimescaleDB
        requires the partitioning column, time, in every unique index)."""
        columns = "kafka_partition, kafka_offset, time" if timescale else "kafka_partition, kafka_offset"
        return sql.SQL("CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({})").format(
            sql.Identifier(identifier(self.name + "_kafka_offset")), self.ident, sql.SQL(columns)
        )

    def index_sql(self) -> sql.Composed:
        """The index of time-range queries (per salIndex for an indexed component)."""
        if self.topic.indexed:
            return sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (salindex, time)").format(
                sql.Identifier(identifier(self.name + "_salindex_time")), self.ident
            )
        return sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (time)").format(
            sql.Identifier(identifier(self.name + "_time")), self.ident
        )


#: the SQL types a column may have (the SAL types' and the sink's own): type names
#: are the one part of a statement that is not an identifier or a parameter
_TYPES_OK: Final = frozenset([*PSYCOPG_TYPES, "timestamp with time zone"])


def _checked_type(name: str) -> str:
    if name.removesuffix("[]") not in _TYPES_OK:
        raise SinkError(f"{name!r} is not a column type the sink makes")
    return name


def schema_of(topic_subname: str) -> str:
    """The PostgreSQL schema of a topic sub-namespace's tables: ``public`` for ``sal``."""
    if topic_subname == "sal":
        return "public"
    name = identifier(topic_subname)
    if name != topic_subname or name == "public":  # capitals, reserved, "public": keep names apart
        digest = hashlib.sha1(topic_subname.encode()).hexdigest()[:6]
        name = identifier(f"{topic_subname.lower()}_{digest}")
    return name


#: PostgreSQL's integer types, smallest first, with the values each holds
_PG_INTEGERS: Final = (
    ("smallint", -(2**15), 2**15 - 1),
    ("integer", -(2**31), 2**31 - 1),
    ("bigint", -(2**63), 2**63 - 1),
)


def sql_type(sal: SalType) -> str:
    """The PostgreSQL column type of a SAL type: the smallest integer type that holds
    its range (``unsigned int`` is ``bigint``), ``real`` or ``double precision`` by
    width, ``boolean``, ``text``."""
    if sal.range is not None:
        lo, hi = sal.range
        return next(name for name, low, high in _PG_INTEGERS if low <= lo and hi <= high)
    if sal.python is float:
        return "real" if sal.numpy == "<f4" else "double precision"
    return "boolean" if sal.python is bool else "text"


#: PostgreSQL's column type of an Avro primitive a newer writer's field has: that of the
#: SAL type the primitive maps back to (as camera .avsc topics are read)
_AVRO_SQL: Final = {t.avro: sql_type(t) for t in SAL_TYPE_TABLE if t.avro_canonical}


def avro_sql_type(avro: object) -> str | None:
    """The column type of an Avro field type (a primitive, an array of one, either
    nullable), or None when no column holds it (a record, a map, bytes...)."""
    if isinstance(avro, list):  # a union: only ["null", T]
        others = [t for t in avro if t != "null"]
        return avro_sql_type(others[0]) if len(others) == 1 else None
    if isinstance(avro, dict):
        if avro.get("type") == "array":
            item = avro_sql_type(avro.get("items"))
            return None if item is None or item.endswith("[]") else item + "[]"
        return avro_sql_type(avro.get("type")) if avro.get("logicalType") is None else None
    return _AVRO_SQL.get(avro) if isinstance(avro, str) else None


def _column(field: FieldInfo, name: str) -> Column:
    sql = sql_type(field.type_info)
    return Column(name, sql + "[]" if field.count > 1 else sql, field)


def _unique(names: Iterable[str]) -> list[str]:
    seen: set[str] = {c.name for c in EXTRA_COLUMNS}
    result = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = identifier(f"{name}_{n}")
        seen.add(candidate)
        result.append(candidate)
    return result


def table_of(topic: TopicInfo) -> Table:
    """The table of ``topic`` by the naming rule."""
    fields = list(topic.fields.values())
    names = _unique(identifier(f.name) for f in fields)
    columns = (EXTRA_COLUMNS[0], *(_column(f, n) for f, n in zip(fields, names, strict=True)), *EXTRA_COLUMNS[1:])
    return Table(
        identifier(f"{topic.component_name}_{topic.attr_name}"), topic, columns, schema_of(topic.topic_subname)
    )
