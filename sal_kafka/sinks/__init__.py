"""Sinks: SAL topics into databases, one table per topic, exactly once (docs/sink.md).

`SinkRunner` is the loop every sink shares (batches, offsets, retry, resume, the
multi-component reader); a back-end implements `Backend`. PostgreSQL and
TimescaleDB are `PostgresSink` (`sal_kafka.sinks.postgres`).
"""

from .._public import set_public_module
from ..errors import SinkError, SinkUnavailableError
from ._runner import Backend, SinkRunner, SinkStats
from .postgres import (
    OFFSETS_TABLE,
    AsyncPostgresSink,
    Column,
    PostgresBackend,
    PostgresSink,
    Table,
    component_dashboard,
    identifier,
    postgres_datasource,
    sql_type,
    table_of,
    write_component_dashboards,
)

__all__ = [
    "PostgresSink",
    "AsyncPostgresSink",
    "PostgresBackend",
    "SinkRunner",
    "Backend",
    "SinkError",
    "SinkUnavailableError",
    "SinkStats",
    "OFFSETS_TABLE",
    "Table",
    "Column",
    "table_of",
    "identifier",
    "sql_type",
    "component_dashboard",
    "postgres_datasource",
    "write_component_dashboards",
]

set_public_module(__name__, globals(), __all__)
