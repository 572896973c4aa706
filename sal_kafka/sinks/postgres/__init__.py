"""The PostgreSQL (and TimescaleDB) back-end of the sinks; Grafana dashboards over its tables."""

from ._grafana import component_dashboard, postgres_datasource, write_component_dashboards
from ._sink import OFFSETS_TABLE, AsyncPostgresSink, PostgresBackend, PostgresSink
from ._tables import Column, Table, identifier, sql_type, table_of

__all__ = [
    "PostgresSink",
    "AsyncPostgresSink",
    "PostgresBackend",
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
