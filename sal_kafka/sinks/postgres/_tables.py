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
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Final

import attrs

from ...errors import SinkError
from ...schemas._model import FieldInfo, TopicInfo
from ...schemas._saltypes import SalType

__all__ = ["Column", "Table", "table_of", "identifier", "sql_type", "PSYCOPG_TYPES", "EXTRA_COLUMNS"]

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
    """One column: its name, SQL type, and the field it stores (None for the sink's own)."""

    name: str
    sql_type: str
    field: FieldInfo | None = None

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
    """The table of one topic."""

    name: str
    topic: TopicInfo
    columns: tuple[Column, ...]

    @property
    def field_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.field is not None)

    def create_sql(self) -> str:
        body = ",\n    ".join(f"{c.name} {c.sql_type}" + (" NOT NULL" if c.field is None else "") for c in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n    {body}\n)"

    def index_sql(self) -> str:
        """The index of time-range queries (per salIndex for an indexed component)."""
        if self.topic.indexed:
            return (
                f"CREATE INDEX IF NOT EXISTS {identifier(self.name + '_salindex_time')} ON {self.name} (salindex, time)"
            )
        return f"CREATE INDEX IF NOT EXISTS {identifier(self.name + '_time')} ON {self.name} (time)"


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
    return Table(identifier(f"{topic.component_name}_{topic.attr_name}"), topic, columns)
