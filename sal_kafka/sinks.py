"""Sinks: SAL topics into PostgreSQL/TimescaleDB, one table per topic, exactly once (docs/sink.md)."""

from ._public import set_public_module
from ._sink import (
    OFFSETS_TABLE,
    AsyncPostgresSink,
    Column,
    PostgresSink,
    SinkError,
    SinkStats,
    Table,
    identifier,
    table_of,
)

__all__ = [
    "PostgresSink",
    "AsyncPostgresSink",
    "SinkError",
    "SinkStats",
    "OFFSETS_TABLE",
    "Table",
    "Column",
    "table_of",
    "identifier",
]

set_public_module(__name__, globals(), __all__)
